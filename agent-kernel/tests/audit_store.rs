//! The SQLite audit log and revocation store (issue 21): what survives a
//! restart, the keyed chain, retention, and the faults (file deleted or made
//! read-only mid-run, disk full, corrupt file, a second opener, a full queue):
//! clear errors naming the path, no panic, the tool never runs for a refused
//! invocation, and no acknowledged record is lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agent_kernel::store::sqlite::{SqliteOptions, SqliteStore, WriteMode};
use agent_kernel::store::{AuditKey, AuditLog, AuditQuery, Retention, Stores};
use agent_kernel::*;
use common::{LIST, SECRET, SUMMARY, reader, registry, router};
use serde_json::{Value, json};

const AUDIT_KEY: &[u8] = b"application audit key, not the token secret";

/// A fresh directory under the system temp dir, removed (and unmounted, if
/// a test mounted a file system on it) on drop.
struct TempDir(PathBuf, bool);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ak-audit-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir, false)
    }
    fn db(&self) -> PathBuf {
        self.0.join("audit.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("umount").arg(&self.0).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key() -> AuditKey {
    AuditKey::new(AUDIT_KEY).unwrap()
}

/// A billing kernel on `stores` whose driver counts its calls.
struct World {
    kernel: Kernel,
    calls: Arc<AtomicUsize>,
}

fn world_at(stores: Stores, clock: Arc<ManualClock>) -> World {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let data = Arc::new(common::invoices(5));
    let driver = InMemoryDriver::new("billing")
        .with_handler("list_invoices", move |_ctx| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(Arc::clone(&data))
        })
        .with_handler("summarize_spend", |_ctx| {
            Ok::<_, String>(json!({"totals": {"USD": 10.0}, "invoice_count": 30}))
        });
    let kernel = Kernel::builder(registry())
        .secret(SECRET)
        .router(router())
        .clock(clock.clone())
        .policy(
            DefaultPolicyEngine::builder()
                .clock(clock.clone())
                .build()
                .unwrap(),
        )
        .driver(driver)
        .stores(stores)
        .build()
        .unwrap();
    World { kernel, calls }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)))
}

fn open(path: &Path, options: SqliteOptions) -> Stores {
    Stores::sqlite(path, options).unwrap()
}

fn token(w: &World, capability: &str) -> CapabilityToken {
    let req = CapabilityRequest::new(capability, "list my invoices");
    w.kernel.get_token(&req, &reader(), "").unwrap()
}

/// An invocation whose arguments carry an e-mail address (redacted in the log).
async fn list(w: &World, token: &CapabilityToken) -> Result<Frame> {
    let args = args(json!({"operation": "list_invoices", "note": "mail bob@example.com"})).unwrap();
    w.kernel
        .invoke(token, &reader(), args, ResponseMode::Summary)
        .await
}

fn store_fault(err: &KernelError) -> StoreFault {
    err.store_fault()
        .unwrap_or_else(|| panic!("expected store_unavailable, got {err}"))
}

#[tokio::test]
async fn records_survive_a_restart_are_queryable_and_verify() {
    let dir = TempDir::new("restart");
    let clock = clock();
    let (ok_id, denied_id) = {
        let w = world_at(open(&dir.db(), SqliteOptions::new(key())), clock.clone());
        let t = token(&w, LIST);
        let frame = list(&w, &t).await.unwrap();
        clock.advance(Duration::from_secs(10));
        // A token for another principal: refused, and audited as such.
        let err = w
            .kernel
            .invoke(&t, &common::writer(), Args::new(), ResponseMode::Summary)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "token_principal_mismatch");
        let denied = w
            .kernel
            .traces()
            .list_all()
            .last()
            .unwrap()
            .action_id
            .clone();
        (frame.action_id, denied)
    };
    let mode = std::fs::metadata(dir.db()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the database is created 0600");

    // A new kernel on the same file sees every record.
    let w = world_at(open(&dir.db(), SqliteOptions::new(key())), clock.clone());
    let log = w.kernel.audit_log().unwrap();
    assert_eq!(log.count().unwrap(), 2);
    let ok = w.kernel.explain(&ok_id).unwrap();
    assert_eq!(ok.outcome, TraceOutcome::Success);
    assert_eq!(ok.args["note"], "mail [REDACTED]", "arguments are redacted");
    let by_principal = log
        .query(&AuditQuery::all().principal("analyst-001"))
        .unwrap();
    assert_eq!(by_principal.len(), 1);
    let denied = log
        .query(&AuditQuery::all().outcome(TraceOutcome::Denied))
        .unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].action_id, denied_id);
    assert_eq!(
        log.query(&AuditQuery::all().capability(LIST))
            .unwrap()
            .len(),
        2
    );
    let start = Timestamp::from_millis(1_700_000_000_000);
    let window = AuditQuery::all().between(start, start.saturating_add(Duration::from_secs(5)));
    assert_eq!(log.query(&window).unwrap()[0].action_id, ok_id);
    assert!(
        log.query(&AuditQuery::all().trace("4bf92f3577b34da6a3ce929d0e0e4736"))
            .unwrap()
            .is_empty()
    );
    let mut out = Vec::new();
    assert_eq!(log.export_jsonl(&AuditQuery::all(), &mut out).unwrap(), 2);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(!text.contains("bob@example.com"));
    let records: Vec<_> = agent_kernel::trace::read_jsonl(text.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    assert_eq!(records[0].action_id, ok_id);
    drop(w);
    let store = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
    assert!(store.audit_log().verify().unwrap().is_intact());
}

#[tokio::test]
async fn a_revoked_token_is_refused_after_a_kernel_restart() {
    let dir = TempDir::new("revoke");
    let clock = clock();
    let (revoked, all_of_writer, live) = {
        let w = world_at(open(&dir.db(), SqliteOptions::new(key())), clock.clone());
        let revoked = token(&w, LIST);
        let live = token(&w, SUMMARY);
        let req = CapabilityRequest::new(LIST, "list");
        let writer_token = w.kernel.get_token(&req, &common::writer(), "").unwrap();
        w.kernel.revoke_token(&revoked.token_id).unwrap();
        assert_eq!(w.kernel.revoke_all("writer-001").unwrap(), 1);
        (revoked, writer_token, live)
    };
    for restart in 0..3 {
        let w = world_at(open(&dir.db(), SqliteOptions::new(key())), clock.clone());
        let err = list(&w, &revoked).await.unwrap_err();
        assert_eq!(err.kind(), "token_revoked", "restart {restart}: {err}");
        let err = w
            .kernel
            .invoke(
                &all_of_writer,
                &common::writer(),
                common::list_args(),
                ResponseMode::Summary,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "token_revoked", "restart {restart}: {err}");
        // A token that was not revoked still works; so does a new one for
        // the principal revoke_all covered.
        w.kernel
            .invoke(
                &live,
                &reader(),
                common::op("summarize_spend"),
                ResponseMode::Summary,
            )
            .await
            .unwrap();
        let req = CapabilityRequest::new(LIST, "list");
        let fresh = w.kernel.get_token(&req, &common::writer(), "").unwrap();
        w.kernel
            .invoke(
                &fresh,
                &common::writer(),
                common::list_args(),
                ResponseMode::Summary,
            )
            .await
            .unwrap();
    }
    // Once the tokens have expired, the entries are pruned at the next load.
    clock.advance(Duration::from_secs(3 * 3600));
    let stores = open(&dir.db(), SqliteOptions::new(key()));
    assert!(stores.revocations.load(clock.now()).unwrap().is_empty());
}

#[tokio::test]
async fn verify_names_the_first_broken_link() {
    let dir = TempDir::new("tamper");
    let clock = clock();
    {
        let w = world_at(open(&dir.db(), SqliteOptions::new(key())), clock.clone());
        let t = token(&w, LIST);
        for _ in 0..5 {
            list(&w, &t).await.unwrap();
        }
    }
    let store = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
    let report = store.audit_log().verify().unwrap();
    assert!(report.is_intact());
    assert_eq!(report.checked, 5);
    drop(store);

    // Another key: refused at open, naming the path.
    let err = SqliteStore::open(
        dir.db(),
        SqliteOptions::new(AuditKey::new(b"some other key of enough length").unwrap()),
    )
    .unwrap_err();
    assert_eq!(err.kind(), "invalid_config");
    assert!(err.to_string().contains(&dir.db().display().to_string()));

    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.execute(
        "UPDATE audit SET record = replace(record, 'analyst-001', 'someone-else') WHERE seq = 3",
        [],
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
    let broken = store.audit_log().verify().unwrap().first_broken.unwrap();
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("altered"), "{broken}");
    drop(store);

    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.execute("DELETE FROM audit WHERE seq IN (2, 3)", [])
        .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
    let broken = store.audit_log().verify().unwrap().first_broken.unwrap();
    assert_eq!(broken.seq, 4);
    assert!(broken.reason.contains("missing"), "{broken}");
}

#[tokio::test]
async fn retention_removes_the_oldest_and_the_chain_still_verifies() {
    let dir = TempDir::new("retention");
    let clock = clock();
    let w = world_at(open(&dir.db(), SqliteOptions::new(key())), clock.clone());
    let t = token(&w, LIST);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(list(&w, &t).await.unwrap().action_id);
        clock.advance(Duration::from_secs(60));
    }
    let log = w.kernel.audit_log().unwrap().clone();
    assert_eq!(
        log.apply_retention(Retention::MaxCount(4), clock.now())
            .unwrap(),
        2
    );
    assert_eq!(log.count().unwrap(), 4);
    // Invoked 6, 5, 4, 3, 2, 1 minutes ago: keep the last 150 s.
    let removed = log
        .apply_retention(Retention::MaxAge(Duration::from_secs(150)), clock.now())
        .unwrap();
    assert_eq!(removed, 2);
    let kept: Vec<String> = log
        .query(&AuditQuery::all())
        .unwrap()
        .iter()
        .map(|r| r.action_id.clone())
        .collect();
    assert_eq!(kept, ids[4..].to_vec());
    list(&w, &t).await.unwrap();
    drop(w);
    drop(log);
    let store = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
    let report = store.audit_log().verify().unwrap();
    assert!(report.is_intact(), "{:?}", report.first_broken);
    assert_eq!(report.checked, 3);
}

#[tokio::test]
async fn a_second_opener_is_refused_naming_the_path() {
    let dir = TempDir::new("twice");
    let first = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
    let err = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap_err();
    assert_eq!(store_fault(&err), StoreFault::Locked, "{err}");
    assert!(
        err.to_string().contains(&dir.db().display().to_string()),
        "{err}"
    );
    // Another process: the same refusal, and the first opener is unharmed.
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_process_opener",
            "--ignored",
            "--nocapture",
        ])
        .env("AK_AUDIT_DB", dir.db())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{out}");
    assert!(out.contains("1 passed"), "{out}");
    assert_eq!(first.audit_log().count().unwrap(), 0);
    drop(first);
    SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
}

/// Run by `a_second_opener_is_refused_naming_the_path` in a child process.
#[test]
#[ignore = "run as a child process by a_second_opener_is_refused_naming_the_path"]
fn second_process_opener() {
    let path = std::env::var("AK_AUDIT_DB").expect("AK_AUDIT_DB names the held database");
    let err = SqliteStore::open(&path, SqliteOptions::new(key())).unwrap_err();
    assert_eq!(store_fault(&err), StoreFault::Locked, "{err}");
    assert!(err.to_string().contains(&path));
}

#[test]
fn a_corrupt_database_is_refused_at_start() {
    let dir = TempDir::new("corrupt");
    std::fs::write(dir.db(), vec![0x5a; 8192]).unwrap();
    let err = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap_err();
    assert_eq!(store_fault(&err), StoreFault::Corrupt, "{err}");
    assert!(
        err.to_string().contains(&dir.db().display().to_string()),
        "{err}"
    );

    // A real store whose pages were damaged after it was written.
    let dir = TempDir::new("damaged");
    {
        let store = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
        let log = store.audit_log();
        for i in 0..200 {
            let slot = log.reserve().unwrap();
            let mut trace = sample_trace(i);
            trace
                .args
                .insert("pad".into(), Value::String("x".repeat(500)));
            log.append(slot, trace).wait_blocking().unwrap();
        }
    }
    let mut bytes = std::fs::read(dir.db()).unwrap();
    assert!(bytes.len() > 8 * 4096, "{}", bytes.len());
    for b in &mut bytes[4096..4 * 4096] {
        *b = 0xff;
    }
    std::fs::write(dir.db(), bytes).unwrap();
    let err = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap_err();
    assert_eq!(store_fault(&err), StoreFault::Corrupt, "{err}");
}

fn sample_trace(i: usize) -> ActionTrace {
    ActionTrace {
        action_id: format!("00000000-0000-4000-8000-{i:012}"),
        capability_id: LIST.into(),
        principal_id: "p".into(),
        token_id: "t".into(),
        invoked_at: Timestamp::from_millis(1_700_000_000_000),
        args: Args::new(),
        requested_mode: ResponseMode::Summary,
        response_mode: ResponseMode::Summary,
        driver_id: "billing".into(),
        handle_id: None,
        session_id: None,
        error: None,
        denial_category: None,
        outcome: TraceOutcome::Success,
        duration: None,
        trace_id: None,
        span_id: None,
    }
}

#[tokio::test]
async fn a_full_queue_refuses_before_the_tool_acts() {
    let dir = TempDir::new("queue");
    let stores = open(&dir.db(), SqliteOptions::new(key()).buffered(2));
    let log = Arc::clone(&stores.audit);
    let w = world_at(stores, clock());
    let t = token(&w, LIST);
    let held = [log.reserve().unwrap(), log.reserve().unwrap()];
    let err = list(&w, &t).await.unwrap_err();
    assert_eq!(store_fault(&err), StoreFault::QueueFull, "{err}");
    assert_eq!(w.calls.load(Ordering::SeqCst), 0, "the tool did not run");
    drop(held);
    list(&w, &t).await.unwrap();
    assert_eq!(w.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_file_made_read_only_or_deleted_mid_run_refuses_before_the_tool_acts() {
    let dir = TempDir::new("readonly");
    let w = world_at(open(&dir.db(), SqliteOptions::new(key())), clock());
    let t = token(&w, LIST);
    let first = list(&w, &t).await.unwrap().action_id;
    let wal = dir.0.join("audit.db-wal");
    let wal_mode = std::fs::metadata(&wal).unwrap().permissions().mode();
    assert_eq!(
        wal_mode & 0o777,
        0o600,
        "the WAL file is 0600 like the database"
    );

    std::fs::set_permissions(dir.db(), std::fs::Permissions::from_mode(0o400)).unwrap();
    let err = list(&w, &t).await.unwrap_err();
    assert_eq!(store_fault(&err), StoreFault::ReadOnly, "{err}");
    assert!(
        err.to_string().contains(&dir.db().display().to_string()),
        "{err}"
    );
    assert_eq!(w.calls.load(Ordering::SeqCst), 1, "the tool did not run");
    let err = w
        .kernel
        .revoke_token(&t.token_id)
        .expect_err("a revocation that cannot be made durable says so");
    assert_eq!(store_fault(&err), StoreFault::ReadOnly, "{err}");

    std::fs::set_permissions(dir.db(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = token(&w, LIST);
    let second = list(&w, &t).await.unwrap().action_id;

    std::fs::remove_file(dir.db()).unwrap();
    let err = list(&w, &t).await.unwrap_err();
    assert_eq!(store_fault(&err), StoreFault::Deleted, "{err}");
    assert!(err.to_string().contains("deleted"), "{err}");
    assert_eq!(w.calls.load(Ordering::SeqCst), 2, "the tool did not run");
    // The records acknowledged before the fault are still readable.
    let log = w.kernel.audit_log().unwrap();
    assert_eq!(log.get(&first).unwrap().outcome, TraceOutcome::Success);
    assert_eq!(log.get(&second).unwrap().outcome, TraceOutcome::Success);
}

/// Mounts a small tmpfs at `dir` (we run as root); fails the test if it cannot.
fn mount_small_fs(dir: &mut TempDir, size: &str) {
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(&dir.0)
        .output()
        .expect("the disk-full test needs `mount` (it runs as root)");
    assert!(
        out.status.success(),
        "cannot mount a tmpfs for the disk-full test: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.1 = true;
}

#[tokio::test]
async fn a_full_disk_refuses_and_loses_no_acknowledged_record() {
    let mut dir = TempDir::new("full");
    mount_small_fs(&mut dir, "2m");
    // Room to give back once the disk is full.
    let ballast = dir.0.join("ballast");
    std::fs::write(&ballast, vec![0u8; 512 * 1024]).unwrap();
    let w = world_at(open(&dir.db(), SqliteOptions::new(key())), clock());
    let t = token(&w, LIST);
    let big = "x".repeat(2000);
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for _ in 0..2000 {
        let args = args(json!({"operation": "list_invoices", "pad": big})).unwrap();
        match w
            .kernel
            .invoke(&t, &reader(), args, ResponseMode::Summary)
            .await
        {
            Ok(frame) => acknowledged.push(frame.action_id),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    let err = failure.expect("the small file system fills up");
    assert_eq!(store_fault(&err), StoreFault::DiskFull, "{err}");
    assert!(
        err.to_string().contains(&dir.db().display().to_string()),
        "{err}"
    );
    assert!(acknowledged.len() > 10, "{}", acknowledged.len());
    // While the disk is full, invocations are refused before the tool acts.
    let calls = w.calls.load(Ordering::SeqCst);
    let err = list(&w, &t).await.unwrap_err();
    assert_eq!(store_fault(&err), StoreFault::DiskFull, "{err}");
    assert_eq!(
        w.calls.load(Ordering::SeqCst),
        calls,
        "the tool did not run"
    );

    // Space comes back: the held record is written, invocations work again.
    std::fs::remove_file(&ballast).unwrap();
    let log = Arc::clone(w.kernel.audit_log().unwrap());
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if log.reserve().is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(
        recovered,
        "the writer retries the held record once there is room"
    );
    list(&w, &t).await.unwrap();
    drop(w);
    drop(log);
    let store = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
    let log = store.audit_log();
    for id in &acknowledged {
        log.get(id)
            .unwrap_or_else(|e| panic!("acknowledged {id} lost: {e}"));
    }
    // The record that failed to commit was kept and written after all.
    assert_eq!(log.count().unwrap(), acknowledged.len() as u64 + 2);
    assert!(log.verify().unwrap().is_intact());
}

#[tokio::test]
async fn buffered_records_are_written_by_the_writer() {
    let dir = TempDir::new("buffered");
    let store = SqliteStore::open(
        dir.db(),
        SqliteOptions::new(key())
            .mode(WriteMode::Buffered)
            .queue_capacity(64),
    )
    .unwrap();
    let w = world_at(
        Stores {
            audit: store.audit_log(),
            revocations: store.revocation_store(),
        },
        clock(),
    );
    let t = token(&w, LIST);
    for _ in 0..20 {
        list(&w, &t).await.unwrap();
    }
    store.audit_log().flush().unwrap();
    assert_eq!(store.audit_log().count().unwrap(), 20);
    assert_eq!(store.audit_log().pending(), 0);
}

#[test]
fn the_audit_key_must_not_be_the_token_secret() {
    let dir = TempDir::new("samekey");
    let stores = open(
        &dir.db(),
        SqliteOptions::new(AuditKey::new(SECRET).unwrap()),
    );
    let err = Kernel::builder(registry())
        .secret(SECRET)
        .stores(stores)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_config");
}

#[derive(Debug)]
struct Slow;

#[async_trait]
impl Driver for Slow {
    fn driver_id(&self) -> &str {
        "slow"
    }
    async fn execute(
        &self,
        ctx: &ExecutionContext<'_>,
    ) -> std::result::Result<RawResult, DriverError> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(RawResult::new(ctx.capability_id, json!("late")))
    }
}

/// A dropped invocation's record (written from `Drop`) reaches the durable
/// log, as `cancelled`, and gives its queue place back.
#[tokio::test]
async fn a_dropped_invocation_is_written_as_cancelled() {
    let dir = TempDir::new("cancel");
    let store = SqliteStore::open(dir.db(), SqliteOptions::new(key()).queue_capacity(1)).unwrap();
    let kernel = Kernel::builder(registry())
        .secret(SECRET)
        .router(router().with_route(SUMMARY, ["slow"]))
        .driver(Slow)
        .stores(Stores {
            audit: store.audit_log(),
            revocations: store.revocation_store(),
        })
        .build()
        .unwrap();
    let p = reader();
    let token = kernel
        .get_token(&CapabilityRequest::new(SUMMARY, "s"), &p, "")
        .unwrap();
    let invoke = kernel.invoke(
        &token,
        &p,
        common::op("summarize_spend"),
        ResponseMode::Summary,
    );
    tokio::time::timeout(Duration::from_millis(50), invoke)
        .await
        .expect_err("the invocation is cut off");
    store.audit_log().flush().unwrap();
    let records = store
        .audit_log()
        .query(&AuditQuery::all().outcome(TraceOutcome::Cancelled))
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        store.audit_log().pending(),
        0,
        "the queue place was given back"
    );
}

/// `Acknowledged`: a record whose `invoke` returned survives `kill -9` of the
/// process (the child below invokes and prints each acknowledged action id;
/// it is killed mid-run).
#[test]
fn acknowledged_records_survive_kill_9() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("kill9");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "acknowledging_child", "--ignored", "--nocapture"])
        .env("AK_AUDIT_DB", dir.db())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acknowledged.push(id.to_owned());
            if acknowledged.len() == 200 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(
        acknowledged.len(),
        200,
        "the child acknowledged 200 records"
    );
    let store = SqliteStore::open(dir.db(), SqliteOptions::new(key())).unwrap();
    let log = store.audit_log();
    for id in &acknowledged {
        log.get(id)
            .unwrap_or_else(|e| panic!("acknowledged {id} lost to kill -9: {e}"));
    }
    assert!(log.verify().unwrap().is_intact());
}

/// Run by `acknowledged_records_survive_kill_9` in a child process: invokes
/// until killed, printing each acknowledged action id.
#[tokio::test]
#[ignore = "run as a child process by acknowledged_records_survive_kill_9"]
async fn acknowledging_child() {
    let path = std::env::var("AK_AUDIT_DB").expect("AK_AUDIT_DB names the database");
    let clock = clock();
    let w = world_at(
        open(Path::new(&path), SqliteOptions::new(key())),
        clock.clone(),
    );
    let t = token(&w, LIST);
    loop {
        // Past the READ rate limit (60 a minute), within the token's hour.
        clock.advance(Duration::from_secs(2));
        let frame = list(&w, &t).await.unwrap();
        println!("ACK {}", frame.action_id);
    }
}
