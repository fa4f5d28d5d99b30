//! The handle cap at every launch depth, held to by the hostile test app
//! (`handles N` keeps N clock pollables).

use super::launch::Family;
use super::limits::{MAX_HANDLES, MAX_LAUNCH_DEPTH, max_handles_at};
use super::{AppConfig, AppHost, AppOutcome};
use crate::{ArtifactStore, Error};

const HOSTILE: &[u8] = include_bytes!("../../../tests/apps/hostile.wasm");

/// Runs the hostile app `depth` launches deep, keeping `handles` handles.
fn keep(host: &AppHost, depth: u32, handles: usize) -> Result<AppOutcome, Error> {
    let app = host.load_file(HOSTILE).unwrap();
    let mut config = AppConfig::new("h");
    config.args = vec!["handles".into(), handles.to_string()];
    let view = host.store.app("h", config.quota).unwrap();
    host.run_in(&app, &config, view, depth, Family::new()).0
}

#[test]
fn a_launch_chain_holds_fewer_than_twice_the_handles_of_one_run() {
    let chain: usize = (0..=MAX_LAUNCH_DEPTH).map(max_handles_at).sum();
    assert!(chain < 2 * MAX_HANDLES, "a full chain may hold {chain}");
    let host = AppHost::new(ArtifactStore::open_memory().unwrap()).unwrap();
    for depth in 0..=MAX_LAUNCH_DEPTH {
        let cap = max_handles_at(depth);
        // Just under the cap (its std holds a few handles of its own).
        let under = keep(&host, depth, cap - 50).unwrap();
        let out = String::from_utf8_lossy(&under.stdout);
        assert_eq!(under.exit_code, 0, "depth {depth}: {out}");
        assert!(
            out.ends_with(&format!("kept {} handles\n", cap - 50)),
            "{out}"
        );
        let over = keep(&host, depth, cap + 1).unwrap_err();
        assert!(
            matches!(&over, Error::AppTrap { message, .. } if message.contains("handle limit exceeded")),
            "depth {depth}: {over:?}"
        );
    }
    assert_eq!(max_handles_at(MAX_LAUNCH_DEPTH), 625);
}
