//! The run's top-level keys (`name`, `duration`, `bucket`), `[topology]` and
//! `[propagation]`.

use super::raw::{RawPropagation, RawTopology};
use super::values::Validator;
use super::{
    default_bucket, span, Dist, Propagation, PropagationMode, ScenarioError, MAX_BUCKETS,
    MAX_DURATION,
};
use crate::time::SimTime;
use inregion_model::Iata;

impl Validator<'_> {
    /// `name`: free text, but not blank (it titles the summary and the plots).
    pub(super) fn name(&self, name: &str) -> Result<(), ScenarioError> {
        if name.trim().is_empty() {
            return Err(self.err("name", "must not be empty"));
        }
        Ok(())
    }

    /// `duration`: more than zero and at most [`MAX_DURATION`].
    pub(super) fn duration(&self, value: &toml::Value) -> Result<SimTime, ScenarioError> {
        let duration = self.time("duration", value)?;
        if duration == SimTime::ZERO {
            return Err(self.err("duration", "must be > 0"));
        }
        if duration > MAX_DURATION {
            return Err(self.err(
                "duration",
                format!("must be at most 365 days (8760h), got {}", span(duration)),
            ));
        }
        Ok(duration)
    }

    /// `bucket`: given, or a 48th of the run; more than zero and at most [`MAX_BUCKETS`]
    /// of them per run, because metrics memory is per bucket.
    pub(super) fn bucket(
        &self,
        value: Option<&toml::Value>,
        duration: SimTime,
    ) -> Result<SimTime, ScenarioError> {
        let bucket = match value {
            Some(v) => self.time("bucket", v)?,
            None => default_bucket(duration),
        };
        if bucket == SimTime::ZERO {
            return Err(self.err("bucket", "must be > 0"));
        }
        if duration.as_nanos() / bucket.as_nanos() > MAX_BUCKETS {
            return Err(self.err(
                "bucket",
                "too small: at most 10000 buckets per run (memory is per bucket)",
            ));
        }
        Ok(bucket)
    }

    /// `[topology]`: the data centers left out, as IATA codes.
    pub(super) fn topology(&self, raw: &RawTopology) -> Result<Vec<Iata>, ScenarioError> {
        raw.exclude
            .iter()
            .enumerate()
            .map(|(i, code)| {
                Iata::parse(code)
                    .map_err(|e| self.err(format!("topology.exclude[{i}]"), e.to_string()))
            })
            .collect()
    }

    /// `[propagation]`: the mode (default `default`) and the per-data-center delay
    /// (default uniform between 4 and 6 hours).
    pub(super) fn propagation(&self, raw: &RawPropagation) -> Result<Propagation, ScenarioError> {
        let mode = match raw.mode.as_deref() {
            None | Some("default") => PropagationMode::Default,
            Some("strict") => PropagationMode::Strict,
            Some(other) => {
                return Err(self.err(
                    "propagation.mode",
                    format!("unknown mode {other:?}; expected \"default\" or \"strict\""),
                ))
            }
        };
        let delay = match &raw.delay {
            Some(d) => self.dist("propagation.delay", d, true)?,
            None => Dist::Uniform(4.0 * 3600.0, 6.0 * 3600.0),
        };
        Ok(Propagation { mode, delay })
    }
}
