//! The `simulate`, `trace` and `bench` subcommands, end to end through the binary.

use std::process::Command;

fn inregion() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inregion"))
}

fn scenario(name: &str) -> String {
    format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn simulate_writes_report_csv_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qs");
    let o = inregion()
        .args([
            "simulate",
            &scenario("quickstart"),
            "--flows",
            "30000",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("flows 30000"), "{stdout}");
    assert!(stdout.contains("out-of-region processed: 0"), "{stdout}");
    assert!(stdout.contains("simulated flows/s"), "{stdout}");
    for f in [
        "report.json",
        "timeseries.csv",
        "by_bound_region.csv",
        "data_centers.csv",
        "added_rtt_cdf.csv",
        "dns.csv",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    for p in ["outcomes_over_time", "added_rtt_cdf", "top_forwarded_dcs"] {
        let png = std::fs::read(out.join(format!("{p}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{p}.png");
        let svg = std::fs::read_to_string(out.join(format!("{p}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<text"), "{p}.svg");
    }
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(json.contains("\"out_of_region_processed\": 0"));

    // --quiet prints nothing; same seed, same report.json bytes.
    let out2 = dir.path().join("qs2");
    let o = inregion()
        .args([
            "simulate",
            &scenario("quickstart"),
            "--flows",
            "30000",
            "--quiet",
            "--out",
        ])
        .arg(&out2)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
    assert_eq!(
        json,
        std::fs::read_to_string(out2.join("report.json")).unwrap()
    );
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nduration = \"soon\"\n[workload]\ndestinations = []\n",
    )
    .unwrap();
    let o = inregion().args(["simulate"]).arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("duration"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let o = inregion()
        .args(["simulate", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let o = inregion()
        .args(["trace", "not-an-ip", "--from", "GRU"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an IP address"));
    let o = inregion()
        .args(["trace", "203.0.113.7", "--from", "Atlantis"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // Command-line overrides have the file's limits (they used to run away silently).
    for (args, says) in [
        (["--flows", "18446744073709551615"], "at most 10^10 flows"),
        (["--duration", "200000h"], "at most 365 days"),
        (["--duration", "0s"], "must be > 0"),
    ] {
        let o = inregion()
            .args(["simulate", &scenario("quickstart"), "-q"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(says) && err.contains(args[0]),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn help_teaches_with_examples() {
    for sub in ["simulate", "trace"] {
        let o = inregion().args([sub, "--help"]).output().unwrap();
        assert!(o.status.success());
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains("Examples:"), "{sub}: {s}");
    }
}

#[test]
fn trace_explains_ingress_binding_region_and_choice() {
    // T+7h: the eu binding has reached every data center; São Paulo is forwarded.
    let o = inregion()
        .args(["trace", "203.0.113.7", "--from", "GRU", "--at", "7h"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("ingress: anycast lands on GRU"), "{s}");
    assert!(s.contains("203.0.113.0/25 → region eu"), "{s}");
    assert!(s.contains("forwarded"), "{s}");
    // The jp scenario's failure window: refused, fail closed.
    let s = trace_from_nrt("3h", &scenario("jp-fail-closed"));
    assert!(s.contains("refused"), "{s}");
}

/// `inregion trace 198.51.100.10 --from NRT --at AT --scenario FILE`: its stdout (the run
/// must succeed).
fn trace_from_nrt(at: &str, scenario: &str) -> String {
    let o = inregion()
        .args(["trace", "198.51.100.10", "--from", "NRT", "--at", at])
        .args(["--scenario", scenario])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A short failure inside a longer one must not end the longer one: with all of Japan
/// down 2h–4h and NRT alone also down 2h30m–3h, NRT is still down at 3h30m (traffic bound
/// to `jp` is refused, not processed at NRT), and comes back with the rest at 4h.
#[test]
fn overlapping_failures_keep_a_data_center_down_until_the_last_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overlap.toml");
    let base = std::fs::read_to_string(scenario("jp-fail-closed")).unwrap();
    let extra = "\n[[failures]]\ndc = \"NRT\"\nat = \"2h30m\"\nuntil = \"3h\"\n";
    // Insert the extra failure before the first [[clients]] table.
    let at = base.find("[[clients]]").unwrap();
    let text = format!("{}{extra}\n{}", &base[..at], &base[at..]);
    std::fs::write(&path, text).unwrap();
    let trace = |at: &str| trace_from_nrt(at, path.to_str().unwrap());
    let s = trace("3h30m");
    assert!(s.contains("refused"), "{s}");
    assert!(!s.contains("NRT recovers"), "{s}");
    let s = trace("4h30m");
    assert!(s.contains("processed at NRT"), "{s}");
}

/// The bench's environment settings are checked before anything runs: a mistyped case,
/// table or count is an error that names the valid ones, not a silent empty run.
#[test]
fn bench_settings_are_checked_and_name_the_valid_values() {
    for (which, var, value, says) in [
        (
            "edge",
            "INREGION_EDGE_CASES",
            "new-flow",
            "new-flows, new-flows-unbatched",
        ),
        ("edge", "INREGION_EDGE_LIVE", "0", "from 1 to 1000000"),
        ("edge", "INREGION_EDGE_LIVE", "lots", "from 1 to 1000000"),
        ("edge", "INREGION_BENCH_THREADS", "0", "bad thread count"),
        ("table", "INREGION_BENCH_ONLY", "v4", "v4-10k, v4-real"),
    ] {
        let o = inregion()
            .args(["bench", which, "--quick"])
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{var}={value}: {err}");
        assert!(
            err.contains(var) && err.contains(says),
            "{var}={value}: {err}"
        );
        assert!(o.stdout.is_empty(), "{var}={value} printed results");
    }
}
