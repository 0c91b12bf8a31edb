//! The handle store: full results kept for later expansion, with a TTL, a size
//! cap, and an owner.
//!
//! Handles are bound to the principal they were issued to and remember the
//! constraints of the token that created them, so an expansion can be passed
//! through the firewall exactly like the original invocation. Eviction keeps an
//! insertion-ordered queue (which, with one TTL per store, is also expiry order):
//! expired entries leave from the front first, then the oldest when the store is
//! full. No insert sorts the store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::error::{KernelError, Result};
use crate::ids::new_id;
use crate::time::{Clock, SystemClock, Timestamp};
use crate::token::CapabilityToken;
use crate::types::Handle;

/// Default handle lifetime: one hour.
pub const DEFAULT_HANDLE_TTL: Duration = Duration::from_secs(3600);
/// Default maximum number of stored handles.
pub const DEFAULT_MAX_HANDLES: usize = 10_000;

/// Who a stored result belongs to, and the grant it was produced under: an
/// expansion is checked again against that token (still valid, same
/// principal) and its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct HandleOwner {
    /// The principal the handle is bound to.
    pub principal_id: String,
    /// The token of the invocation that produced the data (verified again,
    /// and its constraints applied again, on every expansion).
    pub token: CapabilityToken,
    /// The invocation that produced the data.
    pub action_id: String,
    /// The session that invocation was charged to; expansions are charged
    /// to it too.
    pub session_id: Option<String>,
}

/// A stored result as handed out for expansion.
#[derive(Debug, Clone)]
pub struct StoredResult {
    /// The handle's metadata.
    pub handle: Handle,
    /// The full (unredacted) data; shared, not copied.
    pub data: Arc<Value>,
    /// Owner and constraints.
    pub owner: HandleOwner,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, StoredResult>,
    order: VecDeque<String>,
    evicted_expired: u64,
    evicted_capacity: u64,
}

impl Inner {
    fn remove_front_expired(&mut self, now: Timestamp) {
        while let Some(front) = self.order.front() {
            match self.map.get(front) {
                Some(entry) if entry.handle.expires_at > now => break,
                Some(_) => {
                    if let Some(id) = self.order.pop_front() {
                        self.map.remove(&id);
                        self.evicted_expired += 1;
                    }
                }
                None => {
                    self.order.pop_front();
                }
            }
        }
    }
}

/// Stores full results under handles (see the [module docs](self)).
#[derive(Debug)]
pub struct HandleStore {
    inner: Mutex<Inner>,
    ttl: Duration,
    max_entries: usize,
    clock: Arc<dyn Clock>,
}

impl Default for HandleStore {
    fn default() -> Self {
        Self::new()
    }
}

impl HandleStore {
    /// A store with a 1 h TTL and room for 10 000 handles.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            ttl: DEFAULT_HANDLE_TTL,
            max_entries: DEFAULT_MAX_HANDLES,
            clock: Arc::new(SystemClock),
        }
    }

    /// A store with the given TTL and capacity; zero for either is refused.
    pub fn with_limits(ttl: Duration, max_entries: usize) -> Result<Self> {
        if ttl.is_zero() {
            return Err(KernelError::invalid_config("handle TTL must be > 0"));
        }
        if max_entries == 0 {
            return Err(KernelError::invalid_config(
                "handle store max_entries must be >= 1, got 0",
            ));
        }
        Ok(Self {
            ttl,
            max_entries,
            ..Self::new()
        })
    }

    /// Uses `clock` for creation and expiry times.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The handle lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The capacity.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `data` for `owner` and returns its handle. Evicts expired entries,
    /// then the oldest if the store is full.
    pub fn store(&self, capability_id: &str, data: Arc<Value>, owner: HandleOwner) -> Handle {
        let now = self.clock.now();
        let handle = Handle {
            handle_id: new_id(),
            capability_id: capability_id.to_owned(),
            created_at: now,
            expires_at: now.saturating_add(self.ttl),
            total_rows: data.as_array().map_or(1, Vec::len),
        };
        let id = handle.handle_id.clone();
        let entry = StoredResult {
            handle: handle.clone(),
            data,
            owner,
        };
        let mut inner = self.lock();
        inner.remove_front_expired(now);
        while inner.map.len() >= self.max_entries {
            match inner.order.pop_front() {
                Some(old) => {
                    if inner.map.remove(&old).is_some() {
                        inner.evicted_capacity += 1;
                    }
                }
                None => break,
            }
        }
        // Keep the order queue proportional to the map even if many entries were
        // removed out of order (lazy expiry on access).
        if inner.order.len() > 2 * self.max_entries + 16 {
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|id| map.contains_key(id));
        }
        inner.order.push_back(id.clone());
        inner.map.insert(id, entry);
        drop(inner);
        handle
    }

    /// The stored result for `handle_id`, if `principal_id` owns it and it has not expired.
    ///
    /// Errors: [`KernelError::HandleNotFound`], [`KernelError::HandleAccessDenied`]
    /// (checked before expiry, so another principal learns nothing about it),
    /// [`KernelError::HandleExpired`] (the entry is dropped).
    pub fn get(&self, handle_id: &str, principal_id: &str) -> Result<StoredResult> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let entry = inner
            .map
            .get(handle_id)
            .ok_or_else(|| KernelError::HandleNotFound {
                handle_id: handle_id.to_owned(),
            })?;
        if entry.owner.principal_id != principal_id {
            return Err(KernelError::HandleAccessDenied {
                handle_id: handle_id.to_owned(),
                principal_id: principal_id.to_owned(),
            });
        }
        if entry.handle.expires_at <= now {
            let expired_at = entry.handle.expires_at;
            inner.map.remove(handle_id);
            inner.evicted_expired += 1;
            return Err(KernelError::HandleExpired {
                handle_id: handle_id.to_owned(),
                expired_at,
            });
        }
        Ok(entry.clone())
    }

    /// Drops every expired entry; returns how many.
    pub fn evict_expired(&self) -> usize {
        let now = self.clock.now();
        let mut inner = self.lock();
        let before = inner.map.len();
        inner.map.retain(|_, e| e.handle.expires_at > now);
        let n = before - inner.map.len();
        inner.evicted_expired += n as u64;
        let Inner { map, order, .. } = &mut *inner;
        order.retain(|id| map.contains_key(id));
        n
    }

    /// Number of stored handles.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries have been evicted: `(expired, for capacity)`.
    pub fn evictions(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.evicted_expired, inner.evicted_capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualClock;
    use serde_json::json;

    fn owner(p: &str) -> HandleOwner {
        let tokens = crate::token::HmacTokenProvider::new(b"handle-tests-secret-0123456789")
            .unwrap_or_else(|e| panic!("{e}"));
        HandleOwner {
            principal_id: p.to_owned(),
            token: tokens.issue(
                "cap",
                p,
                crate::types::Constraints::default(),
                None,
                "audit",
            ),
            action_id: "a".into(),
            session_id: None,
        }
    }

    #[test]
    fn store_get_and_row_count() {
        let s = HandleStore::new();
        let data = Arc::new(json!([{"a": 1}, {"a": 2}]));
        let h = s.store("cap", Arc::clone(&data), owner("u1"));
        assert_eq!(h.total_rows, 2);
        assert_eq!(
            h.expires_at.as_millis() - h.created_at.as_millis(),
            3_600_000
        );
        let got = s.get(&h.handle_id, "u1").unwrap();
        assert!(Arc::ptr_eq(&got.data, &data));
        assert_eq!(
            s.store("cap", Arc::new(json!({"x": 1})), owner("u1"))
                .total_rows,
            1
        );
        assert_eq!(
            s.get("missing", "u1").unwrap_err().kind(),
            "handle_not_found"
        );
    }

    #[test]
    fn bound_to_principal() {
        let s = HandleStore::new();
        let h = s.store("cap", Arc::new(json!(1)), owner("u1"));
        let err = s.get(&h.handle_id, "mallory").unwrap_err();
        assert_eq!(err.kind(), "handle_access_denied");
        assert!(err.to_string().contains("mallory"));
        assert!(s.get(&h.handle_id, "u1").is_ok());
    }

    #[test]
    fn expiry_is_reported_then_entry_dropped() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
        let s = HandleStore::with_limits(Duration::from_secs(10), 100)
            .unwrap()
            .with_clock(clock.clone());
        let h = s.store("cap", Arc::new(json!(1)), owner("u1"));
        clock.advance(Duration::from_secs(9));
        assert!(s.get(&h.handle_id, "u1").is_ok());
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            s.get(&h.handle_id, "u1").unwrap_err().kind(),
            "handle_expired"
        );
        assert_eq!(
            s.get(&h.handle_id, "u1").unwrap_err().kind(),
            "handle_not_found"
        );
    }

    #[test]
    fn capacity_evicts_expired_first_then_oldest() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
        let s = HandleStore::with_limits(Duration::from_secs(10), 3)
            .unwrap()
            .with_clock(clock.clone());
        let a = s.store("cap", Arc::new(json!(1)), owner("u"));
        clock.advance(Duration::from_secs(6));
        let b = s.store("cap", Arc::new(json!(2)), owner("u"));
        let c = s.store("cap", Arc::new(json!(3)), owner("u"));
        clock.advance(Duration::from_secs(5)); // a expired, b and c live
        let d = s.store("cap", Arc::new(json!(4)), owner("u"));
        assert_eq!(s.len(), 3);
        assert_eq!(s.evictions(), (1, 0));
        assert_eq!(
            s.get(&a.handle_id, "u").unwrap_err().kind(),
            "handle_not_found"
        );
        // full of live entries: the oldest (b) goes
        let e = s.store("cap", Arc::new(json!(5)), owner("u"));
        assert_eq!(s.len(), 3);
        assert_eq!(s.evictions(), (1, 1));
        assert!(s.get(&b.handle_id, "u").is_err());
        for h in [&c, &d, &e] {
            assert!(s.get(&h.handle_id, "u").is_ok());
        }
    }

    #[test]
    fn bounded_under_heavy_insert() {
        let s = HandleStore::with_limits(Duration::from_secs(60), 100).unwrap();
        let data = Arc::new(json!([1, 2, 3]));
        for _ in 0..10_000 {
            s.store("cap", Arc::clone(&data), owner("u"));
        }
        assert_eq!(s.len(), 100);
        assert!(s.lock().order.len() <= 2 * 100 + 16);
        assert_eq!(s.evict_expired(), 0);
        assert!(HandleStore::with_limits(Duration::ZERO, 1).is_err());
        assert!(HandleStore::with_limits(Duration::from_secs(1), 0).is_err());
    }
}
