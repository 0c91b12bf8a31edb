//! A fixed number of billing invokes on a chosen audit store, for
//! instruction counts under callgrind ("Issue 21: the SQLite audit store" in
//! `docs/benchmarks.md`): the whole program is counted, writer thread
//! included, and two runs with different `n` give the cost per invoke as
//! their difference (set-up and shutdown cancel out).
//!
//! ```text
//! cargo build --profile measure -p agent-kernel --features sqlite --example audit_loop
//! valgrind --tool=callgrind --separate-threads=yes target/measure/examples/audit_loop buffered 1000
//! ```
//! Arguments: `memory`, `buffered` or `acknowledged`, then the number of
//! invokes (default 1000). The database goes to a fresh directory under the
//! system temp dir, removed at the end; the kernel is dropped first, so every
//! record is written before the program ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../benches/billing_workload/mod.rs"]
mod billing_workload;

use std::hint::black_box;

use agent_kernel::store::sqlite::{SqliteOptions, WriteMode};
use agent_kernel::store::{AuditKey, Stores};
use billing_workload::{Workload, build_with, dataset, invoke_args};

fn main() {
    let mut argv = std::env::args().skip(1);
    let store = argv.next().unwrap_or_else(|| "memory".to_owned());
    let n: u64 = argv.next().map_or(1_000, |s| s.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("ak-audit-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = AuditKey::new(b"audit loop chain key, 32 bytes long").unwrap();
    let options = match store.as_str() {
        "memory" => None,
        "buffered" => Some(
            SqliteOptions::new(key)
                .mode(WriteMode::Buffered)
                .queue_capacity(1 << 20),
        ),
        "acknowledged" => Some(SqliteOptions::new(key)),
        other => panic!("store: memory, buffered or acknowledged, not {other}"),
    };
    let stores = options.map(|o| Stores::sqlite(dir.join("audit.db"), o).unwrap());
    let data = dataset();
    let (kernel, principal, token) = build_with(Workload::Billing, &data, |b| match stores {
        Some(s) => b.stores(s),
        None => b,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let args = invoke_args(Workload::Billing);
    let facts = rt.block_on(async {
        let mut sum = 0;
        for _ in 0..n {
            let frame = kernel
                .invoke(&token, &principal, args.clone(), Workload::Billing.mode())
                .await
                .unwrap();
            sum += black_box(frame).facts.len();
        }
        sum
    });
    let records = kernel
        .audit_log()
        .map(|log| log.count().unwrap())
        .unwrap_or(kernel.traces().len() as u64);
    drop(kernel);
    std::fs::remove_dir_all(&dir).unwrap();
    println!(
        "{n} invokes on the {store} audit store; {facts} facts; {records} records counted before shutdown"
    );
}
