//! Revocations in the SQLite file: written through in one transaction before
//! `revoke` returns, loaded when a kernel is built, pruned once every token
//! an entry covers has expired.

use std::sync::Arc;

use rusqlite::params;

use super::db::{Db, ms};
use crate::error::Result;
use crate::store::{Revocation, RevocationStore};
use crate::time::Timestamp;

/// The revocation store in a SQLite file (shares the file, and its lock,
/// with the audit log of the same [`SqliteStore`](super::SqliteStore)).
#[derive(Debug)]
pub struct SqliteRevocations {
    db: Arc<Db>,
}

impl SqliteRevocations {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

const STORE: &str = "revocation store";

impl RevocationStore for SqliteRevocations {
    fn location(&self) -> &str {
        self.db.shown()
    }

    fn load(&self, now: Timestamp) -> Result<Vec<Revocation>> {
        let conn = self.db.lock();
        let err = |e| self.db.sql_error(STORE, e, "cannot read");
        // Pruning is a write: a read-only or full file still loads.
        if let Err(e) = conn.execute(
            "DELETE FROM revocations WHERE forget_at_ms <= ?1",
            [ms(now)],
        ) {
            log::warn!("revocation_prune_failed error={}", err(e));
        }
        let mut stmt = conn
            .prepare(
                "SELECT kind, id, epoch_ms, forget_at_ms FROM revocations WHERE forget_at_ms > ?1",
            )
            .map_err(err)?;
        let mut rows = stmt.query([ms(now)]).map_err(err)?;
        let mut out = Vec::new();
        let at = |v: i64| Timestamp::from_millis(u64::try_from(v).unwrap_or(0));
        while let Some(row) = rows.next().map_err(err)? {
            let kind: String = row.get(0).map_err(err)?;
            let id: String = row.get(1).map_err(err)?;
            let epoch: i64 = row.get(2).map_err(err)?;
            let forget_at: i64 = row.get(3).map_err(err)?;
            out.push(if kind == "principal" {
                Revocation::Principal {
                    principal_id: id,
                    epoch: at(epoch),
                    forget_at: at(forget_at),
                }
            } else {
                Revocation::Token {
                    token_id: id,
                    forget_at: at(forget_at),
                }
            });
        }
        Ok(out)
    }

    fn persist(&self, revocations: &[Revocation], now: Timestamp) -> Result<()> {
        self.db.check_file(STORE)?;
        let mut conn = self.db.lock();
        let err = |e| self.db.sql_error(STORE, e, "cannot write to");
        let tx = conn.transaction().map_err(err)?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO revocations (kind, id, epoch_ms, forget_at_ms) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (kind, id) DO UPDATE SET \
                     epoch_ms = MAX(epoch_ms, excluded.epoch_ms), \
                     forget_at_ms = MAX(forget_at_ms, excluded.forget_at_ms)",
                )
                .map_err(err)?;
            for revocation in revocations {
                let (kind, id, epoch) = match revocation {
                    Revocation::Token { token_id, .. } => ("token", token_id, 0),
                    Revocation::Principal {
                        principal_id,
                        epoch,
                        ..
                    } => ("principal", principal_id, ms(*epoch)),
                };
                upsert
                    .execute(params![kind, id, epoch, ms(revocation.forget_at())])
                    .map_err(err)?;
            }
        }
        tx.execute(
            "DELETE FROM revocations WHERE forget_at_ms <= ?1",
            [ms(now)],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }
}
