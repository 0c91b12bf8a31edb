//! Replays the inputs of the kernel's fuzz targets as ordinary tests.
//!
//! `fuzz/src/kernel_checks.rs` holds the checks every fuzz target runs
//! (`token`, `redaction`, `firewall`, `expand`); it is included here verbatim,
//! so a stored input fails here exactly as it failed under `cargo fuzz`.
//! Replayed: every crash input kept under `fuzz/regressions/<target>/` (one file
//! per fixed crash, named for what it caught) and the seed corpora under
//! `fuzz/corpus/<target>/`. The `macro_args` target's inputs are replayed by
//! the fuzz crate's own test (`cargo test --manifest-path fuzz/Cargo.toml --lib`),
//! as the macro's modules cannot be linked from here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../fuzz/src/kernel_checks.rs"]
mod kernel_checks;

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    // The run-time variable first (a binary reused from another checkout's
    // build would look in that checkout).
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let dir = Path::new(&manifest_dir)
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
}

/// Runs `check` on every stored input of `target`; reports every failing file.
fn replay(target: &str, check: fn(&[u8])) {
    let regressions = inputs("regressions", target);
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
    let mut failures = Vec::new();
    for path in regressions.iter().chain(&corpus) {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: failing inputs: {failures:#?}"
    );
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
