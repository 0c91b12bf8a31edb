//! Session budgets: cumulative token use across invocations, with response-mode
//! escalation as a session's budget shrinks.
//!
//! Before the driver runs the kernel [`allocate`](BudgetManager::allocate)s a
//! slice of the session's remaining budget; after the firewall it
//! [`record_usage`](BudgetManager::record_usage)s the frame's counted size; when
//! the invocation fails the reservation is released (dropping a [`Reservation`]
//! releases it too, so a cancelled invocation never leaks budget).
//!
//! The number of live sessions is bounded; when full, the oldest session is
//! forgotten (its budget starts afresh if it returns). Session budgets bound
//! what a session's frames cost the model's context; they are not a security
//! boundary (a caller picks its session id).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{KernelError, Result};
use crate::types::{Frame, Handle, ResponseMode};

/// Default total budget per session, in tokens.
pub const DEFAULT_TOTAL_BUDGET: u64 = 100_000;
/// Default reservation per invocation, in tokens.
pub const DEFAULT_REQUEST: u64 = 4_000;
/// Default maximum number of live sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// The model-facing part of a frame, as counted against a budget.
#[derive(Debug, Clone, Copy)]
pub enum FramePayload<'a> {
    /// Summary facts.
    Facts(&'a [String]),
    /// Table rows.
    Table(&'a [Map<String, Value>]),
    /// Raw data.
    Raw(&'a Value),
    /// A handle-only frame's handle: what the model receives instead of data
    /// costs too, so that a session cannot go on forever on handles.
    Handle(&'a Handle),
    /// Nothing (a frame with no payload and no handle).
    Nothing,
}

impl<'a> FramePayload<'a> {
    /// The payload of `frame` for its response mode.
    pub fn of(frame: &'a Frame) -> Self {
        match frame.response_mode {
            ResponseMode::Summary => Self::Facts(&frame.facts),
            ResponseMode::Table => Self::Table(&frame.table_preview),
            ResponseMode::HandleOnly => frame.handle.as_ref().map_or(Self::Nothing, Self::Handle),
            ResponseMode::Raw => frame.raw_data.as_ref().map_or(Self::Nothing, Self::Raw),
        }
    }

    /// Characters of the payload's compact JSON form, counted without building it.
    pub fn serialized_chars(&self) -> usize {
        let mut sink = CharCounter(0);
        let written = match self {
            Self::Facts(f) => serde_json::to_writer(&mut sink, f),
            Self::Table(t) => serde_json::to_writer(&mut sink, t),
            Self::Raw(v) => serde_json::to_writer(&mut sink, v),
            Self::Handle(h) => serde_json::to_writer(&mut sink, h),
            Self::Nothing => return 0,
        };
        // The sink never fails; a serialisation error cannot occur for JSON values.
        if written.is_err() {
            return 0;
        }
        sink.0
    }
}

/// Counts UTF-8 characters written to it.
struct CharCounter(usize);

impl io::Write for CharCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.iter().filter(|&&b| (b & 0xC0) != 0x80).count();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Approximates the token cost of a frame's payload. Must be deterministic.
pub trait TokenCounter: Send + Sync + fmt::Debug {
    /// Tokens `payload` costs.
    fn count(&self, payload: &FramePayload<'_>) -> u64;
}

/// The default counter: serialised characters / 4.
#[derive(Debug, Clone, Copy, Default)]
pub struct CharsOverFour;

impl TokenCounter for CharsOverFour {
    fn count(&self, payload: &FramePayload<'_>) -> u64 {
        (payload.serialized_chars() / 4) as u64
    }
}

/// Settings of a [`BudgetManager`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Total budget per session (> 0; default 100 000).
    pub total_budget: u64,
    /// Tokens reserved per invocation (> 0; default 4 000).
    pub default_request: u64,
    /// Live sessions kept at most (≥ 1; default 10 000).
    pub max_sessions: usize,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            total_budget: DEFAULT_TOTAL_BUDGET,
            default_request: DEFAULT_REQUEST,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// One session's standing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionUsage {
    /// The session id.
    pub session_id: String,
    /// The session's total budget.
    pub total: u64,
    /// Tokens committed.
    pub used: u64,
    /// Tokens reserved by in-flight invocations.
    pub reserved: u64,
    /// `total - used - reserved`, floored at zero.
    pub remaining: u64,
}

#[derive(Debug, Clone, Copy)]
struct SessionState {
    used: u64,
    reserved: u64,
    generation: u64,
}

#[derive(Debug, Default)]
struct Sessions {
    map: HashMap<String, SessionState>,
    order: VecDeque<(String, u64)>,
    next_generation: u64,
}

impl Sessions {
    fn release(&mut self, session_id: &str, generation: u64, amount: u64) {
        if let Some(s) = self.map.get_mut(session_id) {
            if s.generation == generation {
                s.reserved = s.reserved.saturating_sub(amount);
            }
        }
    }
}

/// A slice of a session's budget held by an in-flight invocation. Dropping it
/// without [`BudgetManager::record_usage`] releases it.
#[must_use = "dropping a reservation releases it"]
pub struct Reservation {
    session_id: String,
    amount: u64,
    generation: u64,
    sessions: Arc<Mutex<Sessions>>,
    settled: bool,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("session_id", &self.session_id)
            .field("amount", &self.amount)
            .finish()
    }
}

impl Reservation {
    /// The session charged.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Tokens reserved.
    pub fn amount(&self) -> u64 {
        self.amount
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            let mut s = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            s.release(&self.session_id, self.generation, self.amount);
        }
    }
}

/// Tracks each session's cumulative token use (see the [module docs](self)).
///
/// ```
/// use agent_kernel::{BudgetConfig, BudgetManager, ResponseMode};
/// let b = BudgetManager::with_config(BudgetConfig { total_budget: 1_000, ..BudgetConfig::default() })?;
/// let r = b.allocate("s1", Some(100))?;
/// assert_eq!(b.remaining("s1"), 900);
/// b.record_usage(r, 600);
/// assert_eq!(b.remaining("s1"), 400);
/// assert_eq!(b.suggested_mode("s1", ResponseMode::Raw), ResponseMode::Table);
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BudgetManager {
    config: BudgetConfig,
    counter: Arc<dyn TokenCounter>,
    sessions: Arc<Mutex<Sessions>>,
}

impl Default for BudgetManager {
    fn default() -> Self {
        Self {
            config: BudgetConfig::default(),
            counter: Arc::new(CharsOverFour),
            sessions: Arc::new(Mutex::new(Sessions::default())),
        }
    }
}

impl BudgetManager {
    /// A manager with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A manager with `config`; zero totals, requests or session caps are refused.
    pub fn with_config(config: BudgetConfig) -> Result<Self> {
        if config.total_budget == 0 {
            return Err(KernelError::invalid_config(
                "total_budget must be positive, got 0",
            ));
        }
        if config.default_request == 0 {
            return Err(KernelError::invalid_config(
                "default_request must be positive, got 0",
            ));
        }
        if config.max_sessions == 0 {
            return Err(KernelError::invalid_config(
                "max_sessions must be >= 1, got 0",
            ));
        }
        Ok(Self {
            config,
            ..Self::default()
        })
    }

    /// Uses `counter` to count frame payloads.
    #[must_use]
    pub fn with_counter(mut self, counter: Arc<dyn TokenCounter>) -> Self {
        self.counter = counter;
        self
    }

    /// The settings.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remaining_of(&self, s: &SessionState) -> u64 {
        self.config
            .total_budget
            .saturating_sub(s.used)
            .saturating_sub(s.reserved)
    }

    /// Reserves `requested` tokens (default: the configured request), or what is
    /// left if less, for an upcoming invocation of `session_id`.
    /// Fails with [`KernelError::BudgetExhausted`] when nothing remains.
    pub fn allocate(&self, session_id: &str, requested: Option<u64>) -> Result<Reservation> {
        let want = requested.unwrap_or(self.config.default_request);
        let mut guard = self.lock();
        let sessions = &mut *guard;
        if !sessions.map.contains_key(session_id) {
            while sessions.map.len() >= self.config.max_sessions {
                match sessions.order.pop_front() {
                    Some((old, generation)) => {
                        if sessions
                            .map
                            .get(&old)
                            .is_some_and(|s| s.generation == generation)
                        {
                            sessions.map.remove(&old);
                        }
                    }
                    None => break,
                }
            }
            if sessions.order.len() > 2 * self.config.max_sessions + 16 {
                let Sessions { map, order, .. } = &mut *sessions;
                order.retain(|(id, g)| map.get(id).is_some_and(|s| s.generation == *g));
            }
            sessions.next_generation += 1;
            let generation = sessions.next_generation;
            sessions.map.insert(
                session_id.to_owned(),
                SessionState {
                    used: 0,
                    reserved: 0,
                    generation,
                },
            );
            sessions
                .order
                .push_back((session_id.to_owned(), generation));
        }
        let Some(state) = sessions.map.get_mut(session_id) else {
            return Err(KernelError::invalid_argument(format!(
                "session '{session_id}' vanished"
            )));
        };
        let remaining = self
            .config
            .total_budget
            .saturating_sub(state.used)
            .saturating_sub(state.reserved);
        if remaining == 0 {
            return Err(KernelError::BudgetExhausted {
                session_id: session_id.to_owned(),
                used: state.used,
                total: self.config.total_budget,
            });
        }
        let granted = want.min(remaining);
        state.reserved += granted;
        Ok(Reservation {
            session_id: session_id.to_owned(),
            amount: granted,
            generation: state.generation,
            sessions: Arc::clone(&self.sessions),
            settled: false,
        })
    }

    /// Settles `reservation` with the `actual` tokens used (capped at the total).
    pub fn record_usage(&self, mut reservation: Reservation, actual: u64) {
        reservation.settled = true;
        let mut s = self.lock();
        if let Some(state) = s.map.get_mut(&reservation.session_id) {
            if state.generation == reservation.generation {
                state.reserved = state.reserved.saturating_sub(reservation.amount);
                state.used = state
                    .used
                    .saturating_add(actual)
                    .min(self.config.total_budget);
            }
        }
    }

    /// What `reservation`'s invocation may still cost: its reserved amount
    /// plus what the session has left beyond it. A frame that costs more is
    /// cut to fit or refused by the kernel, never charged past the total.
    pub fn available_to(&self, reservation: &Reservation) -> u64 {
        let s = self.lock();
        match s.map.get(&reservation.session_id) {
            Some(state) if state.generation == reservation.generation => {
                reservation.amount.saturating_add(self.remaining_of(state))
            }
            _ => reservation.amount,
        }
    }

    /// Releases `reservation` without recording use (the invocation failed).
    pub fn release(&self, reservation: Reservation) {
        drop(reservation);
    }

    /// Tokens `payload` costs, per the configured counter.
    pub fn count_tokens(&self, payload: &FramePayload<'_>) -> u64 {
        self.counter.count(payload)
    }

    /// What remains for `session_id` (the full budget for an unknown session).
    pub fn remaining(&self, session_id: &str) -> u64 {
        self.lock()
            .map
            .get(session_id)
            .map_or(self.config.total_budget, |s| self.remaining_of(s))
    }

    /// The standing of `session_id`, if it is live.
    pub fn usage(&self, session_id: &str) -> Option<SessionUsage> {
        self.lock().map.get(session_id).map(|s| SessionUsage {
            session_id: session_id.to_owned(),
            total: self.config.total_budget,
            used: s.used,
            reserved: s.reserved,
            remaining: self.remaining_of(s),
        })
    }

    /// Every live session's standing (what the `budget_consumed` gauge reports).
    pub fn sessions(&self) -> Vec<SessionUsage> {
        let s = self.lock();
        s.map
            .iter()
            .map(|(id, st)| SessionUsage {
                session_id: id.clone(),
                total: self.config.total_budget,
                used: st.used,
                reserved: st.reserved,
                remaining: self.remaining_of(st),
            })
            .collect()
    }

    /// Ends a session (it stops being reported); returns whether it was live.
    pub fn end_session(&self, session_id: &str) -> bool {
        self.lock().map.remove(session_id).is_some()
    }

    /// The mode to use for `requested` given what `session_id` has left:
    /// more than 50 % → as requested; 20–50 % → raw becomes table; 5–20 % → at
    /// most summary; under 5 % → handle_only. Boundaries fall in the stricter
    /// tier, and a stricter request is never relaxed.
    pub fn suggested_mode(&self, session_id: &str, requested: ResponseMode) -> ResponseMode {
        let remaining = self.remaining(session_id);
        suggest(remaining, self.config.total_budget, requested)
    }
}

fn suggest(remaining: u64, total: u64, requested: ResponseMode) -> ResponseMode {
    if total == 0 {
        return ResponseMode::HandleOnly;
    }
    // Integer comparisons of remaining/total against 5 %, 20 %, 50 %.
    let r = u128::from(remaining) * 100;
    let t = u128::from(total);
    if r < 5 * t {
        ResponseMode::HandleOnly
    } else if r <= 20 * t {
        requested.stricter(ResponseMode::Summary)
    } else if r <= 50 * t && requested == ResponseMode::Raw {
        ResponseMode::Table
    } else {
        requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mgr(total: u64) -> BudgetManager {
        BudgetManager::with_config(BudgetConfig {
            total_budget: total,
            ..BudgetConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn escalation_table() {
        use ResponseMode::*;
        let cases = [
            (51, Raw, Raw),
            (50, Raw, Table),
            (50, Summary, Summary),
            (21, Table, Table),
            (20, Raw, Summary),
            (20, Table, Summary),
            (20, HandleOnly, HandleOnly),
            (5, Table, Summary),
            (4, Summary, HandleOnly),
            (0, Raw, HandleOnly),
            (100, HandleOnly, HandleOnly),
            (100, Table, Table),
        ];
        for (pct, req, want) in cases {
            assert_eq!(suggest(pct, 100, req), want, "{pct}% {req:?}");
        }
    }

    #[test]
    fn allocate_record_release() {
        let b = mgr(1_000);
        assert_eq!(b.remaining("s"), 1_000);
        let r = b.allocate("s", None).unwrap();
        assert_eq!(r.amount(), 1_000, "capped at what remains");
        assert_eq!(b.remaining("s"), 0);
        b.release(r);
        assert_eq!(b.remaining("s"), 1_000);
        let r = b.allocate("s", Some(300)).unwrap();
        b.record_usage(r, 200);
        let u = b.usage("s").unwrap();
        assert_eq!((u.used, u.reserved, u.remaining), (200, 0, 800));
        {
            let _dropped = b.allocate("s", Some(100)).unwrap();
            assert_eq!(b.remaining("s"), 700);
        }
        assert_eq!(b.remaining("s"), 800, "dropping a reservation releases it");
        let r = b.allocate("s", Some(10)).unwrap();
        b.record_usage(r, 10_000);
        assert_eq!(b.usage("s").unwrap().used, 1_000, "capped at total");
        let err = b.allocate("s", None).unwrap_err();
        assert_eq!(err.kind(), "budget_exhausted");
        assert!(err.to_string().contains("'s'"));
        // sessions are independent
        assert!(b.allocate("other", None).is_ok());
    }

    #[test]
    fn sessions_are_bounded_and_can_end() {
        let b = BudgetManager::with_config(BudgetConfig {
            max_sessions: 3,
            ..BudgetConfig::default()
        })
        .unwrap();
        for i in 0..10 {
            let r = b.allocate(&format!("s{i}"), Some(1)).unwrap();
            b.record_usage(r, 1);
        }
        let mut live: Vec<String> = b.sessions().into_iter().map(|s| s.session_id).collect();
        live.sort();
        assert_eq!(live, vec!["s7", "s8", "s9"]);
        assert!(b.end_session("s8"));
        assert!(!b.end_session("s8"));
        assert_eq!(b.sessions().len(), 2);
        assert!(b.usage("s8").is_none());
        // a reservation for an ended-then-recreated session does not touch the new one
        let r = b.allocate("s9", Some(5)).unwrap();
        assert!(b.end_session("s9"));
        let fresh = b.allocate("s9", Some(1)).unwrap();
        drop(r);
        assert_eq!(b.usage("s9").unwrap().reserved, 1);
        drop(fresh);
    }

    #[test]
    fn invalid_config_refused() {
        for cfg in [
            BudgetConfig {
                total_budget: 0,
                ..BudgetConfig::default()
            },
            BudgetConfig {
                default_request: 0,
                ..BudgetConfig::default()
            },
            BudgetConfig {
                max_sessions: 0,
                ..BudgetConfig::default()
            },
        ] {
            assert_eq!(
                BudgetManager::with_config(cfg).unwrap_err().kind(),
                "invalid_config"
            );
        }
    }

    #[test]
    fn counter_is_chars_over_four() {
        let facts = vec!["abcd".to_owned(), "é".to_owned()];
        // ["abcd","é"] = 12 characters (13 bytes)
        assert_eq!(FramePayload::Facts(&facts).serialized_chars(), 12);
        assert_eq!(CharsOverFour.count(&FramePayload::Facts(&facts)), 3);
        assert_eq!(CharsOverFour.count(&FramePayload::Nothing), 0);
        let v = json!({"a": [1, 2]});
        assert_eq!(
            FramePayload::Raw(&v).serialized_chars(),
            r#"{"a":[1,2]}"#.len()
        );
    }
}
