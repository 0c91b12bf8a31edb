//! Replays the inputs of the kernel's fuzz targets as ordinary tests.
//!
//! `fuzz/src/kernel_checks.rs` holds the checks every fuzz target runs
//! (`token`, `redaction`, `firewall`, `expand`, `shapes`); it is included here verbatim,
//! so a stored input fails here exactly as it failed under `cargo fuzz`.
//! Replayed (by `fuzz/src/replay.rs`, also included verbatim): every crash
//! input kept under `fuzz/regressions/<target>/` and the seed corpora under
//! `fuzz/corpus/<target>/`, against this workspace's features. The fuzz
//! crate's own test (`cargo test --manifest-path fuzz/Cargo.toml --lib`, run
//! by `scripts/test-all.sh`) replays all six targets as the fuzzer builds
//! them, `macro_args` included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../fuzz/src/kernel_checks.rs"]
mod kernel_checks;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

use std::path::PathBuf;

/// `fuzz/` of the checkout under test (the run-time variable first: a binary
/// reused from another checkout's build would look in that checkout).
fn fuzz_dir() -> PathBuf {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    PathBuf::from(manifest_dir).join("../fuzz")
}

fn replay(target: &str, check: fn(&[u8])) {
    replay::replay(&fuzz_dir(), target, check);
}

#[test]
fn token_inputs_replay() {
    replay("token", kernel_checks::token);
}

#[test]
fn redaction_inputs_replay() {
    replay("redaction", kernel_checks::redaction);
}

#[test]
fn firewall_inputs_replay() {
    replay("firewall", kernel_checks::firewall);
}

#[test]
fn expand_inputs_replay() {
    replay("expand", kernel_checks::expand);
}

#[test]
fn shapes_inputs_replay() {
    replay("shapes", kernel_checks::shapes);
}
