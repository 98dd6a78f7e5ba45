//! Drawing the plots with plotters: PNG through its bitmap backend and the `image` PNG
//! encoder, SVG through its SVG backend.

use super::{Plot, PlotError};
use crate::report::Report;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::Once;

/// The embedded font.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TTF (checked by the tests); a failure would only lose text.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
        let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, FONT);
    });
}

const W: u32 = 1000;
const H: u32 = 560;

type DrawResult = Result<(), String>;

/// A labelled, coloured series of points.
type Line = (&'static str, RGBColor, Vec<(f64, f64)>);

fn e<E: std::fmt::Display>(x: E) -> String {
    x.to_string()
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn outcomes_over_time<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> DrawResult {
    root.fill(&WHITE).map_err(e)?;
    let hours = r.scenario.duration_s / 3600.0;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{}: where flows are processed", r.scenario.name),
            (FAMILY, 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..hours.max(1e-9), 0f64..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (h)")
        .y_desc("share of new flows")
        .label_style((FAMILY, 14))
        .draw()
        .map_err(e)?;
    let bucket_h = r.scenario.bucket_s / 3600.0;
    let series = |f: &dyn Fn(&crate::report::Outcomes) -> f64| -> Vec<(f64, f64)> {
        r.series
            .iter()
            .filter(|b| b.outcomes.flows > 0)
            .map(|b| (b.start_s as f64 / 3600.0 + bucket_h / 2.0, f(&b.outcomes)))
            .collect()
    };
    let lines: [Line; 3] = [
        (
            "processed at ingress",
            PALETTE[2],
            series(&|o| o.share_at_ingress),
        ),
        (
            "forwarded in region",
            PALETTE[0],
            series(&|o| o.share_forwarded),
        ),
        (
            "refused (fail closed)",
            PALETTE[3],
            series(&|o| o.share_refused),
        ),
    ];
    for (label, color, pts) in lines {
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    for (i, op) in r.timeline.iter().enumerate() {
        let x = op.at_s / 3600.0;
        // Staggered so that labels of close operations do not overlap.
        let y = 0.97 - 0.05 * (i % 4) as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, 1.0)],
                BLACK.mix(0.35),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                op.op.clone(),
                (x, y),
                (FAMILY, 12).into_font().color(&BLACK.mix(0.7)),
            )))
            .map_err(e)?;
    }
    for h in r.health.iter().filter(|h| !h.healthy) {
        let x = h.at_s / 3600.0;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, 1.0)],
                PALETTE[3].mix(0.4),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{} down", h.dc),
                (x, 0.05),
                (FAMILY, 12).into_font().color(&PALETTE[3]),
            )))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FAMILY, 14))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn added_rtt_cdf<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> DrawResult {
    root.fill(&WHITE).map_err(e)?;
    let max_x = r
        .added_rtt_cdf
        .values()
        .flat_map(|v| v.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Added round-trip time per client continent (CDF)",
            (FAMILY, 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..max_x * 1.05, 0f64..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("added RTT (ms)")
        .y_desc("share of processed flows")
        .label_style((FAMILY, 14))
        .draw()
        .map_err(e)?;
    for (i, (name, pts)) in r.added_rtt_cdf.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // Quantile points joined by straight lines; flat to the right edge at 1.
        let line = pts.iter().copied().chain([(max_x * 1.05, 1.0)]);
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))
            .map_err(e)?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FAMILY, 14))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn top_forwarded_dcs<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> DrawResult {
    root.fill(&WHITE).map_err(e)?;
    let top: Vec<_> = r
        .data_centers
        .iter()
        .filter(|d| d.forwarded_in > 0)
        .take(15)
        .collect();
    let n = top.len().max(1);
    let max = top.iter().map(|d| d.forwarded_in).max().unwrap_or(1).max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption("Top data centers by forwarded load", (FAMILY, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..max * 1.1, 0f64..n as f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("flows forwarded to it")
        .label_style((FAMILY, 14))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(top.iter().enumerate().map(|(i, d)| {
            let y0 = (n - 1 - i) as f64 + 0.15;
            Rectangle::new(
                [(0.0, y0), (d.forwarded_in as f64, y0 + 0.7)],
                PALETTE[0].filled(),
            )
        }))
        .map_err(e)?;
    chart
        .draw_series(top.iter().enumerate().map(|(i, d)| {
            let y = (n - 1 - i) as f64 + 0.5;
            Text::new(
                format!("{} ({})", d.code, d.forwarded_in),
                (d.forwarded_in as f64 + max * 0.01, y + 0.15),
                (FAMILY, 13).into_font(),
            )
        }))
        .map_err(e)?;
    if top.is_empty() {
        chart
            .draw_series(std::iter::once(Text::new(
                "no flow was forwarded".to_owned(),
                (max * 0.3, 0.5),
                (FAMILY, 18).into_font(),
            )))
            .map_err(e)?;
    }
    root.present().map_err(e)
}

#[derive(Clone, Copy)]
enum Kind {
    Outcomes,
    Cdf,
    Top,
}

fn draw<DB: DrawingBackend>(kind: Kind, root: &DrawingArea<DB, Shift>, r: &Report) -> DrawResult {
    match kind {
        Kind::Outcomes => outcomes_over_time(root, r),
        Kind::Cdf => added_rtt_cdf(root, r),
        Kind::Top => top_forwarded_dcs(root, r),
    }
}

fn render(name: &str, r: &Report, kind: Kind) -> Result<Plot, PlotError> {
    register_font();
    let err = |message: String| PlotError {
        name: name.to_owned(),
        message,
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        draw(kind, &root, r).map_err(err)?;
    }
    let mut buf = vec![0u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        draw(kind, &root, r).map_err(err)?;
    }
    let mut png = Vec::new();
    {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&buf, W, H, image::ColorType::Rgb8)
            .map_err(|x| err(x.to_string()))?;
    }
    Ok(Plot {
        name: name.to_owned(),
        svg,
        png,
    })
}

/// Renders every plot of a report.
pub(super) fn render_all(r: &Report) -> Result<Vec<Plot>, PlotError> {
    Ok(vec![
        render("outcomes_over_time", r, Kind::Outcomes)?,
        render("added_rtt_cdf", r, Kind::Cdf)?,
        render("top_forwarded_dcs", r, Kind::Top)?,
    ])
}
