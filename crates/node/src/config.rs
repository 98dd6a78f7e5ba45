//! What a node runs with: [`NodeConfig`], the feed address ([`ControlUrl`]) and the
//! apply-delay text forms ([`parse_apply_delay`]).

use std::time::Duration;

use inregion_edge::DelayDistribution;
use inregion_model::{Iata, ReferenceData};

use crate::NodeError;

/// Where the node follows the binding feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlUrl {
    /// `http://HOST:PORT` of an `inregion serve` (its `/edge/v1/` endpoints); the base
    /// URL without a trailing slash.
    Http(String),
}

impl ControlUrl {
    /// Parses `--control`: `http://HOST:PORT[/]`. `etcd://...` is recognised and refused
    /// (not in this build yet); anything else is refused.
    pub fn parse(s: &str) -> Result<Self, NodeError> {
        let s = s.trim();
        if s.starts_with("etcd://") {
            return Err(NodeError::Config(
                "etcd sources are not available in this build yet (use http://HOST:PORT of an `inregion serve`)".into(),
            ));
        }
        let Some(rest) = s.strip_prefix("http://") else {
            return Err(NodeError::Config(format!(
                "--control {s:?}: expected http://HOST:PORT (https is not supported)"
            )));
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains('?') {
            return Err(NodeError::Config(format!(
                "--control {s:?}: expected http://HOST:PORT without a path"
            )));
        }
        Ok(ControlUrl::Http(format!("http://{rest}")))
    }

    /// The text form (`http://HOST:PORT`).
    pub fn as_str(&self) -> &str {
        match self {
            ControlUrl::Http(u) => u,
        }
    }
}

/// Everything a node process runs with (the CLI builds it; tests build it directly).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data centers this process serves (at least one; each its own registered node).
    pub dcs: Vec<Iata>,
    /// The node id when a single data center is served (default: its IATA code).
    pub node_id: Option<String>,
    /// Where the feed comes from.
    pub control: ControlUrl,
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// The edge token: sent to the source, and required by the node's own `/v1/*`.
    pub edge_token: String,
    /// How long each version is held back before it reaches each data center.
    pub apply_delay: DelayDistribution,
    /// Seed of the apply-delay draws.
    pub seed: u64,
    /// How often the whole snapshot is re-read and compared with what is held.
    pub resync_interval: Duration,
    /// Send `DELETE /edge/v1/nodes/{id}` for each node on shutdown.
    pub deregister_on_exit: bool,
    /// The `wait_ms` of each long poll (capped at 30,000 by the source).
    pub wait_ms: u64,
    /// The table cache (`--cache FILE`): the last version followed is kept there, and a
    /// start applies it as the first table until the source answers (see the crate's
    /// documentation). `None`: no cache, a start answers 503 until the source does.
    pub cache: Option<std::path::PathBuf>,
}

impl NodeConfig {
    /// A configuration with the defaults of `inregion edge` for these data centers,
    /// source and token: listen on `127.0.0.1:8788`, no apply delay, seed 1, resync every
    /// 60 s, no deregistration, 25 s long polls, no table cache.
    pub fn new(dcs: Vec<Iata>, control: ControlUrl, edge_token: impl Into<String>) -> Self {
        NodeConfig {
            dcs,
            node_id: None,
            control,
            listen: "127.0.0.1:8788".into(),
            edge_token: edge_token.into(),
            apply_delay: DelayDistribution::Fixed(Duration::ZERO),
            seed: 1,
            resync_interval: Duration::from_secs(60),
            deregister_on_exit: false,
            wait_ms: 25_000,
            cache: None,
        }
    }

    /// Checks the configuration against the reference data: at least one data center,
    /// each known and given once, `node_id` only with a single one and well formed, a
    /// non-empty token, a cache file (if any) in a directory that exists. Returns the
    /// node ids, in data-center order.
    pub fn validate(&self, refdata: &ReferenceData) -> Result<Vec<String>, NodeError> {
        if self.dcs.is_empty() {
            return Err(NodeError::Config("--dc: at least one data center".into()));
        }
        for (i, dc) in self.dcs.iter().enumerate() {
            if refdata.data_center(*dc).is_none() {
                return Err(NodeError::Config(format!(
                    "--dc: unknown data center {dc} (not in the embedded reference data)"
                )));
            }
            if self.dcs[..i].contains(dc) {
                return Err(NodeError::Config(format!("--dc: {dc} is given twice")));
            }
        }
        if self.edge_token.is_empty() {
            return Err(NodeError::Config("--edge-token must not be empty".into()));
        }
        if let Some(path) = &self.cache {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if path.is_dir() || dir.is_some_and(|d| !d.is_dir()) {
                return Err(NodeError::Config(format!(
                    "--cache {}: must name a file in an existing directory",
                    path.display()
                )));
            }
        }
        match &self.node_id {
            Some(_) if self.dcs.len() > 1 => Err(NodeError::Config(
                "--node-id is only allowed with a single --dc".into(),
            )),
            Some(id) if !inregion_feed::wire::is_node_id(id) => Err(NodeError::Config(format!(
                "--node-id {id:?}: 1-64 characters of [A-Za-z0-9._-]"
            ))),
            Some(id) => Ok(vec![id.clone()]),
            None => Ok(self.dcs.iter().map(|d| d.as_str().to_owned()).collect()),
        }
    }
}

/// Parses a list of IATA codes (`FRA,IAD`; case-insensitive, spaces ignored).
pub fn parse_dcs(s: &str) -> Result<Vec<Iata>, NodeError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            Iata::parse(&p.to_ascii_uppercase())
                .map_err(|e| NodeError::Config(format!("--dc {p:?}: {e}")))
        })
        .collect()
}

/// Parses `--apply-delay-dist`: `uniform:MIN..MAX` or `lognormal:MEDIAN,SIGMA,MAX`
/// (durations in humantime form: `500ms`, `2s`, `1m`), or `fixed:DURATION`.
pub fn parse_apply_delay(s: &str) -> Result<DelayDistribution, NodeError> {
    let bad = |why: &str| {
        NodeError::Config(format!(
            "--apply-delay-dist {s:?}: {why} (expected uniform:MIN..MAX, lognormal:MEDIAN,SIGMA,MAX or fixed:DURATION)"
        ))
    };
    let dur = |t: &str| {
        humantime::parse_duration(t.trim()).map_err(|e| bad(&format!("{:?}: {e}", t.trim())))
    };
    let (kind, rest) = s.split_once(':').ok_or_else(|| bad("no kind"))?;
    match kind.trim() {
        "fixed" => Ok(DelayDistribution::Fixed(dur(rest)?)),
        "uniform" => {
            let (a, b) = rest.split_once("..").ok_or_else(|| bad("no '..'"))?;
            let (min, max) = (dur(a)?, dur(b)?);
            if min > max {
                return Err(bad("MIN is above MAX"));
            }
            Ok(DelayDistribution::Uniform { min, max })
        }
        "lognormal" => {
            let parts: Vec<&str> = rest.split(',').collect();
            let [median, sigma, max] = parts[..] else {
                return Err(bad("three values expected"));
            };
            let sigma: f64 = sigma
                .trim()
                .parse()
                .map_err(|_| bad(&format!("SIGMA {:?} is not a number", sigma.trim())))?;
            if !(sigma.is_finite() && sigma >= 0.0) {
                return Err(bad("SIGMA must be a finite number >= 0"));
            }
            Ok(DelayDistribution::LogNormal {
                median: dur(median)?,
                sigma,
                max: dur(max)?,
            })
        }
        other => Err(bad(&format!("unknown kind {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_urls() {
        assert_eq!(
            ControlUrl::parse("http://127.0.0.1:8787/").unwrap(),
            ControlUrl::Http("http://127.0.0.1:8787".into())
        );
        let e = ControlUrl::parse("etcd://localhost:2379").unwrap_err();
        assert!(e
            .to_string()
            .contains("etcd sources are not available in this build yet"));
        assert!(ControlUrl::parse("https://x:1").is_err());
        assert!(ControlUrl::parse("http://x:1/edge").is_err());
        assert!(ControlUrl::parse("ftp://x").is_err());
    }

    #[test]
    fn apply_delays() {
        assert_eq!(
            parse_apply_delay("uniform:100ms..2s").unwrap(),
            DelayDistribution::Uniform {
                min: Duration::from_millis(100),
                max: Duration::from_secs(2)
            }
        );
        assert_eq!(
            parse_apply_delay("lognormal:1s,0.5,10s").unwrap(),
            DelayDistribution::LogNormal {
                median: Duration::from_secs(1),
                sigma: 0.5,
                max: Duration::from_secs(10)
            }
        );
        assert_eq!(
            parse_apply_delay("fixed:3s").unwrap(),
            DelayDistribution::Fixed(Duration::from_secs(3))
        );
        for bad in [
            "uniform:2s..1s",
            "uniform:1s",
            "lognormal:1s,x,2s",
            "lognormal:1s,-1,2s",
            "lognormal:1s,2s",
            "normal:1s",
            "1s",
            "uniform:abc..1s",
        ] {
            assert!(parse_apply_delay(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_centers_and_node_ids() {
        let refdata = ReferenceData::embedded();
        let dcs = parse_dcs("fra, IAD").unwrap();
        assert_eq!(dcs.len(), 2);
        let mut c = NodeConfig::new(dcs, ControlUrl::Http("http://x:1".into()), "t");
        assert_eq!(c.validate(&refdata).unwrap(), vec!["FRA", "IAD"]);
        c.node_id = Some("n1".into());
        assert!(c.validate(&refdata).is_err());
        c.dcs.truncate(1);
        assert_eq!(c.validate(&refdata).unwrap(), vec!["n1"]);
        c.node_id = Some("a/b".into());
        assert!(c.validate(&refdata).is_err());
        c.node_id = None;
        c.dcs = parse_dcs("QQQ").unwrap();
        assert!(c
            .validate(&refdata)
            .unwrap_err()
            .to_string()
            .contains("unknown data center QQQ"));
        assert!(parse_dcs("FRANK").is_err());
    }
}
