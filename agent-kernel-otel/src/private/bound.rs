//! Pre-bound metric instruments (feature `bound-instruments`).
//!
//! Recording through the OpenTelemetry API with attributes costs one SDK
//! attribute-set look-up per instrument per call (SipHash over every key and
//! value). A call site's instruments share their label values, so this cache
//! looks the values up once per call (a seeded foldhash over the values only)
//! and records through handles the SDK resolved when the combination was
//! first seen (`Counter::bind`, `Histogram::bind`): a direct write to the
//! aggregator.
//!
//! Bounded: at most [`MAX_SETS`] combinations per call site and binding are
//! bound; later ones take the unbound path, where the SDK's own cardinality
//! limit applies as usual. Only string, boolean and integer label values are
//! bound (a float label, which no kernel metric has, takes the unbound path).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use opentelemetry::Value;
use opentelemetry::metrics::{BoundCounter, BoundHistogram};

use super::Status;

/// Label-value combinations bound per call site and binding.
pub(crate) const MAX_SETS: usize = 512;

/// Label values per call beyond which a call takes the unbound path.
pub(crate) const MAX_VALUES: usize = 8;

/// One instrument of a site, bound to one combination of label values.
pub(crate) enum Handle {
    Counter(BoundCounter<u64>),
    Histogram(BoundHistogram<f64>),
}

/// The handles of one combination: one per metric of the site, `None` for a
/// metric whose `when` filter excludes the combination's status (binding it
/// would create an empty series).
pub(crate) struct Set {
    status: Status,
    values: Box<[Option<Value>]>,
    pub(crate) handles: Box<[Option<Handle>]>,
}

/// The bound combinations of one call site for one binding.
pub(crate) struct Cache {
    hasher: foldhash::fast::RandomState,
    sets: RwLock<Sets>,
}

#[derive(Default)]
struct Sets {
    /// Hash of (status, values) → the combinations with that hash.
    by_hash: HashMap<u64, Vec<Arc<Set>>, BuildHasherDefault<PassThrough>>,
    len: usize,
}

/// The keys of `by_hash` are hashes already.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Cache {
    pub(crate) fn new() -> Cache {
        Cache {
            hasher: foldhash::fast::RandomState::default(),
            sets: RwLock::new(Sets::default()),
        }
    }

    /// The handles bound to `status` and `values`, binding them with `bind`
    /// the first time. `None`: the combination cannot be bound (a float or
    /// array value, or the cache is full); record unbound.
    pub(crate) fn get_or_bind(
        &self,
        status: Status,
        values: &[Option<&Value>],
        bind: impl FnOnce() -> Box<[Option<Handle>]>,
    ) -> Option<Arc<Set>> {
        let hash = self.hash(status, values)?;
        {
            let sets = self.sets.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(set) = sets.find(hash, status, values) {
                return Some(set);
            }
            if sets.len >= MAX_SETS {
                return None;
            }
        }
        // Bound outside the lock (the SDK takes its own locks).
        let set = Arc::new(Set {
            status,
            values: values.iter().map(|v| v.cloned()).collect(),
            handles: bind(),
        });
        let mut sets = self.sets.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = sets.find(hash, status, values) {
            return Some(existing);
        }
        if sets.len >= MAX_SETS {
            return None;
        }
        sets.len += 1;
        sets.by_hash.entry(hash).or_default().push(Arc::clone(&set));
        Some(set)
    }

    /// How many combinations are bound.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sets.read().map_or(0, |s| s.len)
    }

    fn hash(&self, status: Status, values: &[Option<&Value>]) -> Option<u64> {
        let mut h = self.hasher.build_hasher();
        h.write_u8(status as u8);
        for value in values {
            match value {
                None => h.write_u8(0),
                Some(Value::String(s)) => {
                    h.write_u8(1);
                    h.write(s.as_str().as_bytes());
                    h.write_u8(0xff);
                }
                Some(Value::I64(i)) => {
                    h.write_u8(2);
                    h.write_i64(*i);
                }
                Some(Value::Bool(b)) => {
                    h.write_u8(3);
                    h.write_u8(u8::from(*b));
                }
                // Floats (NaN is not equal to itself) and arrays: unbound.
                Some(_) => return None,
            }
        }
        Some(h.finish())
    }
}

impl Sets {
    fn find(&self, hash: u64, status: Status, values: &[Option<&Value>]) -> Option<Arc<Set>> {
        self.by_hash
            .get(&hash)?
            .iter()
            .find(|set| {
                set.status == status
                    && set.values.len() == values.len()
                    && set.values.iter().zip(values).all(|(a, b)| a.as_ref() == *b)
            })
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_handles() -> Box<[Option<Handle>]> {
        Box::new([])
    }

    #[test]
    fn one_set_per_combination() {
        let cache = Cache::new();
        let a = Value::from("billing.list_invoices");
        let a_again = Value::from(String::from("billing.list_invoices"));
        let read = Value::from("READ");
        let first = cache
            .get_or_bind(Status::Success, &[Some(&a), Some(&read)], no_handles)
            .map(|s| Arc::as_ptr(&s));
        // Equal values in another representation find the same set.
        let second = cache
            .get_or_bind(Status::Success, &[Some(&a_again), Some(&read)], || {
                panic!("already bound")
            })
            .map(|s| Arc::as_ptr(&s));
        assert!(first.is_some());
        assert_eq!(first, second);
        // Another status, a missing value or another value is another set.
        for (status, values) in [
            (Status::Error, vec![Some(&a), Some(&read)]),
            (Status::Success, vec![Some(&a), None]),
            (Status::Success, vec![Some(&read), Some(&a)]),
        ] {
            let other = cache
                .get_or_bind(status, &values, no_handles)
                .map(|s| Arc::as_ptr(&s));
            assert!(other.is_some());
            assert_ne!(other, first);
        }
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn floats_are_not_bound() {
        let cache = Cache::new();
        let f = Value::F64(f64::NAN);
        assert!(
            cache
                .get_or_bind(Status::Success, &[Some(&f)], no_handles)
                .is_none()
        );
    }

    #[test]
    fn bounded() {
        let cache = Cache::new();
        let values: Vec<Value> = (0..MAX_SETS as i64 + 10).map(Value::I64).collect();
        let bound = values
            .iter()
            .filter(|v| {
                cache
                    .get_or_bind(Status::Success, &[Some(v)], no_handles)
                    .is_some()
            })
            .count();
        assert_eq!(bound, MAX_SETS);
        // Combinations bound before the cap still resolve.
        assert!(
            cache
                .get_or_bind(Status::Success, &[values.first()], || panic!("bound"))
                .is_some()
        );
    }
}
