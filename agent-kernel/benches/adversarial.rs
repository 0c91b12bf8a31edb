//! The `adversarial` group (issue 16, `docs/benchmarks.md`): tool outputs
//! whose shape once made the firewall super-linear, each at two sizes (n and
//! 4n; 4n is the size the issue measured). Every shape should take at most
//! 4.4 times as long at 4n as at n.
//!
//! Only the public firewall API is used, so the same file builds against
//! older versions of the crate for a side-by-side comparison. With
//! `ADVERSARIAL_ONCE=1` each case runs once and its time is printed (for
//! code too slow for criterion's samples):
//! `ADVERSARIAL_ONCE=1 cargo bench -p agent-kernel --bench adversarial`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use agent_kernel::ResponseMode;
use agent_kernel::firewall::{Budgets, Firewall, FirewallRequest};
use criterion::{BenchmarkId, Criterion};
use serde_json::{Map, Value, json};

/// One object whose keys are all e-mail addresses: each scrubs to
/// `[REDACTED]`, so every key collides with the first.
fn email_keys(n: usize) -> Value {
    let map: Map<String, Value> = (0..n)
        .map(|i| (format!("user{i}@example.com"), json!(i)))
        .collect();
    Value::Object(map)
}

/// Ten rows of `n` distinct plain keys each.
fn many_keys(n: usize) -> Value {
    Value::Array(
        (0..10)
            .map(|r| {
                let map: Map<String, Value> = (0..n)
                    .map(|i| (format!("row{r}_field{i}"), json!(i)))
                    .collect();
                Value::Object(map)
            })
            .collect(),
    )
}

/// One string of `n` UUIDs made of digits only (phone and card candidates
/// everywhere, all inside exempt spans).
fn digit_uuids(n: usize) -> Value {
    let uuids: Vec<String> = (0..n as u64)
        .map(|i| {
            let d = format!("{:032}", i.wrapping_mul(2_654_435_761) % 10u64.pow(18));
            format!(
                "{}-{}-{}-{}-{}",
                &d[0..8],
                &d[8..12],
                &d[12..16],
                &d[16..20],
                &d[20..32]
            )
        })
        .collect();
    Value::String(uuids.join(" "))
}

/// (name, mode, n, builder): the table, n being a quarter of its size.
type Shape = (&'static str, ResponseMode, usize, fn(usize) -> Value);

const SHAPES: [Shape; 5] = [
    ("email_keys_table", ResponseMode::Table, 1_000, email_keys),
    (
        "email_keys_summary",
        ResponseMode::Summary,
        1_000,
        email_keys,
    ),
    ("email_keys_expand", ResponseMode::Table, 500, |n| {
        Value::Array(vec![email_keys(n)])
    }),
    ("many_keys_summary", ResponseMode::Summary, 5_000, many_keys),
    (
        "digit_uuids_table",
        ResponseMode::Table,
        16_000,
        digit_uuids,
    ),
];

fn apply(firewall: &Firewall, budgets: &Budgets, data: &Value, mode: ResponseMode) -> usize {
    let out = firewall.apply(&FirewallRequest {
        data,
        requested_mode: mode,
        allowed_fields: None,
        max_rows: None,
        is_admin: false,
        budgets,
    });
    out.facts.len() + out.table_preview.len()
}

fn adversarial(c: &mut Criterion) {
    let budgets = Budgets::default();
    let firewall = Firewall::new(budgets);
    let mut group = c.benchmark_group("adversarial");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for (name, mode, n, build) in SHAPES {
        for size in [n, 4 * n] {
            let data = build(size);
            group.bench_with_input(BenchmarkId::new(name, size), &data, |b, data| {
                b.iter(|| black_box(apply(&firewall, &budgets, black_box(data), mode)));
            });
        }
    }
    group.finish();
}

/// Each case once, timed: `shape size milliseconds`, then the ratio 4n / n.
fn once() {
    let budgets = Budgets::default();
    let firewall = Firewall::new(budgets);
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    for (name, mode, n, build) in SHAPES {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let mut times = Vec::new();
        for size in [n, 4 * n] {
            let data = build(size);
            let started = Instant::now();
            black_box(apply(&firewall, &budgets, &data, mode));
            let ms = started.elapsed().as_secs_f64() * 1e3;
            println!("{name:<22} {size:>6} {ms:>12.1} ms");
            times.push(ms);
        }
        if let [small, large] = times[..] {
            println!("{name:<22} ratio  {:>12.2}", large / small);
        }
    }
}

fn main() {
    if std::env::var_os("ADVERSARIAL_ONCE").is_some() {
        once();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    adversarial(&mut c);
    c.final_summary();
}
