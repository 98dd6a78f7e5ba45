//! The snapshot target: files given to `inregion snapshot restore` (and to
//! `POST /__inregion/snapshot/restore`) are untrusted input.

use inregion_control::{Change, Snapshot};

/// Parses a snapshot file and restores it into a fresh control plane: no panic; a
/// refused snapshot changes nothing (version 0, no records); an accepted one, saved
/// again and restored into a second fresh control plane, gives the same records.
pub fn snapshot(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(snap) = Snapshot::from_json(text) else {
        return;
    };
    let control = crate::fresh_control_plane();
    match control.restore(snap) {
        Ok(()) => {
            let saved = control.snapshot(crate::NOW, 0).to_json();
            let again = crate::fresh_control_plane();
            let reread = Snapshot::from_json(&saved).expect("a saved snapshot parses");
            again.restore(reread).expect("a saved snapshot restores");
            // The second control plane also adopts the first one's own key (the
            // snapshot carries it so that its tokens keep working): compare the rest.
            let records = |c: &inregion_control::ControlPlane| -> Vec<Change> {
                c.dump()
                    .records
                    .into_iter()
                    .filter(|r| !matches!(r, Change::AdoptTokenKey(_)))
                    .collect()
            };
            assert_eq!(
                records(&again),
                records(&control),
                "a snapshot saved and restored again differs"
            );
        }
        Err(_) => {
            assert_eq!(control.version(), 0, "a refused restore wrote");
            assert!(
                control.dump().records.is_empty(),
                "a refused restore left records"
            );
        }
    }
}
