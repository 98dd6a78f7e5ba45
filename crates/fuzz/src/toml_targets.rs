//! The TOML targets: scenario files (`inregion sim`) and seeding configs (`serve --config`).

use inregion_control::SeedConfig;

/// Parses a scenario; an accepted one must describe itself without panicking.
pub fn scenario_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = inregion_sim::Scenario::from_toml_str("fuzz.toml", text) {
        let _ = format!("{s:?}");
    }
}

/// Parses a seeding config and applies it to a fresh control plane: no panic, and a
/// refused seed leaves the control plane as it was (version 0, no records).
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = SeedConfig::from_toml(text) else {
        return;
    };
    let control = crate::fresh_control_plane();
    let now = crate::NOW;
    match control.seed(&cfg, now) {
        Ok(()) => {
            // Seeding is idempotent: the same document again changes nothing.
            let v = control.version();
            control
                .seed(&cfg, now)
                .expect("a seed that applied applies again");
            assert_eq!(control.version(), v, "re-applying the same seed wrote");
        }
        Err(_) => {
            assert_eq!(control.version(), 0, "a refused seed wrote");
            assert!(
                control.dump().records.is_empty(),
                "a refused seed left records"
            );
        }
    }
}
