//! Where the kernel's durable state lives: one narrow interface per kind of
//! state, chosen on [`KernelBuilder`](crate::KernelBuilder) and bundled by
//! [`Stores`] for convenience.
//!
//! - [`AuditLog`]: the audit trail. A slot is [reserved](AuditLog::reserve)
//!   before the tool acts (a store that cannot take the record refuses the
//!   invocation then, with [`KernelError::StoreUnavailable`](crate::KernelError::StoreUnavailable)); the finished
//!   record is [appended](AuditLog::append) synchronously (usable from `Drop`),
//!   and the returned [`AuditAck`] resolves once the record is durable.
//! - [`RevocationStore`]: revocations, written through before `revoke`
//!   returns, loaded when a kernel is built, forgotten after the tokens they
//!   cover have expired.
//!
//! In memory ([`TraceStore`], [`MemoryRevocations`]; the builder's default)
//! and in SQLite (`store::sqlite`, feature `sqlite`). The guarantees, the modes and
//! the faults are described in `docs/audit.md`.

mod ack;
mod chain;
mod memory;
pub(crate) mod sink;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

pub use ack::{AckResolver, AuditAck};
pub use chain::{AuditKey, BrokenLink, GENESIS_LINK, MIN_AUDIT_KEY_LEN, VerifyReport};
pub use memory::MemoryRevocations;

use crate::error::Result;
use crate::time::Timestamp;
pub use crate::token::Revocation;
use crate::trace::TraceStore;
use crate::types::{ActionTrace, TraceOutcome};

/// The audit trail's store (see the [module docs](self)).
///
/// An implementation never drops a record it acknowledged, nor one it took a
/// slot for without saying so (an error log line at least).
pub trait AuditLog: Send + Sync + fmt::Debug {
    /// Where the records live: a file path, or `memory`.
    fn location(&self) -> &str;

    /// Reserves room for one record, before the tool acts. Errors:
    /// [`KernelError::StoreUnavailable`](crate::KernelError::StoreUnavailable)
    /// when the store cannot take it (queue full, disk full, read-only,
    /// locked, deleted or broken); the invocation is then refused.
    fn reserve(&self) -> Result<AuditSlot>;

    /// Appends the finished record in the reserved slot. Synchronous and
    /// non-blocking (it may run in `Drop`); the [`AuditAck`] says when the
    /// record is durable (at once for stores that do not wait).
    fn append(&self, slot: AuditSlot, record: ActionTrace) -> AuditAck;

    /// The latest record of `action_id`
    /// ([`KernelError::TraceNotFound`](crate::KernelError::TraceNotFound) if none).
    fn get(&self, action_id: &str) -> Result<Arc<ActionTrace>>;

    /// The records matching `query`, oldest first.
    fn query(&self, query: &AuditQuery) -> Result<Vec<Arc<ActionTrace>>>;

    /// How many records are kept.
    fn count(&self) -> Result<u64>;

    /// Removes the oldest records as `retention` says; returns how many.
    /// Never done silently: only when called, or as configured on the store.
    fn apply_retention(&self, retention: Retention, now: Timestamp) -> Result<u64>;

    /// Writes the records matching `query`, oldest first, as JSON Lines
    /// version 1 ([`crate::trace`]); returns how many.
    fn export_jsonl(&self, query: &AuditQuery, writer: &mut dyn Write) -> Result<usize> {
        let records = self.query(query)?;
        for record in &records {
            crate::trace::write_jsonl_record(record, &mut *writer)
                .map_err(|e| crate::KernelError::invalid_argument(format!("export failed: {e}")))?;
        }
        writer
            .flush()
            .map_err(|e| crate::KernelError::invalid_argument(format!("export failed: {e}")))?;
        Ok(records.len())
    }

    /// The key the records are chained with, if the store chains them (the
    /// builder refuses one equal to the token-signing secret).
    fn chain_key(&self) -> Option<&AuditKey> {
        None
    }
}

/// The revocation store (see the [module docs](self)).
pub trait RevocationStore: Send + Sync + fmt::Debug {
    /// Where the revocations live: a file path, or `memory`.
    fn location(&self) -> &str;

    /// Every entry still in force at `now` (expired ones are pruned first).
    fn load(&self, now: Timestamp) -> Result<Vec<Revocation>>;

    /// Makes `revocations` durable before returning (and prunes the entries
    /// forgotten by `now`). An entry already present keeps the later
    /// `forget_at`.
    fn persist(&self, revocations: &[Revocation], now: Timestamp) -> Result<()>;
}

/// A reserved place for one record (see [`AuditLog::reserve`]). Dropping it
/// unused gives the place back.
pub struct AuditSlot {
    pool: Option<Arc<dyn SlotPool>>,
}

/// What gives a slot's place back: implemented by stores with a bounded queue.
pub trait SlotPool: Send + Sync {
    /// One reserved place was given back unused.
    fn release(&self);
}

impl AuditSlot {
    /// A slot of a store with no bound (nothing to give back).
    pub fn unbounded() -> Self {
        Self { pool: None }
    }

    /// A slot that gives its place back to `pool` if dropped unused.
    pub fn pooled(pool: Arc<dyn SlotPool>) -> Self {
        Self { pool: Some(pool) }
    }

    /// Whether the slot holds a place in a bounded queue.
    pub fn is_pooled(&self) -> bool {
        self.pool.is_some()
    }

    /// Consumes the slot without giving the place back: the store's append
    /// now accounts for it.
    pub fn consume(mut self) {
        self.pool = None;
    }
}

impl Drop for AuditSlot {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.release();
        }
    }
}

impl fmt::Debug for AuditSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSlot")
            .field("pooled", &self.pool.is_some())
            .finish()
    }
}

/// Which records an [`AuditLog::query`] returns: every filter that is set
/// must match (AND); `since` is inclusive, `until` exclusive (on
/// `invoked_at`); at most `limit` records, oldest first.
///
/// ```
/// use agent_kernel::store::AuditQuery;
/// use agent_kernel::TraceOutcome;
/// let q = AuditQuery::all().principal("alice").outcome(TraceOutcome::Denied).limit(10);
/// assert_eq!(q.principal_id.as_deref(), Some("alice"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The principal.
    pub principal_id: Option<String>,
    /// The capability.
    pub capability_id: Option<String>,
    /// The outcome.
    pub outcome: Option<TraceOutcome>,
    /// Invoked at or after.
    pub since: Option<Timestamp>,
    /// Invoked before.
    pub until: Option<Timestamp>,
    /// The OpenTelemetry trace id (W3C hex, compared case-insensitively).
    pub trace_id: Option<String>,
    /// At most this many records (the oldest that match).
    pub limit: Option<usize>,
}

impl AuditQuery {
    /// Every record.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only `principal_id`'s records.
    #[must_use]
    pub fn principal(mut self, principal_id: impl Into<String>) -> Self {
        self.principal_id = Some(principal_id.into());
        self
    }

    /// Only records of `capability_id`.
    #[must_use]
    pub fn capability(mut self, capability_id: impl Into<String>) -> Self {
        self.capability_id = Some(capability_id.into());
        self
    }

    /// Only records with `outcome`.
    #[must_use]
    pub fn outcome(mut self, outcome: TraceOutcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Only records invoked in `[since, until)`.
    #[must_use]
    pub fn between(mut self, since: Timestamp, until: Timestamp) -> Self {
        self.since = Some(since);
        self.until = Some(until);
        self
    }

    /// Only records of the OpenTelemetry trace `trace_id`.
    #[must_use]
    pub fn trace(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into().to_ascii_lowercase());
        self
    }

    /// At most `n` records.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Whether `record` matches every filter (the limit aside).
    pub fn matches(&self, record: &ActionTrace) -> bool {
        let ms = record.invoked_at.as_millis();
        self.principal_id
            .as_deref()
            .is_none_or(|p| p == record.principal_id)
            && self
                .capability_id
                .as_deref()
                .is_none_or(|c| c == record.capability_id)
            && self.outcome.is_none_or(|o| o == record.outcome)
            && self.since.is_none_or(|s| ms >= s.as_millis())
            && self.until.is_none_or(|u| ms < u.as_millis())
            && self.trace_id.as_deref().is_none_or(|t| {
                record
                    .trace_id
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(t))
            })
    }
}

/// How many records an audit log keeps: explicit, never a silent eviction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep records invoked less than this long ago (older ones at the start
    /// of the log are removed; an old record after a young one stays, so the
    /// log never gets a hole).
    MaxAge(Duration),
    /// Keep the newest `n` records.
    MaxCount(u64),
}

/// The stores of one kernel, for [`KernelBuilder::stores`](crate::KernelBuilder::stores).
#[derive(Debug, Clone)]
pub struct Stores {
    /// The audit log.
    pub audit: Arc<dyn AuditLog>,
    /// The revocation store.
    pub revocations: Arc<dyn RevocationStore>,
}

impl Stores {
    /// Everything in memory (the builder's default): `audit` keeps 10 000
    /// records, revocations last as long as the store.
    pub fn in_memory() -> Self {
        Self {
            audit: Arc::new(TraceStore::new()),
            revocations: Arc::new(MemoryRevocations::new()),
        }
    }

    /// The audit log and the revocations in one SQLite file at `path` (see
    /// [`sqlite::SqliteStore::open`]).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(
        path: impl AsRef<std::path::Path>,
        options: sqlite::SqliteOptions,
    ) -> Result<Self> {
        let store = sqlite::SqliteStore::open(path, options)?;
        Ok(Self {
            audit: store.audit_log(),
            revocations: store.revocation_store(),
        })
    }
}
