//! Fault injection rules: make matching API requests fail, wait or time out on purpose,
//! or hold a binding in `provisioning`, so that a test suite can exercise its retry and
//! error paths against the emulator.
//!
//! The rules are data and matching only (sans-IO: the dice roll for `probability` is an
//! argument); the HTTP server applies them (`inregion-api`'s admin surface,
//! `POST /__inregion/faults`, and `[[faults]]` in `--config`).
//!
//! A rule, as JSON or TOML (one action per rule):
//!
//! | field | meaning |
//! | --- | --- |
//! | `method` | `GET`, `POST`, ... (any when absent) |
//! | `path` | pattern over the request path; `*` matches one segment, or, as the last segment, the rest of the path (`/client/v4/accounts/*/dls/*` covers every DLS path); a trailing `/**` matches any rest, including none |
//! | `account` | only requests to this account id (the segment after `/accounts/`) |
//! | `status` | answer with this HTTP status (400–599) and a Cloudflare error envelope; `code` (default 971 for 429, else 1000), `message`, `retry_after` seconds (default 1 for 429) |
//! | `delay_ms` | hold the request this long, then serve it normally |
//! | `timeout_ms` | hold the request this long, then answer 504 (longer than the client's timeout: the client times out) |
//! | `binding` + `effect` | a binding id or exact CIDR; `stuck`: its Addressing status stays `provisioning` while the rule exists; `fail`: creating or re-pointing it answers 500 / 1000 and changes nothing |
//! | `probability` | apply to this share of the matches (0–1, default 1) |
//! | `count` | apply to the next N matches only, then stop (default: until removed) |

use serde::{Deserialize, Serialize};

/// A rule id: 1–64 characters of `A-Za-z0-9_-`.
pub const FAULT_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// A rule as given (JSON body or `[[faults]]` in `--config`). See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Optional id; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub id: Option<String>,
    /// HTTP method to match (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path pattern (`*` = one segment, or the rest as the last segment; trailing `/**`
    /// = any rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Account id to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Answer with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 400, maximum = 599)]
    pub status: Option<u16>,
    /// Cloudflare error code of that answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    /// Error message of that answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Retry-After` seconds of that answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Hold the request, then serve it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Hold the request, then answer 504.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// A binding id or exact CIDR (with `effect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// `stuck` or `fail` (with `binding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(stuck|fail)$")]
    pub effect: Option<String>,
    /// Share of matches to apply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub probability: Option<f64>,
    /// Apply to the next N matches only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub count: Option<u64>,
}

/// What a matching request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// An error answer.
    Status {
        /// HTTP status.
        status: u16,
        /// Cloudflare error code.
        code: u32,
        /// Message.
        message: String,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Served normally after this many milliseconds.
    Delay(u64),
    /// Answered 504 after this many milliseconds.
    Timeout(u64),
    /// The binding's Addressing status stays `provisioning`.
    Stuck(String),
    /// Creating or re-pointing the binding fails with 500 / 1000.
    Fail(String),
}

impl FaultAction {
    /// A short name for logs and metrics (`status`, `delay`, `timeout`, `stuck`, `fail`).
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Status { .. } => "status",
            FaultAction::Delay(_) => "delay",
            FaultAction::Timeout(_) => "timeout",
            FaultAction::Stuck(_) => "stuck",
            FaultAction::Fail(_) => "fail",
        }
    }
}

/// Why a rule was refused (400 on the admin surface; a start-up error in `--config`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault rule: {0}")]
pub struct FaultError(pub String);

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Its id.
    pub id: String,
    /// The rule as given (what `GET /__inregion/faults` lists), with its id.
    pub spec: FaultSpec,
    /// What it does.
    pub action: FaultAction,
    /// Matches left (`None`: until removed).
    pub remaining: Option<u64>,
    /// How many times it was applied.
    pub applied: u64,
}

/// `*` matches one segment, except as the pattern's last segment, where it matches the
/// rest of the path (one or more segments): `/client/v4/accounts/*/dls/*` covers every
/// DLS path, as the examples read. `**` as the last segment matches the rest, including
/// nothing.
fn path_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let mut s = path.trim_end_matches('/').split('/');
    for (i, seg) in p.iter().enumerate() {
        let last = i + 1 == p.len();
        match (*seg, s.next()) {
            ("**", _) if last => return true,
            ("*", Some(x)) if last => return !x.is_empty(),
            ("*", Some(_)) => {}
            (a, Some(b)) if a == b => {}
            _ => return false,
        }
    }
    s.next().is_none()
}

/// The account id of a `/client/v4/accounts/{id}/...` path.
pub(crate) fn account_of(path: &str) -> Option<&str> {
    let mut it = path.split('/');
    it.find(|s| *s == "accounts")?;
    it.next().filter(|s| !s.is_empty())
}

impl FaultRule {
    /// Validates a spec; `id` is used when the spec has none.
    pub fn new(spec: FaultSpec, id: String) -> Result<Self, FaultError> {
        let bad = |m: &str| Err(FaultError(m.to_owned()));
        let actions = [
            spec.status.is_some(),
            spec.delay_ms.is_some(),
            spec.timeout_ms.is_some(),
            spec.binding.is_some() || spec.effect.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            return bad("give exactly one of status, delay_ms, timeout_ms, or binding with effect");
        }
        if let Some(p) = spec.probability {
            if !(0.0..=1.0).contains(&p) {
                return bad("probability must be between 0 and 1");
            }
        }
        if spec.count == Some(0) {
            return bad("count must be at least 1");
        }
        if let Some(m) = &spec.method {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                return bad("method must be an HTTP method such as GET or POST");
            }
        }
        let request_rule = spec.binding.is_none();
        match &spec.path {
            Some(p) if !p.starts_with('/') => return bad("path must start with /"),
            None if request_rule => return bad("path is required (use /** for every path)"),
            _ => {}
        }
        let action = if let Some(status) = spec.status {
            if !(400..=599).contains(&status) {
                return bad("status must be an error status (400-599)");
            }
            FaultAction::Status {
                status,
                code: spec.code.unwrap_or(if status == 429 { 971 } else { 1000 }),
                message: spec.message.clone().unwrap_or_else(|| {
                    if status == 429 {
                        "Please wait and consider throttling your request speed (injected)".into()
                    } else {
                        format!("injected fault: HTTP {status}")
                    }
                }),
                retry_after: spec.retry_after.or((status == 429).then_some(1)),
            }
        } else if let Some(ms) = spec.delay_ms {
            FaultAction::Delay(ms.min(600_000))
        } else if let Some(ms) = spec.timeout_ms {
            FaultAction::Timeout(ms.min(600_000))
        } else {
            let Some(target) = spec.binding.clone().filter(|b| !b.is_empty()) else {
                return bad("effect needs binding (a binding id or its exact CIDR)");
            };
            match spec.effect.as_deref() {
                Some("stuck") => FaultAction::Stuck(target),
                Some("fail") => FaultAction::Fail(target),
                _ => return bad("effect must be \"stuck\" or \"fail\""),
            }
        };
        let id = spec.id.clone().unwrap_or(id);
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("id must be 1-64 characters of [A-Za-z0-9_-]");
        }
        Ok(FaultRule {
            spec: FaultSpec {
                id: Some(id.clone()),
                ..spec.clone()
            },
            remaining: spec.count,
            id,
            action,
            applied: 0,
        })
    }

    fn matches_request(&self, method: &str, path: &str) -> bool {
        let s = &self.spec;
        s.binding.is_none()
            && self.remaining != Some(0)
            && s.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && s.path.as_deref().is_some_and(|p| path_matches(p, path))
            && s.account
                .as_deref()
                .is_none_or(|a| account_of(path) == Some(a))
    }
}

/// The rules in force, in the order they were added (the first match applies).
#[derive(Debug, Clone, Default)]
pub struct FaultSet {
    rules: Vec<FaultRule>,
    next: u64,
}

impl FaultSet {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule; refuses an invalid one or a duplicate id.
    pub fn add(&mut self, spec: FaultSpec) -> Result<FaultRule, FaultError> {
        self.next += 1;
        let rule = FaultRule::new(spec, format!("fault-{}", self.next))?;
        if self.rules.iter().any(|r| r.id == rule.id) {
            return Err(FaultError(format!("a rule with id {:?} exists", rule.id)));
        }
        self.rules.push(rule.clone());
        Ok(rule)
    }

    /// Removes a rule; `false` when there is none with that id.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        self.rules.len() != before
    }

    /// Every rule.
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// The action for a request, if a request rule matches it and the roll (uniform in
    /// [0, 1), from the caller) falls within its probability; counts it as applied.
    pub fn on_request(
        &mut self,
        method: &str,
        path: &str,
        roll: f64,
    ) -> Option<(String, FaultAction)> {
        let r = self
            .rules
            .iter_mut()
            .find(|r| r.matches_request(method, path))?;
        if roll >= r.spec.probability.unwrap_or(1.0) {
            return None;
        }
        if let Some(n) = &mut r.remaining {
            *n -= 1;
        }
        r.applied += 1;
        Some((r.id.clone(), r.action.clone()))
    }

    /// The `fail` rule for a binding (by id or exact CIDR), counted as applied.
    pub fn fail_binding(&mut self, id: Option<&str>, cidr: Option<&str>) -> Option<String> {
        let r = self.rules.iter_mut().find(|r| {
            r.remaining != Some(0)
                && matches!(&r.action, FaultAction::Fail(t) if Some(t.as_str()) == id || Some(t.as_str()) == cidr)
        })?;
        if let Some(n) = &mut r.remaining {
            *n -= 1;
        }
        r.applied += 1;
        Some(r.id.clone())
    }

    /// True when a `stuck` rule holds this binding (by id or exact CIDR).
    pub fn is_stuck(&self, id: &str, cidr: &str) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(&r.action, FaultAction::Stuck(t) if t == id || t == cidr))
    }

    /// True when some `stuck` rule exists (responses need a look).
    pub fn any_stuck(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.action, FaultAction::Stuck(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn patterns_methods_accounts_counts_and_probability() {
        let mut s = FaultSet::new();
        let r = s
            .add(spec(r#"{"method": "POST", "path": "/client/v4/accounts/*/dls/*/**", "status": 429, "count": 2}"#))
            .unwrap();
        assert_eq!(r.id, "fault-1");
        assert!(matches!(
            r.action,
            FaultAction::Status {
                status: 429,
                code: 971,
                retry_after: Some(1),
                ..
            }
        ));
        let p = "/client/v4/accounts/abc/dls/regional_services/prefix_bindings";
        assert!(s.on_request("GET", p, 0.0).is_none(), "method");
        assert!(s
            .on_request("POST", "/client/v4/accounts/abc/addressing/prefixes", 0.0)
            .is_none());
        assert!(s.on_request("POST", p, 0.0).is_some());
        assert!(s.on_request("post", p, 0.5).is_some());
        assert!(s.on_request("POST", p, 0.0).is_none(), "count exhausted");
        assert_eq!(s.rules()[0].applied, 2);

        s.add(spec(
            r#"{"id": "half", "path": "/a/*", "account": "x", "delay_ms": 5, "probability": 0.5}"#,
        ))
        .unwrap();
        assert!(
            s.on_request("GET", "/a/b", 0.1).is_none(),
            "no account in the path"
        );
        let mut s2 = FaultSet::new();
        s2.add(spec(r#"{"path": "/client/v4/accounts/*/x", "account": "acc1", "timeout_ms": 10, "probability": 0.5}"#))
            .unwrap();
        assert!(s2
            .on_request("GET", "/client/v4/accounts/acc1/x", 0.49)
            .is_some());
        assert!(s2
            .on_request("GET", "/client/v4/accounts/acc1/x", 0.5)
            .is_none());
        assert!(s2
            .on_request("GET", "/client/v4/accounts/acc2/x", 0.0)
            .is_none());
        assert!(
            s2.on_request("GET", "/client/v4/accounts/acc1/x/y", 0.0)
                .is_none(),
            "* is one segment"
        );
        let mut s3 = FaultSet::new();
        s3.add(spec(r#"{"method": "POST", "path": "/client/v4/accounts/*/dls/*", "status": 429, "count": 1}"#))
            .unwrap();
        assert!(
            s3.on_request("POST", "/client/v4/accounts/a/dls", 0.0)
                .is_none(),
            "a trailing * needs a segment"
        );
        assert!(
            s3.on_request(
                "POST",
                "/client/v4/accounts/a/dls/regional_services/prefix_bindings",
                0.0
            )
            .is_some(),
            "a trailing * matches the rest"
        );
        assert!(
            path_matches("/a/**", "/a")
                && path_matches("/a/*/c", "/a/b/c")
                && !path_matches("/a/*/c", "/a/b/d/c")
        );
        assert!(s.remove("half") && !s.remove("half"));
    }

    #[test]
    fn binding_rules() {
        let mut s = FaultSet::new();
        s.add(spec(r#"{"binding": "203.0.113.0/24", "effect": "stuck"}"#))
            .unwrap();
        s.add(spec(r#"{"binding": "abc", "effect": "fail", "count": 1}"#))
            .unwrap();
        assert!(s.is_stuck("x", "203.0.113.0/24") && !s.is_stuck("x", "203.0.113.0/25"));
        assert!(
            s.on_request("GET", "/anything", 0.0).is_none(),
            "binding rules are not request rules"
        );
        assert_eq!(
            s.fail_binding(Some("abc"), None).as_deref(),
            Some("fault-2")
        );
        assert!(s.fail_binding(Some("abc"), None).is_none());
    }

    #[test]
    fn invalid_rules_are_refused() {
        for bad in [
            r#"{"path": "/x"}"#,
            r#"{"path": "/x", "status": 200}"#,
            r#"{"path": "/x", "status": 500, "delay_ms": 3}"#,
            r#"{"status": 500}"#,
            r#"{"path": "x", "status": 500}"#,
            r#"{"path": "/x", "status": 500, "probability": 2}"#,
            r#"{"path": "/x", "status": 500, "count": 0}"#,
            r#"{"binding": "b", "effect": "melt"}"#,
            r#"{"path": "/x", "status": 500, "id": "no spaces"}"#,
        ] {
            assert!(FaultSet::new().add(spec(bad)).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<FaultSpec>(r#"{"path": "/x", "stauts": 500}"#).is_err());
        let mut s = FaultSet::new();
        s.add(spec(r#"{"id": "a", "path": "/x", "status": 500}"#))
            .unwrap();
        assert!(s
            .add(spec(r#"{"id": "a", "path": "/y", "status": 500}"#))
            .is_err());
    }
}
