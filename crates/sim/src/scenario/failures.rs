//! `[[failures]]`: data centers that go down during the run, and maybe come back.

use super::raw::RawFailure;
use super::values::Validator;
use super::{Failure, FailureTarget, ScenarioError};
use crate::time::SimTime;
use inregion_model::{CountryCode, Iata, RegionKey};

impl Validator<'_> {
    /// `[[failures]]`, each within a run of `duration`.
    pub(super) fn failures(
        &self,
        raw: &[RawFailure],
        duration: SimTime,
    ) -> Result<Vec<Failure>, ScenarioError> {
        raw.iter()
            .enumerate()
            .map(|(i, f)| self.failure(format!("failures[{i}]"), f, duration))
            .collect()
    }

    /// One failure at `key`: what fails, at a time within the run, and a recovery after it.
    fn failure(
        &self,
        key: String,
        f: &RawFailure,
        duration: SimTime,
    ) -> Result<Failure, ScenarioError> {
        let target = self.failure_target(&key, f)?;
        let at = self.time(&format!("{key}.at"), &f.at)?;
        if at > duration {
            return Err(self.err(format!("{key}.at"), "is after the scenario's duration"));
        }
        let until = match &f.until {
            Some(v) => {
                let u = self.time(&format!("{key}.until"), v)?;
                if u <= at {
                    return Err(self.err(format!("{key}.until"), "must be after at"));
                }
                Some(u)
            }
            None => None,
        };
        Ok(Failure {
            target,
            at,
            until,
            key,
        })
    }

    /// The one target a failure gives: a data center, a country or a region.
    fn failure_target(&self, key: &str, f: &RawFailure) -> Result<FailureTarget, ScenarioError> {
        let given = [&f.dc, &f.country, &f.region]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if given != 1 {
            return Err(self.err(key, "give exactly one of dc, country or region"));
        }
        Ok(if let Some(dc) = &f.dc {
            FailureTarget::DataCenter(
                Iata::parse(&dc.to_ascii_uppercase())
                    .map_err(|e| self.err(format!("{key}.dc"), e.to_string()))?,
            )
        } else if let Some(c) = &f.country {
            FailureTarget::Country(
                CountryCode::parse(&c.to_ascii_uppercase())
                    .map_err(|e| self.err(format!("{key}.country"), e.to_string()))?,
            )
        } else {
            let r = f.region.as_deref().unwrap_or_default();
            FailureTarget::Region(
                RegionKey::parse(r)
                    .map_err(|e| self.err(format!("{key}.region"), e.to_string()))?,
            )
        })
    }
}
