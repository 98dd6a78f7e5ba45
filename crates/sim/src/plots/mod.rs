//! Plots of a report, as SVG text and PNG bytes (plotters 0.3).
//!
//! Text is rendered with an embedded font (DejaVu Sans, Bitstream Vera license, in
//! `assets/fonts/`) through plotters' `ab_glyph` feature, so plots render the same on a
//! machine without any system font (a fresh CI runner). Nothing here touches the file
//! system: callers write the bytes.
//!
//! - `outcomes_over_time`: share of flows processed at ingress / forwarded / refused per
//!   time bucket, with the timeline's operations marked (propagation shows as a ramp).
//! - `added_rtt_cdf`: CDF of the added round-trip time per client continent.
//! - `top_forwarded_dcs`: the data centers that receive the most forwarded flows.
//!
//! Drawing needs the `plots` feature (on by default), which brings in plotters and an
//! image encoder. Built without it, [`render_all`] draws nothing and returns no plot,
//! and [`NOT_BUILT`] holds the note the summary prints instead, so that an embedder
//! that only wants figures (JSON, CSV) does not compile a drawing stack.

#[cfg(feature = "plots")]
mod draw;

use crate::report::Report;

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot {name}: {message}")]
pub struct PlotError {
    /// The plot.
    pub name: String,
    /// What failed.
    pub message: String,
}

/// One plot in both formats.
#[derive(Debug, Clone)]
pub struct Plot {
    /// Base file name (`outcomes_over_time`).
    pub name: String,
    /// SVG document.
    pub svg: String,
    /// PNG file bytes.
    pub png: Vec<u8>,
}

/// `None` when plots can be drawn; otherwise why none are, as a line for the summary
/// ([`crate::Report::summary`] ends with it).
#[cfg(feature = "plots")]
pub const NOT_BUILT: Option<&str> = None;

/// `None` when plots can be drawn; otherwise why none are, as a line for the summary
/// ([`crate::Report::summary`] ends with it).
#[cfg(not(feature = "plots"))]
pub const NOT_BUILT: Option<&str> =
    Some("plots: not built (inregion-sim was compiled without its `plots` feature)");

/// Renders every plot of a report.
#[cfg(feature = "plots")]
pub fn render_all(r: &Report) -> Result<Vec<Plot>, PlotError> {
    draw::render_all(r)
}

/// Renders every plot of a report: none, as this build has no `plots` feature (see
/// [`NOT_BUILT`]). Not an error, so that the figures (JSON, CSV) are still written.
#[cfg(not(feature = "plots"))]
pub fn render_all(_r: &Report) -> Result<Vec<Plot>, PlotError> {
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use crate::{Report, Scenario, Simulation};
    use inregion_model::ReferenceData;

    /// A report of a short run of the shipped quickstart scenario.
    fn small_report() -> Report {
        let mut scenario = Scenario::quickstart();
        scenario.set_flows("flows", 500).unwrap();
        let sim = Simulation::new(scenario.clone(), &ReferenceData::embedded()).unwrap();
        let out = sim.run(&mut |_, _| {}).unwrap();
        Report::new(&scenario, &out)
    }

    #[test]
    fn plots_are_drawn_exactly_when_the_feature_is_on() {
        let report = small_report();
        let plots = super::render_all(&report).unwrap();
        let summary = report.summary();
        if cfg!(feature = "plots") {
            assert_eq!(plots.len(), 3);
            assert!(!summary.contains("plots: not built"));
        } else {
            assert!(plots.is_empty());
            let note = super::NOT_BUILT.expect("a note without the feature");
            assert!(summary.trim_end().ends_with(note), "{summary}");
        }
        // The figures do not depend on the feature.
        assert!(report.to_json().contains("\"flows\": 500"));
        assert_eq!(report.csv_files().len(), 7);
    }
}
