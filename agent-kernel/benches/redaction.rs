//! String and row redaction throughput (issue 19, `docs/benchmarks.md`),
//! the windowed implementation (`new`) beside the one it replaced (`old`,
//! the test oracle in `tests/support/redaction_oracle/`), in the same run:
//!
//! - `redact_text/{prose,logs,fullwidth}/{1KiB,256KiB,16MiB}/{new,old}`:
//!   `redact_str` over the committed corpora (`benches/corpora/`, written by
//!   `scripts/gen-redaction-corpora.py`), repeated up to the size;
//! - `redact_rows/{200,20000,200000}/new`: the billing shape
//!   (`data/billing_invoices.json` repeated, 6 allowed fields) through
//!   `Redactor::redact` (the old row walk is not kept; its figures come
//!   from this file run on the old commit, see `docs/benchmarks.md`).
//!
//! `cargo bench -p agent-kernel --bench redaction`. With
//! `REDACTION_ONCE=<case>` one case runs once inside `run_once` (for
//! callgrind's `--toggle-collect`), e.g. `REDACTION_ONCE=text/prose/16MiB/new`
//! or `REDACTION_ONCE=rows/20000`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/support/redaction_oracle/mod.rs"]
mod oracle;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use agent_kernel::firewall::Redactor;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use serde_json::Value;

const CORPORA: [&str; 3] = ["prose", "logs", "fullwidth"];
const SIZES: [(&str, usize); 3] = [
    ("1KiB", 1 << 10),
    ("256KiB", 256 << 10),
    ("16MiB", 16 << 20),
];
const ROWS: [usize; 3] = [200, 20_000, 200_000];
const ALLOWED: [&str; 6] = [
    "id",
    "customer_name",
    "amount",
    "currency",
    "status",
    "date",
];

fn manifest_path(rel: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), rel].iter().collect()
}

/// The corpus repeated (separated by a newline) and cut at a character
/// boundary to at most `size` bytes.
fn text(corpus: &str, size: usize) -> String {
    let path = manifest_path(&format!("benches/corpora/{corpus}.txt"));
    let base = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = String::with_capacity(size + base.len());
    while out.len() < size {
        out.push_str(&base);
        out.push('\n');
    }
    let mut cut = size.min(out.len());
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out
}

/// `n` billing invoices (the 200 of `data/` repeated).
fn rows(n: usize) -> Value {
    let path = manifest_path("../data/billing_invoices.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let base = data.as_array().unwrap();
    Value::Array(base.iter().cycle().take(n).cloned().collect())
}

fn allowed() -> Vec<String> {
    ALLOWED.iter().map(|s| (*s).to_owned()).collect()
}

fn redact_text(c: &mut Criterion) {
    let redactor = Redactor::new();
    for corpus in CORPORA {
        let mut group = c.benchmark_group(format!("redact_text/{corpus}"));
        for (label, size) in SIZES {
            let input = text(corpus, size);
            group.throughput(Throughput::Bytes(input.len() as u64));
            if size >= 1 << 20 {
                group.sample_size(10);
                group.sampling_mode(SamplingMode::Flat);
                group.measurement_time(Duration::from_secs(4));
            } else {
                group.sampling_mode(SamplingMode::Auto);
                group.sample_size(30);
                group.measurement_time(Duration::from_secs(2));
            }
            group.bench_with_input(BenchmarkId::new(label, "new"), &input, |b, input| {
                b.iter(|| redactor.redact_str(black_box(input)).len());
            });
            group.bench_with_input(BenchmarkId::new(label, "old"), &input, |b, input| {
                b.iter(|| oracle::redact_str(black_box(input)).len());
            });
        }
        group.finish();
    }
}

fn redact_rows(c: &mut Criterion) {
    let redactor = Redactor::new();
    let allowed = allowed();
    let mut group = c.benchmark_group("redact_rows");
    for n in ROWS {
        let data = rows(n);
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(if n >= 20_000 { 10 } else { 30 });
        group.sampling_mode(if n >= 20_000 {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        });
        group.measurement_time(Duration::from_secs(3));
        group.bench_with_input(BenchmarkId::new(n.to_string(), "new"), &data, |b, data| {
            b.iter(|| redactor.redact(black_box(data), Some(&allowed)).counts);
        });
    }
    group.finish();
}

/// One case, once: the function callgrind counts.
#[inline(never)]
fn run_once(case: &str) -> usize {
    let redactor = Redactor::new();
    let parts: Vec<&str> = case.split('/').collect();
    match parts.as_slice() {
        ["text", corpus, size, variant] => {
            let bytes = SIZES
                .iter()
                .find(|(label, _)| label == size)
                .map(|(_, n)| *n)
                .unwrap_or_else(|| panic!("unknown size {size}"));
            let input = text(corpus, bytes);
            let run = || match *variant {
                "new" => redactor.redact_str(black_box(&input)).len(),
                "old" => oracle::redact_str(black_box(&input)).len(),
                other => panic!("unknown variant {other}"),
            };
            // Once outside the count: lazily built automata and DFA states.
            black_box(run());
            let len = collect(run);
            println!("{case}: {} bytes in, {len} out", input.len());
            len
        }
        ["rows", n] => {
            let data = rows(n.parse().unwrap());
            let allowed = allowed();
            let run = || {
                redactor
                    .redact(black_box(&data), Some(&allowed))
                    .counts
                    .total()
            };
            black_box(run());
            let total = collect(run);
            println!("{case}: {total} redactions");
            total
        }
        _ => panic!("REDACTION_ONCE: text/<corpus>/<size>/<new|old> or rows/<n>"),
    }
}

/// The measured call (callgrind: `--toggle-collect=redaction::collect*`).
#[inline(never)]
fn collect(f: impl Fn() -> usize) -> usize {
    f()
}

fn main() {
    if let Ok(case) = std::env::var("REDACTION_ONCE") {
        // Warm the lazily compiled patterns outside the measured call.
        let _ = Redactor::new().redact_str("warm 4111 1111 1111 1111 bob@example.com");
        let _ = oracle::redact_str("warm 4111 1111 1111 1111 bob@example.com");
        black_box(run_once(&case));
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    redact_text(&mut c);
    redact_rows(&mut c);
    c.final_summary();
}
