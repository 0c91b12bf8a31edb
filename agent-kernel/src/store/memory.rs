//! The in-memory stores: [`TraceStore`] as an [`AuditLog`] (bounded, counted
//! eviction, gone on restart) and [`MemoryRevocations`] (revocations that
//! outlive a kernel, not the process).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{AuditAck, AuditLog, AuditQuery, AuditSlot, Retention, Revocation, RevocationStore};
use crate::error::Result;
use crate::time::Timestamp;
use crate::trace::TraceStore;
use crate::types::ActionTrace;

impl AuditLog for TraceStore {
    fn location(&self) -> &str {
        "memory"
    }

    /// Always a slot: the store is bounded by eviction, not by refusal.
    fn reserve(&self) -> Result<AuditSlot> {
        Ok(AuditSlot::unbounded())
    }

    fn append(&self, slot: AuditSlot, record: ActionTrace) -> AuditAck {
        slot.consume();
        self.record(record);
        AuditAck::ready(Ok(()))
    }

    fn get(&self, action_id: &str) -> Result<Arc<ActionTrace>> {
        TraceStore::get(self, action_id)
    }

    fn query(&self, query: &AuditQuery) -> Result<Vec<Arc<ActionTrace>>> {
        // The trace-id index first; anything else is a scan of what is kept.
        let candidates = match &query.trace_id {
            Some(trace_id) => self.by_trace_id(trace_id),
            None => self.list_all(),
        };
        Ok(candidates
            .into_iter()
            .filter(|r| query.matches(r))
            .take(query.limit.unwrap_or(usize::MAX))
            .collect())
    }

    fn count(&self) -> Result<u64> {
        Ok(self.len() as u64)
    }

    fn apply_retention(&self, retention: Retention, now: Timestamp) -> Result<u64> {
        Ok(match retention {
            Retention::MaxCount(n) => {
                self.remove_oldest(usize::try_from(n).unwrap_or(usize::MAX), None)
            }
            Retention::MaxAge(age) => {
                let cutoff = Timestamp::from_millis(
                    now.as_millis()
                        .saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
                );
                self.remove_oldest(usize::MAX, Some(cutoff))
            }
        })
    }
}

/// Revocations kept in memory, keyed by what they revoke: they outlive a
/// [`Kernel`](crate::Kernel) built on the same store (a restart of the kernel
/// inside one process), not the process.
#[derive(Debug, Default)]
pub struct MemoryRevocations {
    entries: Mutex<HashMap<(bool, String), Revocation>>,
}

impl MemoryRevocations {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The key an entry is kept under: (is a principal, id).
fn key_of(revocation: &Revocation) -> (bool, String) {
    match revocation {
        Revocation::Token { token_id, .. } => (false, token_id.clone()),
        Revocation::Principal { principal_id, .. } => (true, principal_id.clone()),
    }
}

impl RevocationStore for MemoryRevocations {
    fn location(&self) -> &str {
        "memory"
    }

    fn load(&self, now: Timestamp) -> Result<Vec<Revocation>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, r| r.forget_at() > now);
        Ok(entries.values().cloned().collect())
    }

    fn persist(&self, revocations: &[Revocation], now: Timestamp) -> Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, r| r.forget_at() > now);
        for revocation in revocations {
            let key = key_of(revocation);
            let newer = entries
                .get(&key)
                .is_none_or(|old| old.forget_at() < revocation.forget_at());
            if newer {
                entries.insert(key, revocation.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_keep_the_later_expiry_and_prune_expired() {
        let store = MemoryRevocations::new();
        let t = |ms| Timestamp::from_millis(ms);
        store
            .persist(
                &[
                    Revocation::Token {
                        token_id: "a".into(),
                        forget_at: t(100),
                    },
                    Revocation::Token {
                        token_id: "b".into(),
                        forget_at: t(10),
                    },
                ],
                t(0),
            )
            .unwrap();
        store
            .persist(
                &[Revocation::Token {
                    token_id: "a".into(),
                    forget_at: t(50),
                }],
                t(0),
            )
            .unwrap();
        let loaded = store.load(t(20)).unwrap();
        assert_eq!(
            loaded,
            vec![Revocation::Token {
                token_id: "a".into(),
                forget_at: t(100)
            }]
        );
        assert!(store.load(t(100)).unwrap().is_empty());
    }
}
