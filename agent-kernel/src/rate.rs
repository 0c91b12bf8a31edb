//! A sliding-window rate limiter with O(1) amortised checks and bounded memory.
//!
//! Each key keeps either an exact log of its admissions inside the window (a
//! ring buffer that never holds more than `limit` entries, used while `limit`
//! is at most [`EXACT_LOG_MAX`]) or, for larger limits, a two-bucket sliding
//! window counter (constant size; estimates the previous window's share
//! linearly). The number of keys is capped; keys whose windows are empty are
//! swept when the cap is reached, and if every key is still live a new key is
//! refused (fail closed) rather than evicting someone's live window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Limits up to this count are tracked with an exact per-admission log.
pub const EXACT_LOG_MAX: u64 = 1024;

/// Default cap on distinct keys tracked at once.
pub const DEFAULT_MAX_KEYS: usize = 16_384;

#[derive(Debug)]
enum Window {
    /// Admission times (ns) inside the window, oldest first; never more than `limit`.
    Log(VecDeque<u64>),
    /// Sliding window counter: counts of the current and previous fixed windows.
    Pair { cur_start: u64, cur: u64, prev: u64 },
}

#[derive(Debug)]
struct Slot {
    window: Window,
    window_ns: u64,
}

impl Slot {
    fn new(limit: u64, window_ns: u64, now: u64) -> Self {
        let window = if limit <= EXACT_LOG_MAX {
            Window::Log(VecDeque::new())
        } else {
            Window::Pair {
                cur_start: now - now % window_ns,
                cur: 0,
                prev: 0,
            }
        };
        Self { window, window_ns }
    }

    /// Admits one event if under `limit`; returns whether it was admitted.
    fn admit(&mut self, limit: u64, window_ns: u64, now: u64) -> bool {
        if window_ns != self.window_ns {
            // Limits changed for this key (new engine config): start afresh.
            *self = Slot::new(limit, window_ns, now);
        }
        match &mut self.window {
            Window::Log(log) => {
                while log
                    .front()
                    .is_some_and(|&t| t.saturating_add(window_ns) <= now)
                {
                    log.pop_front();
                }
                if (log.len() as u64) < limit {
                    log.push_back(now);
                    true
                } else {
                    false
                }
            }
            Window::Pair {
                cur_start,
                cur,
                prev,
            } => {
                if now >= cur_start.saturating_add(window_ns.saturating_mul(2)) {
                    *prev = 0;
                    *cur = 0;
                    *cur_start = now - now % window_ns;
                } else if now >= cur_start.saturating_add(window_ns) {
                    *prev = *cur;
                    *cur = 0;
                    *cur_start = cur_start.saturating_add(window_ns);
                }
                let elapsed = now.saturating_sub(*cur_start).min(window_ns);
                let weight = u128::from(window_ns - elapsed);
                let prev_share = u128::from(*prev) * weight / u128::from(window_ns.max(1));
                let estimate = prev_share + u128::from(*cur);
                if estimate < u128::from(limit) {
                    *cur += 1;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Whether nothing inside the window remains (the key can be forgotten).
    fn is_idle(&self, now: u64) -> bool {
        match &self.window {
            Window::Log(log) => log
                .back()
                .is_none_or(|&t| t.saturating_add(self.window_ns) <= now),
            Window::Pair { cur_start, .. } => {
                now >= cur_start.saturating_add(self.window_ns.saturating_mul(2))
            }
        }
    }
}

/// Why an admission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The key's limit is used up for the current window.
    OverLimit,
    /// The limiter tracks its maximum number of live keys.
    AtCapacity,
}

#[derive(Debug)]
struct State {
    slots: HashMap<String, Slot>,
    scratch: String,
    next_sweep_ns: u64,
}

/// The limiter; keys are `(scope, principal, capability)`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    state: Mutex<State>,
    max_keys: usize,
}

impl RateLimiter {
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            state: Mutex::new(State {
                slots: HashMap::new(),
                scratch: String::new(),
                next_sweep_ns: 0,
            }),
            max_keys: max_keys.max(1),
        }
    }

    /// Checks and, when admitted, records one event for the key at monotonic time `now`.
    pub(crate) fn admit(
        &self,
        scope: &str,
        principal_id: &str,
        capability_id: &str,
        limit: u64,
        window: Duration,
        now: Duration,
    ) -> Result<(), Refusal> {
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX).max(1);
        let now = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let st = &mut *guard;
        st.scratch.clear();
        // Length-prefixed so that ("a:b", "c") and ("a", "b:c") never collide.
        st.scratch.push_str(scope);
        st.scratch.push(':');
        push_decimal(&mut st.scratch, principal_id.len());
        st.scratch.push(':');
        st.scratch.push_str(principal_id);
        st.scratch.push_str(capability_id);
        if let Some(slot) = st.slots.get_mut(st.scratch.as_str()) {
            return if slot.admit(limit, window_ns, now) {
                Ok(())
            } else {
                Err(Refusal::OverLimit)
            };
        }
        if st.slots.len() >= self.max_keys {
            if now < st.next_sweep_ns {
                return Err(Refusal::AtCapacity);
            }
            let before = st.slots.len();
            st.slots.retain(|_, s| !s.is_idle(now));
            let freed = before - st.slots.len();
            // A sweep costs O(keys); only allow the next one after enough inserts
            // could have happened, or after a short pause when nothing was freed.
            if freed < self.max_keys / 4 {
                st.next_sweep_ns = now.saturating_add(window_ns / 8);
            }
            if st.slots.len() >= self.max_keys {
                return Err(Refusal::AtCapacity);
            }
        }
        let mut slot = Slot::new(limit, window_ns, now);
        let admitted = slot.admit(limit, window_ns, now);
        st.slots.insert(st.scratch.clone(), slot);
        if admitted {
            Ok(())
        } else {
            Err(Refusal::OverLimit)
        }
    }

    /// Number of keys currently tracked.
    pub(crate) fn tracked_keys(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .slots
            .len()
    }
}

/// Appends the decimal digits of `n` without the formatting machinery.
fn push_decimal(out: &mut String, n: usize) {
    if n >= 10 {
        push_decimal(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn exact_log_slides() {
        let l = RateLimiter::new(10);
        let w = Duration::from_secs(60);
        assert!(l.admit("g", "p", "c", 2, w, Duration::ZERO).is_ok());
        assert!(l.admit("g", "p", "c", 2, w, 10 * S).is_ok());
        assert_eq!(
            l.admit("g", "p", "c", 2, w, 59 * S),
            Err(Refusal::OverLimit)
        );
        // first admission (t=0) leaves the window at t=60
        assert!(l.admit("g", "p", "c", 2, w, 60 * S).is_ok());
        assert_eq!(
            l.admit("g", "p", "c", 2, w, 61 * S),
            Err(Refusal::OverLimit)
        );
        // other keys are independent, and the scope separates grant from invoke
        assert!(l.admit("g", "p2", "c", 2, w, 61 * S).is_ok());
        assert!(l.admit("i", "p", "c", 2, w, 61 * S).is_ok());
    }

    #[test]
    fn keys_do_not_collide() {
        let l = RateLimiter::new(10);
        let w = Duration::from_secs(60);
        assert!(l.admit("g", "a:b", "c", 1, w, Duration::ZERO).is_ok());
        assert!(l.admit("g", "a", "b:c", 1, w, Duration::ZERO).is_ok());
        assert!(l.admit("g", "a", ":bc", 1, w, Duration::ZERO).is_ok());
        assert_eq!(l.tracked_keys(), 3);
    }

    #[test]
    fn log_never_exceeds_limit_entries() {
        let l = RateLimiter::new(10);
        let w = Duration::from_secs(60);
        let mut ok = 0;
        for i in 0..1000u64 {
            if l.admit("g", "p", "c", 5, w, Duration::from_millis(i))
                .is_ok()
            {
                ok += 1;
            }
        }
        assert_eq!(ok, 5);
        let st = l.state.lock().unwrap();
        let slot = st.slots.values().next().unwrap();
        match &slot.window {
            Window::Log(log) => assert_eq!(log.len(), 5),
            Window::Pair { .. } => panic!("expected log"),
        }
    }

    #[test]
    fn large_limits_use_constant_space_counter() {
        let l = RateLimiter::new(10);
        let w = Duration::from_secs(10);
        let limit = 5_000;
        let mut ok = 0u64;
        // 10 000 attempts within the first window: exactly `limit` admitted.
        for i in 0..10_000u64 {
            if l.admit("g", "p", "c", limit, w, Duration::from_micros(i))
                .is_ok()
            {
                ok += 1;
            }
        }
        assert_eq!(ok, limit);
        // Half-way through the next window, about half of the previous window's weight remains.
        let mut ok2 = 0u64;
        for i in 0..10_000u64 {
            if l.admit(
                "g",
                "p",
                "c",
                limit,
                w,
                Duration::from_secs(15) + Duration::from_micros(i),
            )
            .is_ok()
            {
                ok2 += 1;
            }
        }
        assert!((2_400..=2_600).contains(&ok2), "{ok2}");
        // Two windows later everything is forgotten.
        assert!(
            l.admit("g", "p", "c", limit, w, Duration::from_secs(40))
                .is_ok()
        );
    }

    #[test]
    fn key_count_is_bounded_and_idle_keys_are_swept() {
        let l = RateLimiter::new(4);
        let w = Duration::from_secs(1);
        for i in 0..4 {
            assert!(
                l.admit("g", &format!("p{i}"), "c", 10, w, Duration::ZERO)
                    .is_ok()
            );
        }
        // full of live keys: a fifth is refused, nobody's window is evicted
        assert_eq!(
            l.admit("g", "p4", "c", 10, w, Duration::from_millis(500)),
            Err(Refusal::AtCapacity)
        );
        assert!(
            l.admit("g", "p0", "c", 10, w, Duration::from_millis(500))
                .is_ok()
        );
        // later all but p0 are idle: the sweep frees them
        assert!(
            l.admit("g", "p4", "c", 10, w, Duration::from_millis(1_200))
                .is_ok()
        );
        assert_eq!(l.tracked_keys(), 2);
    }
}
