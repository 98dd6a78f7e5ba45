//! Tests of scenario parsing and validation: defaults, error messages, overrides.

use super::*;

const MINIMAL: &str = r#"
name = "t"
duration = "1h"
[[prefixes]]
id = "p"
cidr = "203.0.113.0/24"
[[clients]]
country = "DE"
[workload]
flows = 10
destinations = [{ cidr = "203.0.113.0/24" }]
"#;

#[test]
fn keys_of_another_distribution_or_op_and_ambiguous_names_are_errors() {
    let with = |extra: &str| Scenario::from_toml_str("t", &format!("{MINIMAL}{extra}"));
    let e = with("flow_size = { dist = \"fixed\", value = 100, min = 5 }\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("workload.flow_size.min: does not apply"),
        "{e}"
    );
    with("flow_size = { dist = \"fixed\", value = 100 }\n").unwrap();
    let op = |at: &str, body: &str| format!("[[timeline]]\nat = \"{at}\"\n{body}\n");
    let create = |at: &str| {
        op(
            at,
            "op = \"create_binding\"\nname = \"w\"\nprefix = \"p\"\ncidr = \"203.0.113.0/25\"\nregion = \"eu\"",
        )
    };
    let delete = |at: &str| op(at, "op = \"delete_binding\"\nbinding = \"w\"");
    let e = with(&op(
        "1m",
        "op = \"delete_binding\"\nbinding = \"w\"\nregion = \"us\"",
    ))
    .unwrap_err();
    assert!(
        e.to_string().contains("timeline[0].region: does not apply"),
        "{e}"
    );
    let e = with(&format!("{}{}", create("1m"), create("2m"))).unwrap_err();
    assert!(e.to_string().contains("already used by timeline[0]"), "{e}");
    // Deleted, the name is free again (timeline order is by time, not file order).
    with(&format!("{}{}{}", create("1m"), create("3m"), delete("2m"))).unwrap();
}

#[test]
fn empty_lists_host_bits_and_empty_ids_are_errors() {
    let bad = [
        (
            MINIMAL.replace("203.0.113.0/24\" }]", "203.0.113.5/24\" }]"),
            "host bits set (did you mean 203.0.113.0/24?)",
        ),
        (
            format!("{MINIMAL}[dns]\ntargets = [\"203.0.113.7\"]\nfrom = []\n"),
            "dns.from: give at least one place",
        ),
        (
            format!("{MINIMAL}[dns]\ntargets = [\"203.0.113.7\"]\nqueries = []\n"),
            "dns.queries: give at least one query",
        ),
        (
            format!("{MINIMAL}[[accounts]]\nid = \"\"\n"),
            "accounts[0].id: must not be empty",
        ),
        (
            MINIMAL.replace("flows = 10", "rate = inf"),
            "must be a finite number > 0, got inf",
        ),
    ];
    for (text, says) in bad {
        let e = Scenario::from_toml_str("t", &text).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn duration_override_keeps_the_rate_and_the_file_limits() {
    let mut s = Scenario::from_toml_str("t", MINIMAL).unwrap();
    // No `bucket` in the file: it follows the duration (a 48th of it).
    s.set_duration("--duration", SimTime::from_secs(48 * 3600))
        .unwrap();
    assert_eq!(s.bucket, SimTime::from_secs(3600));
    assert_eq!(s.workload.flows, 480, "10 flows per hour, kept");
    assert!(s.set_duration("--duration", SimTime::ZERO).is_err());
    let e = s
        .set_duration("--duration", SimTime::from_secs(400 * 86_400))
        .unwrap_err();
    assert!(e.to_string().contains("--duration"), "{e}");
    assert_eq!(
        s.duration,
        SimTime::from_secs(48 * 3600),
        "unchanged on error"
    );
    // A `bucket` from the file is kept, and bounds the duration.
    let text = MINIMAL.replace("duration = \"1h\"", "duration = \"1h\"\nbucket = \"1s\"");
    let mut s = Scenario::from_toml_str("t", &text).unwrap();
    s.set_duration("--duration", SimTime::from_secs(2 * 3600))
        .unwrap();
    assert_eq!(s.bucket, SimTime::from_secs(1));
    let e = s
        .set_duration("--duration", SimTime::from_secs(3 * 3600))
        .unwrap_err();
    assert!(e.to_string().contains("larger `bucket`"), "{e}");
    assert!(s.set_flows("--flows", MAX_FLOWS + 1).is_err());
    s.set_flows("--flows", 7).unwrap();
    assert_eq!(s.workload.flows, 7);
}

#[test]
fn minimal_scenario_gets_defaults() {
    let s = Scenario::from_toml_str("t.toml", MINIMAL).unwrap();
    assert_eq!(s.seed, 1);
    assert_eq!(s.duration, SimTime::from_secs(3600));
    assert_eq!(s.bucket, SimTime::from_secs(75));
    assert_eq!(s.accounts.len(), 1);
    assert_eq!(s.propagation.mode, PropagationMode::Default);
    assert_eq!(s.workload.protocols, [1.0, 0.0, 0.0]);
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let e = Scenario::from_toml_str("t.toml", &format!("sead = 3\n{MINIMAL}")).unwrap_err();
    assert!(e.to_string().contains("sead"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("duration = \"1h\"", "duration = \"soon\"", "duration"),
        (
            "flows = 10",
            "flows = 10\nprotocols = { tcp = -1 }",
            "workload.protocols.tcp",
        ),
        (
            "country = \"DE\"",
            "country = \"DE\"\nweight = 0",
            "clients[0].weight",
        ),
        (
            "country = \"DE\"",
            "city = \"X\"\ncountry = \"DE\"",
            "clients[0]",
        ),
        (
            "flows = 10",
            "flows = 10\nflow_duration = { dist = \"lognormal\", median = \"2s\" }",
            "workload.flow_duration.sigma",
        ),
    ];
    for (from, to, key) in cases {
        let text = MINIMAL.replace(from, to);
        let e = Scenario::from_toml_str("t.toml", &text).unwrap_err();
        match &e {
            ScenarioError::Invalid { key: k, .. } => assert_eq!(k, key, "{e}"),
            other => panic!("{other}"),
        }
    }
}

#[test]
fn timeline_is_sorted_stably_and_checks_references() {
    let text = format!(
        "{MINIMAL}\n[[timeline]]\nat = \"2h\"\nop = \"delete_binding\"\nbinding = \"a\"\n[[timeline]]\nat = \"0s\"\nop = \"create_binding\"\nprefix = \"p\"\ncidr = \"203.0.113.0/25\"\nregion = \"eu\"\nname = \"a\"\n"
    );
    // 2h is after the 1h duration.
    let e = Scenario::from_toml_str("t.toml", &text).unwrap_err();
    assert!(e.to_string().contains("timeline[0].at"), "{e}");
    let s = Scenario::from_toml_str("t.toml", &text.replace("1h", "3h")).unwrap();
    assert_eq!(s.timeline[0].index, 1);
    assert_eq!(s.timeline[1].index, 0);
    let bad = text.replace("prefix = \"p\"", "prefix = \"q\"");
    let e = Scenario::from_toml_str("t.toml", &bad.replace("1h", "3h")).unwrap_err();
    assert!(e.to_string().contains("timeline[1].prefix"), "{e}");
}

#[test]
fn places_parse() {
    assert!(matches!(
        parse_place("gru").unwrap().1,
        ClientPlace::Iata(_)
    ));
    assert!(matches!(
        parse_place("BR").unwrap().1,
        ClientPlace::Country(_)
    ));
    assert!(matches!(
        parse_place("-23.5,-46.6").unwrap().1,
        ClientPlace::Point(_)
    ));
    assert!(parse_place("Atlantis").is_err());
}

#[test]
fn shipped_scenarios_are_valid() {
    Scenario::quickstart();
    for f in [
        "jp-fail-closed.toml",
        "ipv6-nested.toml",
        "strict-reset.toml",
        "scale-10m.toml",
    ] {
        let path = format!("{}/../../scenarios/{f}", env!("CARGO_MANIFEST_DIR"));
        Scenario::from_path(std::path::Path::new(&path)).unwrap();
    }
}
