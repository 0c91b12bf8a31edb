//! The SQLite store (feature `sqlite`): the audit log and the revocations in
//! one database file, opened with a path.
//!
//! - **One owner.** The file is opened in WAL mode with SQLite's exclusive
//!   locking: a second opener, in this process or another, is refused with
//!   [`StoreFault::Locked`](crate::StoreFault::Locked) naming the path, so one
//!   writer keeps the hash chain.
//! - **One writer thread, group commit.** Appended records queue up; the
//!   writer takes everything queued and commits it in one transaction.
//! - **Two modes** ([`WriteMode`]): `Acknowledged` (the default) resolves each
//!   record's [`AuditAck`](crate::store::AuditAck) once its transaction is
//!   committed, and [`Kernel::invoke`](crate::Kernel::invoke) waits for it;
//!   at `synchronous=NORMAL` in WAL mode a committed record survives `kill -9`
//!   of the process, not a power loss or an OS crash. `Buffered` returns at
//!   once: a crash loses at most the queue, whose length the application sets.
//! - **Refusal before the tool acts.** A slot is reserved in the bounded queue
//!   before the driver runs; while the queue is full or the last write failed
//!   (disk full, file read-only, deleted or replaced, locked, broken), the
//!   reservation fails with [`KernelError::StoreUnavailable`]. A record that
//!   failed to write stays queued and is retried; nothing is dropped silently.
//! - **Keyed chain.** Each record carries HMAC-SHA256(key, previous link ‖
//!   seq ‖ record), with an [`AuditKey`] from the application;
//!   [`SqliteAuditLog::verify`] walks it and names the first broken link.
//! - The file is created with mode 0600 (SQLite gives its WAL file the same).
//!
//! ```
//! # fn main() -> agent_kernel::Result<()> {
//! use agent_kernel::store::{AuditKey, AuditLog, AuditQuery, Stores, sqlite::SqliteOptions};
//! let dir = std::env::temp_dir().join(format!("ak-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).ok();
//! let key = AuditKey::new(b"an application audit key, not the token secret")?;
//! let stores = Stores::sqlite(dir.join("audit.db"), SqliteOptions::new(key))?;
//! assert_eq!(stores.audit.count()?, 0);
//! assert!(stores.audit.query(&AuditQuery::all().principal("alice"))?.is_empty());
//! # drop(stores); std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

mod db;
mod revocations;
mod writer;

use std::path::Path;
use std::sync::Arc;

pub use revocations::SqliteRevocations;
pub use writer::SqliteAuditLog;

use super::{AuditKey, Retention};
use crate::error::{KernelError, Result};

/// Default length of the write queue (records appended, not yet committed).
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// When an appended record counts as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Committed before [`Kernel::invoke`](crate::Kernel::invoke) returns
    /// (the invocation waits for its record's group commit).
    #[default]
    Acknowledged,
    /// Queued; written by the next group commit. A crash loses at most the
    /// queue.
    Buffered,
}

/// How [`SqliteStore::open`] sets up the store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    key: AuditKey,
    mode: WriteMode,
    queue_capacity: usize,
    raw_arguments: bool,
    retention: Option<Retention>,
    quick_check: bool,
}

impl SqliteOptions {
    /// `Acknowledged` writes, a queue of [`DEFAULT_QUEUE_CAPACITY`], redacted
    /// arguments, no retention, a quick integrity check at open; records
    /// chained with `key`.
    pub fn new(key: AuditKey) -> Self {
        Self {
            key,
            mode: WriteMode::Acknowledged,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            raw_arguments: false,
            retention: None,
            quick_check: true,
        }
    }

    /// The write mode.
    #[must_use]
    pub fn mode(mut self, mode: WriteMode) -> Self {
        self.mode = mode;
        self
    }

    /// `Buffered` writes with a queue of `queue_capacity` records (≥ 1).
    #[must_use]
    pub fn buffered(self, queue_capacity: usize) -> Self {
        self.mode(WriteMode::Buffered)
            .queue_capacity(queue_capacity)
    }

    /// How many records may wait for the writer (≥ 1); past it, invocations
    /// are refused with [`StoreFault::QueueFull`](crate::StoreFault::QueueFull).
    #[must_use]
    pub fn queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.queue_capacity = queue_capacity;
        self
    }

    /// Keeps arguments as passed (see
    /// [`TraceStore::with_raw_arguments`](crate::TraceStore::with_raw_arguments)).
    #[must_use]
    pub fn raw_arguments(mut self, raw: bool) -> Self {
        self.raw_arguments = raw;
        self
    }

    /// Applies `retention` at open and after every 1 000 records written.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Whether to run `PRAGMA quick_check` at open (default on; it reads the
    /// whole file).
    #[must_use]
    pub fn quick_check(mut self, on: bool) -> Self {
        self.quick_check = on;
        self
    }
}

/// The audit log and the revocation store of one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    audit: Arc<SqliteAuditLog>,
    revocations: Arc<SqliteRevocations>,
}

impl SqliteStore {
    /// Opens (or creates, mode 0600) the store at `path` and starts its
    /// writer thread.
    ///
    /// Errors ([`KernelError::StoreUnavailable`], naming the path):
    /// `locked` when another process or opener holds it, `corrupt` when it is
    /// not a database of this schema or fails the integrity check,
    /// `read_only` when the file is not writable, `io` otherwise;
    /// [`KernelError::InvalidConfig`] for a queue capacity of 0 or a key that
    /// is not the one the log was written with.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        if options.queue_capacity == 0 {
            return Err(KernelError::invalid_config(
                "the audit queue capacity must be >= 1, got 0",
            ));
        }
        let db = Arc::new(db::Db::open(
            path.as_ref(),
            options.key.clone(),
            options.quick_check,
        )?);
        let now = crate::time::Timestamp::now();
        if let Some(retention) = options.retention {
            db.apply_retention(retention, now)?;
        }
        let audit = Arc::new(SqliteAuditLog::start(Arc::clone(&db), &options)?);
        Ok(Self {
            audit,
            revocations: Arc::new(SqliteRevocations::new(db)),
        })
    }

    /// The audit log.
    pub fn audit_log(&self) -> Arc<SqliteAuditLog> {
        Arc::clone(&self.audit)
    }

    /// The revocation store.
    pub fn revocation_store(&self) -> Arc<SqliteRevocations> {
        Arc::clone(&self.revocations)
    }
}
