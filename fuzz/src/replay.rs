//! Replays the stored inputs of a fuzz target as an ordinary test.
//!
//! Stored inputs are the crash reproducers kept under
//! `fuzz/regressions/<target>/` (one file per fixed crash, named for what it
//! caught) and the seed corpus under `fuzz/corpus/<target>/`. Both folders must
//! exist (a target with no regression yet keeps a `.gitkeep`) and the corpus
//! must not be empty: a renamed or lost folder fails the replay instead of
//! passing with nothing run.
//!
//! Depends on `std` alone, so that `agent-kernel/tests/fuzz_regressions.rs`
//! includes it verbatim, as it includes `kernel_checks.rs`.

use std::panic::{RefUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The input files of `fuzz_dir/<kind>/<target>/`, sorted, without dot-files.
///
/// # Panics
/// When the folder cannot be read.
pub fn inputs(fuzz_dir: &Path, kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir.join(kind).join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "cannot read the stored fuzz inputs in {}: {e}",
            dir.display()
        )
    });
    let mut paths: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path()
        })
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

/// Runs `check` on every regression and corpus input of `target` under
/// `fuzz_dir`, and returns how many inputs ran.
///
/// # Panics
/// When a folder is missing, the corpus is empty, or `check` panics on any
/// input (every failing file is named).
pub fn replay(fuzz_dir: &Path, target: &str, check: impl Fn(&[u8]) + RefUnwindSafe) -> usize {
    let regressions = inputs(fuzz_dir, "regressions", target);
    let corpus = inputs(fuzz_dir, "corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
    let mut failures = Vec::new();
    for path in regressions.iter().chain(&corpus) {
        let data =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if catch_unwind(|| check(&data)).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: failing inputs: {failures:#?}"
    );
    regressions.len() + corpus.len()
}
