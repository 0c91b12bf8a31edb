//! The SQLite audit store against the in-memory one (issue 21,
//! `docs/benchmarks.md` "Issue 21: the SQLite audit store"), on the billing
//! workload (`invoke/summary`), in the same run:
//!
//! - criterion: one caller, `memory`, `sqlite_buffered`, `sqlite_acknowledged`;
//! - printed, interleaved rounds (robust to load from other processes): the
//!   median per-invoke time of each store and the ratios to memory;
//! - printed: `Acknowledged` with 1, 4 and 16 concurrent callers on a
//!   two-worker runtime: p50 and p99 latency and invokes per second (group
//!   commit amortises the commit over the callers waiting together), with
//!   memory and `Buffered` beside it.
//!
//! The database lives under the system temp dir (`AUDIT_BENCH_DIR` to choose
//! another file system). `AUDIT_BENCH_QUICK=1` runs fewer rounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "billing_workload/mod.rs"]
mod billing_workload;

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_kernel::store::sqlite::{SqliteOptions, SqliteStore, WriteMode};
use agent_kernel::store::{AuditKey, Stores};
use agent_kernel::*;
use billing_workload::{Workload, build_with, dataset, invoke_args};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

/// Which audit store a kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Memory,
    Buffered,
    Acknowledged,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Buffered => "sqlite_buffered",
            Store::Acknowledged => "sqlite_acknowledged",
        }
    }
}

/// A kernel on a fresh store, and the store (to flush) when it is SQLite.
struct Bench {
    kernel: Kernel,
    principal: Principal,
    token: CapabilityToken,
    sqlite: Option<SqliteStore>,
    _dir: Dir,
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fresh_dir() -> Dir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::var_os("AUDIT_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!(
        "ak-audit-bench-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
}

fn bench_kernel(data: &Arc<Value>, store: Store) -> Bench {
    let dir = fresh_dir();
    let key = AuditKey::new(b"benchmark audit chain key, 32 bytes").unwrap();
    let sqlite = match store {
        Store::Memory => None,
        Store::Buffered => Some(
            SqliteStore::open(
                dir.0.join("audit.db"),
                SqliteOptions::new(key)
                    .mode(WriteMode::Buffered)
                    .queue_capacity(1 << 20),
            )
            .unwrap(),
        ),
        Store::Acknowledged => Some(
            SqliteStore::open(
                dir.0.join("audit.db"),
                SqliteOptions::new(key).queue_capacity(1 << 16),
            )
            .unwrap(),
        ),
    };
    let stores = sqlite.as_ref().map(|s| Stores {
        audit: s.audit_log(),
        revocations: s.revocation_store(),
    });
    let (kernel, principal, token) = build_with(Workload::Billing, data, |b| match stores {
        Some(stores) => b.stores(stores),
        None => b,
    });
    Bench {
        kernel,
        principal,
        token,
        sqlite,
        _dir: dir,
    }
}

impl Bench {
    fn flush(&self) {
        if let Some(s) = &self.sqlite {
            s.audit_log().flush().unwrap();
        }
    }
}

/// `n` sequential invokes; the time per invoke, the writer's backlog
/// flushed after the timing.
fn time_sequential(rt: &tokio::runtime::Runtime, b: &Bench, n: u32) -> Duration {
    let args = invoke_args(Workload::Billing);
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            let frame = b
                .kernel
                .invoke(&b.token, &b.principal, args.clone(), ResponseMode::Summary)
                .await
                .unwrap();
            black_box(frame);
        }
        start.elapsed()
    });
    b.flush();
    elapsed / n
}

/// `callers` tasks each making `per_caller` invokes on a two-worker runtime:
/// every invoke's latency, and the invokes per second over the whole run.
fn concurrent(b: &Arc<Bench>, callers: usize, per_caller: usize) -> (Vec<Duration>, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let start = Instant::now();
    let latencies = rt.block_on(async {
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let b = Arc::clone(b);
                tokio::spawn(async move {
                    let args = invoke_args(Workload::Billing);
                    let mut out = Vec::with_capacity(per_caller);
                    for _ in 0..per_caller {
                        let t = Instant::now();
                        let frame = b
                            .kernel
                            .invoke(&b.token, &b.principal, args.clone(), ResponseMode::Summary)
                            .await
                            .unwrap();
                        out.push(t.elapsed());
                        black_box(frame);
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::with_capacity(callers * per_caller);
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    b.flush();
    let rate = latencies.len() as f64 / start.elapsed().as_secs_f64();
    (latencies, rate)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn benches(c: &mut Criterion) {
    let data = dataset();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let quick = std::env::var_os("AUDIT_BENCH_QUICK").is_some();
    let stores = [Store::Memory, Store::Buffered, Store::Acknowledged];

    // Interleaved rounds: each round times every store once, on fresh kernels.
    let rounds = if quick { 5 } else { 15 };
    let per_round = 1_000;
    let mut per_store: Vec<Vec<Duration>> = vec![Vec::new(); stores.len()];
    for _ in 0..rounds {
        for (i, store) in stores.iter().enumerate() {
            let b = bench_kernel(&data, *store);
            per_store[i].push(time_sequential(&rt, &b, per_round));
        }
    }
    let medians: Vec<Duration> = per_store
        .iter_mut()
        .map(|v| {
            v.sort_unstable();
            v[v.len() / 2]
        })
        .collect();
    for (store, median) in stores.iter().zip(&medians) {
        println!(
            "interleaved invoke/summary {:<20} {median:>10.2?} per invoke (median of {rounds} rounds of {per_round}); ×{:.2} memory",
            store.name(),
            median.as_secs_f64() / medians[0].as_secs_f64()
        );
    }

    // Concurrent callers.
    let total = if quick { 1_600 } else { 8_000 };
    for callers in [1, 4, 16] {
        for store in stores {
            let b = Arc::new(bench_kernel(&data, store));
            let (mut lat, rate) = concurrent(&b, callers, total / callers);
            lat.sort_unstable();
            println!(
                "concurrent invoke/summary {:<20} callers={callers:<2} p50={:>10.2?} p99={:>10.2?} invokes/s={rate:>9.0}",
                store.name(),
                percentile(&lat, 0.50),
                percentile(&lat, 0.99),
            );
        }
    }

    // Criterion, one caller.
    let mut group = c.benchmark_group("audit");
    for store in stores {
        let b = bench_kernel(&data, store);
        let args = invoke_args(Workload::Billing);
        group.bench_function(format!("invoke/summary/{}", store.name()), |bench| {
            bench.iter_custom(|iters| {
                let elapsed = rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let frame = b
                            .kernel
                            .invoke(&b.token, &b.principal, args.clone(), ResponseMode::Summary)
                            .await
                            .unwrap();
                        black_box(frame);
                    }
                    start.elapsed()
                });
                b.flush();
                elapsed
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = audit;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(audit);
