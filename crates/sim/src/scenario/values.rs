//! Value checkers shared by the sections: times, quantities, distributions, places.

use super::raw::RawDist;
use super::{ClientPlace, Dist, ScenarioError};
use crate::time::SimTime;
use inregion_model::{CountryCode, GeoPoint, Iata};

/// Checks the values of one scenario file; every error it makes names the file and the
/// offending key. The per-section validators are methods of it, in the sibling modules.
pub(super) struct Validator<'a> {
    /// The file name, as given (only used in messages).
    pub(super) file: &'a str,
}

impl Validator<'_> {
    pub(super) fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    pub(super) fn time(&self, key: &str, v: &toml::Value) -> Result<SimTime, ScenarioError> {
        parse_time_value(v).map_err(|m| self.err(key, m))
    }

    fn quantity(&self, key: &str, v: &toml::Value, seconds: bool) -> Result<f64, ScenarioError> {
        let x = match v {
            toml::Value::Integer(i) => *i as f64,
            toml::Value::Float(f) => *f,
            toml::Value::String(s) if seconds => parse_duration_text(s)
                .map_err(|m| self.err(key, m))?
                .as_secs_f64(),
            other => {
                return Err(self.err(
                    key,
                    if seconds {
                        format!("expected a duration such as \"3s\", got {other}")
                    } else {
                        format!("expected a number, got {other}")
                    },
                ))
            }
        };
        if !x.is_finite() || x < 0.0 {
            return Err(self.err(key, format!("must be a finite number >= 0, got {x}")));
        }
        Ok(x)
    }

    pub(super) fn dist(
        &self,
        key: &str,
        d: &RawDist,
        seconds: bool,
    ) -> Result<Dist, ScenarioError> {
        let need = |name: &str, v: &Option<toml::Value>| -> Result<f64, ScenarioError> {
            match v {
                Some(v) => self.quantity(&format!("{key}.{name}"), v, seconds),
                None => Err(self.err(
                    format!("{key}.{name}"),
                    format!("required for dist = {:?}", d.dist),
                )),
            }
        };
        let positive = |name: &str, x: f64| -> Result<f64, ScenarioError> {
            if x > 0.0 && x.is_finite() {
                Ok(x)
            } else {
                Err(self.err(
                    format!("{key}.{name}"),
                    format!("must be a finite number > 0, got {x}"),
                ))
            }
        };
        let given = [
            ("value", d.value.is_some()),
            ("min", d.min.is_some()),
            ("max", d.max.is_some()),
            ("mean", d.mean.is_some()),
            ("median", d.median.is_some()),
            ("sigma", d.sigma.is_some()),
            ("scale", d.scale.is_some()),
            ("shape", d.shape.is_some()),
        ];
        let applies: &[&str] = match d.dist.as_str() {
            "fixed" => &["value"],
            "uniform" => &["min", "max"],
            "exp" | "exponential" => &["mean"],
            "lognormal" => &["median", "sigma"],
            "pareto" => &["scale", "shape"],
            _ => &[
                "value", "min", "max", "mean", "median", "sigma", "scale", "shape",
            ],
        };
        self.only_applicable(key, "dist", &d.dist, &given, applies)?;
        Ok(match d.dist.as_str() {
            "fixed" => Dist::Fixed(need("value", &d.value)?),
            "uniform" => {
                let (a, b) = (need("min", &d.min)?, need("max", &d.max)?);
                if a > b {
                    return Err(self.err(format!("{key}.max"), "must be >= min"));
                }
                Dist::Uniform(a, b)
            }
            "exp" | "exponential" => Dist::Exp(positive("mean", need("mean", &d.mean)?)?),
            "lognormal" => {
                let m = positive("median", need("median", &d.median)?)?;
                let s = d.sigma.ok_or_else(|| {
                    self.err(format!("{key}.sigma"), "required for dist = \"lognormal\"")
                })?;
                if !(0.0..=10.0).contains(&s) {
                    return Err(self.err(format!("{key}.sigma"), "must be in 0..=10"));
                }
                Dist::LogNormal(m, s)
            }
            "pareto" => {
                let x = positive("scale", need("scale", &d.scale)?)?;
                let a = d.shape.ok_or_else(|| {
                    self.err(format!("{key}.shape"), "required for dist = \"pareto\"")
                })?;
                positive("shape", a)?;
                Dist::Pareto(x, a)
            }
            other => {
                return Err(self.err(
                    format!("{key}.dist"),
                    format!(
                        "unknown distribution {other:?}; expected fixed, uniform, exp, lognormal or pareto"
                    ),
                ))
            }
        })
    }

    /// Refuses the first parameter `given` (name, present) that `kind` (the value of its
    /// `selector` key, e.g. `dist = "fixed"`) does not take: a parameter of another kind
    /// is a typo or a leftover from an edit, not something to ignore.
    pub(super) fn only_applicable(
        &self,
        key: &str,
        selector: &str,
        kind: &str,
        given: &[(&str, bool)],
        applies: &[&str],
    ) -> Result<(), ScenarioError> {
        match given
            .iter()
            .find(|(name, set)| *set && !applies.contains(name))
        {
            Some((name, _)) => Err(self.err(
                format!("{key}.{name}"),
                format!(
                    "does not apply to {selector} = {kind:?} (it takes {})",
                    applies.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A relative `weight` (of a client population or a destination): 1 when left out,
    /// otherwise finite and more than zero, so that weighted draws are well defined.
    pub(super) fn weight(&self, key: &str, weight: Option<f64>) -> Result<f64, ScenarioError> {
        let weight = weight.unwrap_or(1.0);
        if !(weight > 0.0 && weight.is_finite()) {
            return Err(self.err(
                format!("{key}.weight"),
                format!("must be a finite number > 0, got {weight}"),
            ));
        }
        Ok(weight)
    }

    pub(super) fn place(
        &self,
        key: &str,
        text: &str,
    ) -> Result<(String, ClientPlace), ScenarioError> {
        parse_place(text).map_err(|m| self.err(key, m))
    }
}

/// Parses a place as the CLI and `dns.from` accept it: an IATA code (`GRU`), a country
/// code (`BR`), or `lat,lon`.
pub fn parse_place(text: &str) -> Result<(String, ClientPlace), String> {
    let t = text.trim();
    if t.contains(',') {
        let p: GeoPoint = t.parse()?;
        return Ok((t.to_owned(), ClientPlace::Point(p)));
    }
    if t.len() == 3 {
        if let Ok(i) = Iata::parse(&t.to_ascii_uppercase()) {
            return Ok((i.to_string(), ClientPlace::Iata(i)));
        }
    }
    if t.len() == 2 {
        if let Ok(c) = CountryCode::parse(&t.to_ascii_uppercase()) {
            return Ok((c.to_string(), ClientPlace::Country(c)));
        }
    }
    Err(format!(
        "{t:?} is not a place: expected an IATA code (GRU), a country code (BR) or \"lat,lon\""
    ))
}

/// Parses a time or duration value: a string such as `"90m"`, `"4h 30m"`, `"0s"`, or an
/// integer number of seconds.
fn parse_time_value(v: &toml::Value) -> Result<SimTime, String> {
    match v {
        toml::Value::String(s) => parse_duration_text(s).map(SimTime::from_duration),
        toml::Value::Integer(i) if *i >= 0 => Ok(SimTime::from_secs(*i as u64)),
        other => Err(format!(
            "expected a duration such as \"90m\" or a number of seconds, got {other}"
        )),
    }
}

/// Parses `"90m"`, `"1h 30m"`, `"0s"`, `"250ms"` (humantime syntax).
pub fn parse_duration_text(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}); write e.g. \"90m\" or \"4h 30m\""))
}
