//! The SQLite audit log: a bounded queue of appended records and the one
//! writer thread that commits everything queued in a single transaction
//! (group commit), resolving each record's acknowledgement.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::db::{Db, Head, Row, unavailable};
use super::{SqliteOptions, WriteMode};
use crate::error::{KernelError, Result, StoreFault};
use crate::store::ack::AckResolver;
use crate::store::{
    AuditAck, AuditKey, AuditLog, AuditQuery, AuditSlot, Retention, SlotPool, VerifyReport,
};
use crate::time::Timestamp;
use crate::types::ActionTrace;

/// Records committed per transaction at most.
const MAX_BATCH: usize = 1024;
/// Configured retention runs after this many records written.
const RETENTION_EVERY: u64 = 1000;
/// In `Buffered` mode the writer waits this long for more records before a
/// commit that is not full: fewer, larger transactions (each commit rewrites
/// the table's and every index's last pages), at no cost to the caller.
const BUFFERED_LINGER: Duration = Duration::from_millis(2);
/// A `Buffered` commit waits for no more once it has this many records.
const LINGER_UNTIL: usize = 256;
/// Retry delays after a failed write: from the first to the longest.
const FIRST_RETRY: Duration = Duration::from_millis(20);
const LONGEST_RETRY: Duration = Duration::from_secs(1);

/// One appended record: the trace until the writer encodes it.
struct Item {
    trace: Option<ActionTrace>,
    row: Option<Row>,
    ack: Option<AckResolver>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Slots reserved and not yet appended or given back.
    reserved: usize,
    /// Items the writer has taken and not yet written.
    in_flight: usize,
    /// The last write's failure, until a write succeeds.
    failure: Option<KernelError>,
    shutdown: bool,
    /// The writer is waiting for work (an append must wake it).
    writer_idle: bool,
}

struct Shared {
    db: Arc<Db>,
    queue: Mutex<Queue>,
    /// The writer waits here for records (and between retries).
    work: Condvar,
    /// [`SqliteAuditLog::flush`] waits here for commits.
    done: Condvar,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SlotPool for Shared {
    fn release(&self) {
        let mut q = self.lock();
        q.reserved = q.reserved.saturating_sub(1);
    }
}

/// The audit log in a SQLite file (see the [module docs](super)).
pub struct SqliteAuditLog {
    shared: Arc<Shared>,
    mode: WriteMode,
    raw_arguments: bool,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for SqliteAuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteAuditLog")
            .field("path", &self.shared.db.shown())
            .field("mode", &self.mode)
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl SqliteAuditLog {
    pub(super) fn start(db: Arc<Db>, options: &SqliteOptions) -> Result<Self> {
        let head = db.head()?;
        let shared = Arc::new(Shared {
            db,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            capacity: options.queue_capacity,
        });
        let writer = {
            let shared = Arc::clone(&shared);
            let retention = options.retention;
            let raw = options.raw_arguments;
            let linger = (options.mode == WriteMode::Buffered).then_some(BUFFERED_LINGER);
            std::thread::Builder::new()
                .name("agent-kernel-audit".to_owned())
                .spawn(move || write_loop(&shared, head, retention, raw, linger))
                .map_err(|e| {
                    KernelError::invalid_config(format!("cannot start the audit writer: {e}"))
                })?
        };
        Ok(Self {
            shared,
            mode: options.mode,
            raw_arguments: options.raw_arguments,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The write mode.
    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Whether arguments are kept raw.
    pub fn keeps_raw_arguments(&self) -> bool {
        self.raw_arguments
    }

    /// Records appended and not yet committed (reserved slots included).
    pub fn pending(&self) -> usize {
        let q = self.shared.lock();
        q.items.len() + q.in_flight + q.reserved
    }

    /// Waits until every record appended so far is committed, or the writer
    /// reports a failure.
    pub fn flush(&self) -> Result<()> {
        let mut q = self.shared.lock();
        loop {
            if let Some(failure) = &q.failure {
                return Err(failure.clone());
            }
            if q.items.is_empty() && q.in_flight == 0 {
                return Ok(());
            }
            q = self
                .shared
                .done
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Walks the keyed chain (from the start, or from where retention left
    /// it) and names the first broken link. It cannot see the newest records
    /// removed: keep [`head`](Self::head) elsewhere to detect that.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.shared.db.verify()
    }

    /// The next sequence number and the last link (hex), to keep elsewhere.
    pub fn head(&self) -> Result<(i64, String)> {
        let head = self.shared.db.head()?;
        Ok((head.next_seq, hex::encode(head.last)))
    }
}

impl AuditLog for SqliteAuditLog {
    fn location(&self) -> &str {
        self.shared.db.shown()
    }

    fn reserve(&self) -> Result<AuditSlot> {
        // A deleted, replaced or read-only file is seen before the tool acts
        // (one `stat`), not at the commit after it.
        self.shared.db.check_file("audit log")?;
        let mut q = self.shared.lock();
        if let Some(failure) = &q.failure {
            return Err(failure.clone());
        }
        if q.shutdown {
            return Err(unavailable(
                "audit log",
                self.shared.db.shown(),
                StoreFault::NotAcknowledged,
                "the audit writer has stopped",
            ));
        }
        let used = q.items.len() + q.in_flight + q.reserved;
        if used >= self.shared.capacity {
            return Err(unavailable(
                "audit log",
                self.shared.db.shown(),
                StoreFault::QueueFull,
                format!(
                    "{} records wait for {} (queue capacity {})",
                    used,
                    self.shared.db.shown(),
                    self.shared.capacity
                ),
            ));
        }
        q.reserved += 1;
        drop(q);
        let pool: Arc<dyn SlotPool> = Arc::clone(&self.shared) as Arc<dyn SlotPool>;
        Ok(AuditSlot::pooled(pool))
    }

    fn append(&self, slot: AuditSlot, record: ActionTrace) -> AuditAck {
        let (ack, cell) = match self.mode {
            WriteMode::Acknowledged => {
                let (ack, cell) = AuditAck::pending();
                (ack, Some(cell))
            }
            WriteMode::Buffered => (AuditAck::ready(Ok(())), None),
        };
        let mut q = self.shared.lock();
        // The slot's place becomes the item's.
        if slot.is_pooled() {
            q.reserved = q.reserved.saturating_sub(1);
        }
        slot.consume();
        q.items.push_back(Item {
            trace: Some(record),
            row: None,
            ack: cell,
        });
        // A busy writer takes this record with its next batch: no wake-up.
        let wake = std::mem::take(&mut q.writer_idle);
        drop(q);
        if wake {
            self.shared.work.notify_one();
        }
        ack
    }

    fn get(&self, action_id: &str) -> Result<Arc<ActionTrace>> {
        self.shared.db.get(action_id)
    }

    fn query(&self, query: &AuditQuery) -> Result<Vec<Arc<ActionTrace>>> {
        self.shared.db.query(query)
    }

    fn count(&self) -> Result<u64> {
        self.shared.db.count()
    }

    fn apply_retention(&self, retention: Retention, now: Timestamp) -> Result<u64> {
        self.shared.db.apply_retention(retention, now)
    }

    fn export_jsonl(&self, query: &AuditQuery, writer: &mut dyn Write) -> Result<usize> {
        self.shared.db.export(query, writer)
    }

    fn chain_key(&self) -> Option<&AuditKey> {
        Some(&self.shared.db.key)
    }
}

impl Drop for SqliteAuditLog {
    /// Writes what is queued, then stops the writer.
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            if writer.join().is_err() {
                log::error!("audit_writer_panicked path={}", self.shared.db.shown());
            }
        }
    }
}

/// The writer thread: takes everything queued, commits it, acknowledges.
/// A failed batch goes back to the head of the queue (its acknowledgements
/// resolved with the error) and is retried with a growing delay; while it
/// fails, reservations are refused.
fn write_loop(
    shared: &Shared,
    mut head: Head,
    retention: Option<Retention>,
    raw: bool,
    linger: Option<Duration>,
) {
    let mut retry = FIRST_RETRY;
    let mut since_retention: u64 = 0;
    loop {
        let mut batch: Vec<Item> = {
            let mut q = shared.lock();
            while q.items.is_empty() && !q.shutdown {
                q.writer_idle = true;
                q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            q.writer_idle = false;
            if q.items.is_empty() {
                return;
            }
            if let Some(linger) = linger.filter(|_| q.items.len() < LINGER_UNTIL && !q.shutdown) {
                // Appends do not wake a lingering writer: it looks again after `linger`.
                drop(q);
                std::thread::sleep(linger);
                q = shared.lock();
            }
            let n = q.items.len().min(MAX_BATCH);
            q.in_flight = n;
            q.items.drain(..n).collect()
        };
        for item in &mut batch {
            if let Some(mut trace) = item.trace.take() {
                if !raw {
                    crate::trace::redact_arguments(&mut trace);
                }
                item.row = Some(Row::of(&trace));
            }
        }
        let rows: Vec<&Row> = batch.iter().filter_map(|i| i.row.as_ref()).collect();
        let written = shared.db.insert(head, &rows);
        let written_count = rows.len() as u64;
        drop(rows);
        let mut q = shared.lock();
        q.in_flight = 0;
        match written {
            Ok(next) => {
                head = next;
                q.failure = None;
                drop(q);
                shared.done.notify_all();
                for item in batch {
                    if let Some(ack) = item.ack {
                        ack.resolve(Ok(()));
                    }
                }
                retry = FIRST_RETRY;
                since_retention += written_count;
                if let Some(retention) = retention.filter(|_| since_retention >= RETENTION_EVERY) {
                    since_retention = 0;
                    if let Err(e) = shared.db.apply_retention(retention, Timestamp::now()) {
                        log::error!("audit_retention_failed error={e}");
                    }
                }
            }
            Err(err) => {
                let stopping = q.shutdown;
                if stopping {
                    // Nothing will retry: say what is lost, loudly.
                    let lost = batch.len() + q.items.len();
                    q.items.clear();
                    q.failure = Some(err.clone());
                    drop(q);
                    log::error!("audit_records_lost count={lost} error={err}");
                    for item in batch {
                        if let Some(ack) = item.ack {
                            ack.resolve(Err(err.clone()));
                        }
                    }
                    shared.done.notify_all();
                    return;
                }
                log::error!(
                    "audit_write_failed records={} error={err} (kept queued, retrying)",
                    batch.len()
                );
                q.failure = Some(err.clone());
                for mut item in batch.into_iter().rev() {
                    if let Some(ack) = item.ack.take() {
                        ack.resolve(Err(err.clone()));
                    }
                    q.items.push_front(item);
                }
                shared.done.notify_all();
                let (q, _) = shared
                    .work
                    .wait_timeout_while(q, retry, |q| !q.shutdown)
                    .unwrap_or_else(PoisonError::into_inner);
                drop(q);
                retry = (retry * 2).min(LONGEST_RETRY);
            }
        }
    }
}
