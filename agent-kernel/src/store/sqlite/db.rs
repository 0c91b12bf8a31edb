//! The database file: opening it (0600, WAL, exclusive lock, integrity and
//! key checks), the schema, what SQLite errors mean, and the reads.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params, params_from_iter};

use crate::error::{KernelError, Result, StoreFault};
use crate::store::chain::GENESIS_LINK as GENESIS;
use crate::store::{AuditKey, AuditQuery, BrokenLink, Retention, VerifyReport};
use crate::time::Timestamp;
use crate::trace::parse_jsonl_record;
use crate::types::ActionTrace;

/// The schema this build writes and reads.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    action_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    capability_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    invoked_at_ms INTEGER NOT NULL,
    trace_id TEXT,
    record TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action_id);
CREATE INDEX IF NOT EXISTS audit_principal ON audit (principal_id, seq);
CREATE INDEX IF NOT EXISTS audit_capability ON audit (capability_id, seq);
CREATE INDEX IF NOT EXISTS audit_outcome ON audit (outcome, seq);
CREATE INDEX IF NOT EXISTS audit_time ON audit (invoked_at_ms);
CREATE INDEX IF NOT EXISTS audit_trace ON audit (trace_id) WHERE trace_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS revocations (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    epoch_ms INTEGER NOT NULL,
    forget_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
";

/// What identifies the file that was opened: a delete or a replace changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// The open database (one connection, shared by the writer, the readers and
/// the revocation store).
#[derive(Debug)]
pub(crate) struct Db {
    path: PathBuf,
    shown: String,
    conn: Mutex<Connection>,
    file: FileId,
    pub(crate) key: AuditKey,
}

/// The chain's head: the next sequence number and the last link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub(crate) next_seq: i64,
    pub(crate) last: [u8; 32],
}

/// One encoded record, ready to insert.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) action_id: String,
    pub(crate) principal_id: String,
    pub(crate) capability_id: String,
    pub(crate) outcome: &'static str,
    pub(crate) invoked_at_ms: i64,
    pub(crate) trace_id: Option<String>,
    pub(crate) record: String,
}

impl Row {
    /// The row of `trace` (arguments as the caller prepared them).
    pub(crate) fn of(trace: &ActionTrace) -> Self {
        let mut record = Vec::with_capacity(512);
        // Writing to a Vec cannot fail; the record's values are all serialisable.
        let _ = crate::trace::write_jsonl_record(trace, &mut record);
        if record.last() == Some(&b'\n') {
            record.pop();
        }
        Self {
            action_id: trace.action_id.clone(),
            principal_id: trace.principal_id.clone(),
            capability_id: trace.capability_id.clone(),
            outcome: trace.outcome.as_str(),
            invoked_at_ms: ms(trace.invoked_at),
            trace_id: trace.trace_id.as_deref().map(str::to_ascii_lowercase),
            record: String::from_utf8_lossy(&record).into_owned(),
        }
    }
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// The fault a SQLite error means.
pub(crate) fn fault_of(e: &rusqlite::Error) -> StoreFault {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreFault::DiskFull,
        Some(ErrorCode::ReadOnly) => StoreFault::ReadOnly,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreFault::Locked,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreFault::Corrupt,
        _ => StoreFault::Io,
    }
}

/// A `StoreUnavailable` error naming `path`.
pub(crate) fn unavailable(
    store: &'static str,
    path: &str,
    fault: StoreFault,
    message: impl Into<String>,
) -> KernelError {
    KernelError::StoreUnavailable {
        store,
        path: path.to_owned(),
        fault,
        message: message.into(),
    }
}

fn fault_of_io(e: &io::Error) -> StoreFault {
    match e.kind() {
        io::ErrorKind::StorageFull => StoreFault::DiskFull,
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => StoreFault::ReadOnly,
        io::ErrorKind::NotFound => StoreFault::Deleted,
        _ => StoreFault::Io,
    }
}

impl Db {
    /// Opens or creates the database at `path` (see [`SqliteStore::open`](super::SqliteStore::open)).
    pub(crate) fn open(path: &Path, key: AuditKey, quick_check: bool) -> Result<Self> {
        let shown = path.display().to_string();
        let fail = |fault, message: String| unavailable("audit log", &shown, fault, message);
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Created here, 0600, before SQLite sees it (SQLite would use the umask).
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| fail(fault_of_io(&e), format!("cannot create {shown}: {e}")))?;
            }
            Err(e) => return Err(fail(fault_of_io(&e), format!("cannot read {shown}: {e}"))),
            Ok(meta) if !meta.is_file() => {
                return Err(fail(
                    StoreFault::Corrupt,
                    format!("{shown} is not a regular file"),
                ));
            }
            Ok(meta) => check_writable_mode(&shown, meta.mode())?,
        }
        let sql = |e: rusqlite::Error, doing: &str| {
            let fault = fault_of(&e);
            let hint = match fault {
                StoreFault::Locked => " (another process or opener holds it)",
                StoreFault::Corrupt => " (not an audit database, or damaged)",
                _ => "",
            };
            fail(fault, format!("{doing} {shown}{hint}: {e}"))
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql(e, "cannot open"))?;
        // A second opener fails at once rather than waiting.
        conn.busy_timeout(std::time::Duration::ZERO)
            .map_err(|e| sql(e, "cannot configure"))?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(|e| sql(e, "cannot lock"))?;
        let journal: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| sql(e, "cannot switch to WAL"))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(fail(
                StoreFault::Io,
                format!("{shown} did not switch to WAL (journal mode {journal})"),
            ));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| sql(e, "cannot configure"))?;
        // Take the write lock now and keep it (exclusive locking mode).
        conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")
            .map_err(|e| sql(e, "cannot lock"))?;
        if quick_check {
            let verdict: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| sql(e, "cannot check"))?;
            if verdict != "ok" {
                return Err(fail(
                    StoreFault::Corrupt,
                    format!("{shown} failed its integrity check: {verdict}"),
                ));
            }
        }
        conn.execute_batch(SCHEMA)
            .map_err(|e| sql(e, "cannot create the schema of"))?;
        let meta = fs::metadata(path)
            .map_err(|e| fail(fault_of_io(&e), format!("cannot read {shown}: {e}")))?;
        let db = Self {
            path: path.to_owned(),
            shown,
            conn: Mutex::new(conn),
            file: FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            },
            key,
        };
        db.check_meta()?;
        Ok(db)
    }

    /// Checks (or, on a new file, writes) the schema version and the key check.
    fn check_meta(&self) -> Result<()> {
        let conn = self.lock();
        let get = |key: &str| -> Result<Option<Vec<u8>>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(|e| self.sql_error("audit log", e, "cannot read"))
        };
        let key_check = self
            .key
            .tag(b"key-check", b"agent-kernel audit log")
            .to_vec();
        match (get("schema")?, get("key_check")?) {
            (None, None) => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1), ('key_check', ?2)",
                    params![SCHEMA_VERSION.to_be_bytes().to_vec(), key_check],
                )
                .map_err(|e| self.sql_error("audit log", e, "cannot initialise"))?;
                Ok(())
            }
            (Some(version), Some(check)) => {
                if version != SCHEMA_VERSION.to_be_bytes() {
                    return Err(unavailable(
                        "audit log",
                        &self.shown,
                        StoreFault::Corrupt,
                        format!(
                            "{} has a schema version this build does not read",
                            self.shown
                        ),
                    ));
                }
                if !bool::from(subtle::ConstantTimeEq::ct_eq(&check[..], &key_check[..])) {
                    return Err(KernelError::invalid_config(format!(
                        "the audit key is not the key {} was written with",
                        self.shown
                    )));
                }
                Ok(())
            }
            _ => Err(unavailable(
                "audit log",
                &self.shown,
                StoreFault::Corrupt,
                format!("{} has an incomplete header", self.shown),
            )),
        }
    }

    /// The path, as shown in errors.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn sql_error(
        &self,
        store: &'static str,
        e: rusqlite::Error,
        doing: &str,
    ) -> KernelError {
        unavailable(
            store,
            &self.shown,
            fault_of(&e),
            format!("{doing} {}: {e}", self.shown),
        )
    }

    /// Before every write: the path still names the file that was opened,
    /// and its mode still lets its owner write. (Writes to a deleted file
    /// would succeed and vanish; root ignores a read-only mode, so the mode
    /// is read as the operator's word.)
    pub(crate) fn check_file(&self, store: &'static str) -> Result<()> {
        let meta = fs::metadata(&self.path).map_err(|e| {
            let fault = fault_of_io(&e);
            let what = if fault == StoreFault::Deleted {
                format!("{} was deleted while open", self.shown)
            } else {
                format!("cannot read {}: {e}", self.shown)
            };
            unavailable(store, &self.shown, fault, what)
        })?;
        if (FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }) != self.file
        {
            return Err(unavailable(
                store,
                &self.shown,
                StoreFault::Deleted,
                format!("{} was replaced by another file while open", self.shown),
            ));
        }
        check_writable_mode(&self.shown, meta.mode()).map_err(|e| match e {
            KernelError::StoreUnavailable {
                path,
                fault,
                message,
                ..
            } => KernelError::StoreUnavailable {
                store,
                path,
                fault,
                message,
            },
            other => other,
        })
    }

    /// The chain's head as stored.
    pub(crate) fn head(&self) -> Result<Head> {
        let conn = self.lock();
        let last: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql_error("audit log", e, "cannot read"))?;
        match last {
            Some((seq, hash)) => Ok(Head {
                next_seq: seq.saturating_add(1),
                last: link_bytes(&hash).unwrap_or(GENESIS),
            }),
            None => {
                // Everything was removed by retention: the anchor holds the head.
                let anchor = self.anchor(&conn)?;
                Ok(anchor.map_or(
                    Head {
                        next_seq: 1,
                        last: GENESIS,
                    },
                    |(seq, prev)| Head {
                        next_seq: seq,
                        last: prev,
                    },
                ))
            }
        }
    }

    /// The anchor retention left: the first kept sequence number and the
    /// link before it, MAC-checked (`None` when nothing was ever removed).
    fn anchor(&self, conn: &Connection) -> Result<Option<(i64, [u8; 32])>> {
        let value: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = 'anchor'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.sql_error("audit log", e, "cannot read"))?;
        let Some(value) = value else {
            return Ok(None);
        };
        let corrupt = || {
            unavailable(
                "audit log",
                &self.shown,
                StoreFault::Corrupt,
                format!("{} has a damaged retention anchor", self.shown),
            )
        };
        if value.len() != 8 + 32 + 32 {
            return Err(corrupt());
        }
        let (body, tag) = value.split_at(40);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            tag,
            &self.key.tag(b"anchor", body)[..],
        )) {
            return Err(corrupt());
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[..8]);
        let prev = link_bytes(&body[8..]).ok_or_else(corrupt)?;
        Ok(Some((i64::from_be_bytes(seq), prev)))
    }

    /// Removes the oldest records as `retention` says, leaving a MAC'd anchor
    /// so that [`verify`](Self::verify) starts where the log now starts.
    pub(crate) fn apply_retention(&self, retention: Retention, now: Timestamp) -> Result<u64> {
        self.check_file("audit log")?;
        let mut conn = self.lock();
        let err = |e| self.sql_error("audit log", e, "cannot apply retention to");
        let tx = conn.transaction().map_err(err)?;
        let first_kept: Option<i64> = match retention {
            Retention::MaxCount(n) => tx
                .query_row(
                    "SELECT seq FROM audit ORDER BY seq DESC LIMIT 1 OFFSET ?1",
                    [i64::try_from(n).unwrap_or(i64::MAX)],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map_err(err)?
                // The n-th newest is removed too: keep exactly n.
                .map(|seq| seq + 1),
            Retention::MaxAge(age) => {
                let cutoff =
                    ms(now).saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
                let young: Option<i64> = tx
                    .query_row(
                        "SELECT MIN(seq) FROM audit WHERE invoked_at_ms >= ?1",
                        [cutoff],
                        |r| r.get(0),
                    )
                    .map_err(err)?;
                match young {
                    Some(seq) => Some(seq),
                    // Everything is older: remove all of it.
                    None => tx
                        .query_row("SELECT MAX(seq) FROM audit", [], |r| {
                            r.get::<_, Option<i64>>(0)
                        })
                        .map_err(err)?
                        .map(|seq| seq + 1),
                }
            }
        };
        let Some(first_kept) = first_kept else {
            return Ok(0);
        };
        // The link before the first kept record: that record's `prev_hash`,
        // or the last removed record's hash when nothing is kept.
        let prev: Option<Vec<u8>> = tx
            .query_row(
                "SELECT hash FROM audit WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
                [first_kept],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let Some(prev) = prev.as_deref().and_then(link_bytes) else {
            return Ok(0);
        };
        let removed = tx
            .execute("DELETE FROM audit WHERE seq < ?1", [first_kept])
            .map_err(err)?;
        let mut body = first_kept.to_be_bytes().to_vec();
        body.extend_from_slice(&prev);
        let tag = self.key.tag(b"anchor", &body);
        body.extend_from_slice(&tag);
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('anchor', ?1)",
            [body],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(removed as u64)
    }

    /// Inserts `rows` after `head` in one transaction; returns the new head.
    pub(crate) fn insert(&self, head: Head, rows: &[&Row]) -> Result<Head> {
        self.check_file("audit log")?;
        let mut conn = self.lock();
        let err = |e| self.sql_error("audit log", e, "cannot write to");
        let tx = conn.transaction().map_err(err)?;
        let mut next = head;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO audit (seq, action_id, principal_id, capability_id, outcome, \
                     invoked_at_ms, trace_id, record, prev_hash, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(err)?;
            for row in rows {
                let link = self
                    .key
                    .link(&next.last, next.next_seq, row.record.as_bytes());
                stmt.execute(params![
                    next.next_seq,
                    row.action_id,
                    row.principal_id,
                    row.capability_id,
                    row.outcome,
                    row.invoked_at_ms,
                    row.trace_id,
                    row.record,
                    &next.last[..],
                    &link[..],
                ])
                .map_err(err)?;
                next = Head {
                    next_seq: next.next_seq.saturating_add(1),
                    last: link,
                };
            }
        }
        tx.commit().map_err(err)?;
        Ok(next)
    }

    /// The records matching `query`, oldest first.
    pub(crate) fn query(&self, query: &AuditQuery) -> Result<Vec<Arc<ActionTrace>>> {
        let mut out = Vec::new();
        self.each_record(query, |text| {
            out.push(Arc::new(self.parse(text)?));
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` with the stored JSON Lines text of each record matching `query`.
    pub(crate) fn each_record(
        &self,
        query: &AuditQuery,
        mut f: impl FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        use rusqlite::types::Value as Sql;
        let mut sql = String::from("SELECT record FROM audit WHERE 1 = 1");
        let mut args: Vec<Sql> = Vec::new();
        let mut filter = |column: &str, value: Sql| {
            sql.push_str(" AND ");
            sql.push_str(column);
            args.push(value);
        };
        if let Some(p) = &query.principal_id {
            filter("principal_id = ?", Sql::Text(p.clone()));
        }
        if let Some(c) = &query.capability_id {
            filter("capability_id = ?", Sql::Text(c.clone()));
        }
        if let Some(o) = query.outcome {
            filter("outcome = ?", Sql::Text(o.as_str().to_owned()));
        }
        if let Some(s) = query.since {
            filter("invoked_at_ms >= ?", Sql::Integer(ms(s)));
        }
        if let Some(u) = query.until {
            filter("invoked_at_ms < ?", Sql::Integer(ms(u)));
        }
        if let Some(t) = &query.trace_id {
            filter("trace_id = ?", Sql::Text(t.to_ascii_lowercase()));
        }
        sql.push_str(" ORDER BY seq");
        if let Some(limit) = query.limit {
            sql.push_str(" LIMIT ?");
            args.push(Sql::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        }
        let conn = self.lock();
        let err = |e| self.sql_error("audit log", e, "cannot read");
        let mut stmt = conn.prepare(&sql).map_err(err)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let text: String = row.get(0).map_err(err)?;
            f(&text)?;
        }
        Ok(())
    }

    /// The latest record of `action_id`.
    pub(crate) fn get(&self, action_id: &str) -> Result<Arc<ActionTrace>> {
        let text: Option<String> = self
            .lock()
            .query_row(
                "SELECT record FROM audit WHERE action_id = ?1 ORDER BY seq DESC LIMIT 1",
                [action_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_error("audit log", e, "cannot read"))?;
        match text {
            Some(text) => Ok(Arc::new(self.parse(&text)?)),
            None => Err(KernelError::TraceNotFound {
                action_id: action_id.to_owned(),
            }),
        }
    }

    pub(crate) fn count(&self) -> Result<u64> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| self.sql_error("audit log", e, "cannot read"))
    }

    fn parse(&self, text: &str) -> Result<ActionTrace> {
        parse_jsonl_record(text).map_err(|message| {
            unavailable(
                "audit log",
                &self.shown,
                StoreFault::Corrupt,
                format!("{} holds an unreadable record: {message}", self.shown),
            )
        })
    }

    /// Walks the chain from its start (or retention's anchor) and names the
    /// first broken link.
    pub(crate) fn verify(&self) -> Result<VerifyReport> {
        let conn = self.lock();
        let err = |e| self.sql_error("audit log", e, "cannot read");
        let (mut expected_seq, mut prev) = self.anchor(&conn)?.unwrap_or((1, GENESIS));
        let mut stmt = conn
            .prepare(
                "SELECT seq, action_id, principal_id, capability_id, outcome, invoked_at_ms, \
                 trace_id, record, prev_hash, hash FROM audit ORDER BY seq",
            )
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut checked = 0;
        while let Some(row) = rows.next().map_err(err)? {
            checked += 1;
            let seq: i64 = row.get(0).map_err(err)?;
            let action_id: String = row.get(1).map_err(err)?;
            let record: String = row.get(7).map_err(err)?;
            let prev_hash: Vec<u8> = row.get(8).map_err(err)?;
            let hash: Vec<u8> = row.get(9).map_err(err)?;
            let broken = |reason: String| {
                Ok(VerifyReport {
                    checked,
                    first_broken: Some(BrokenLink {
                        seq,
                        action_id: action_id.clone(),
                        reason,
                    }),
                })
            };
            if seq != expected_seq {
                return broken(format!(
                    "records {expected_seq}..{} are missing",
                    seq.saturating_sub(1)
                ));
            }
            if prev_hash != prev {
                return broken("does not follow the record before it".to_owned());
            }
            let link = self.key.link(&prev, seq, record.as_bytes());
            if !bool::from(subtle::ConstantTimeEq::ct_eq(&hash[..], &link[..])) {
                return broken("the record was altered (its link does not verify)".to_owned());
            }
            let columns = (
                action_id.clone(),
                row.get::<_, String>(2).map_err(err)?,
                row.get::<_, String>(3).map_err(err)?,
                row.get::<_, String>(4).map_err(err)?,
                row.get::<_, i64>(5).map_err(err)?,
                row.get::<_, Option<String>>(6).map_err(err)?,
            );
            match parse_jsonl_record(&record) {
                Ok(trace) => {
                    let row = Row::of(&trace);
                    let parsed = (
                        row.action_id,
                        row.principal_id,
                        row.capability_id,
                        row.outcome.to_owned(),
                        row.invoked_at_ms,
                        row.trace_id,
                    );
                    if parsed != columns {
                        return broken("its search columns disagree with the record".to_owned());
                    }
                }
                Err(message) => return broken(format!("unreadable record: {message}")),
            }
            prev = link;
            expected_seq = seq.saturating_add(1);
        }
        Ok(VerifyReport {
            checked,
            first_broken: None,
        })
    }

    /// Streams the stored records matching `query` as JSON Lines.
    pub(crate) fn export(&self, query: &AuditQuery, writer: &mut dyn Write) -> Result<usize> {
        let mut n = 0;
        let io = |e: io::Error| KernelError::invalid_argument(format!("export failed: {e}"));
        self.each_record(query, |text| {
            writer.write_all(text.as_bytes()).map_err(io)?;
            writer.write_all(b"\n").map_err(io)?;
            n += 1;
            Ok(())
        })?;
        writer.flush().map_err(io)?;
        Ok(n)
    }
}

fn link_bytes(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

/// A file whose owner may not write it is read-only, for root too.
fn check_writable_mode(shown: &str, mode: u32) -> Result<()> {
    if mode & 0o200 == 0 {
        return Err(unavailable(
            "audit log",
            shown,
            StoreFault::ReadOnly,
            format!("{shown} is read-only (mode {:o})", mode & 0o7777),
        ));
    }
    Ok(())
}
