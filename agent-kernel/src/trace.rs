//! The trace store: the bounded audit trail of invocations.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{KernelError, Result};
use crate::types::ActionTrace;

/// Default number of traces kept.
pub const DEFAULT_TRACE_CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Arc<ActionTrace>>,
    order: VecDeque<Arc<ActionTrace>>,
    evicted: u64,
    recorded: u64,
}

/// Keeps [`ActionTrace`]s by action id, in insertion order, dropping the
/// oldest first once `capacity` is reached (the drops are counted).
///
/// ```
/// use agent_kernel::TraceStore;
/// let store = TraceStore::with_capacity(2)?;
/// assert!(store.get("nope").is_err());
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Debug)]
pub struct TraceStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Default for TraceStore {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: DEFAULT_TRACE_CAPACITY,
        }
    }
}

impl TraceStore {
    /// A store keeping 10 000 traces.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store keeping `capacity` traces (≥ 1).
    pub fn with_capacity(capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(KernelError::invalid_config(
                "trace store capacity must be >= 1, got 0",
            ));
        }
        Ok(Self {
            inner: Mutex::new(Inner::default()),
            capacity,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a trace. A trace with an action id already present replaces it in place.
    pub fn record(&self, trace: ActionTrace) -> Arc<ActionTrace> {
        let trace = Arc::new(trace);
        let mut inner = self.lock();
        inner.recorded += 1;
        if let Some(old) = inner
            .by_id
            .insert(trace.action_id.clone(), Arc::clone(&trace))
        {
            if let Some(slot) = inner.order.iter_mut().find(|t| Arc::ptr_eq(t, &old)) {
                *slot = Arc::clone(&trace);
            }
            return trace;
        }
        inner.order.push_back(Arc::clone(&trace));
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.by_id.remove(&oldest.action_id);
                inner.evicted += 1;
            }
        }
        trace
    }

    /// The trace of `action_id`.
    pub fn get(&self, action_id: &str) -> Result<Arc<ActionTrace>> {
        self.lock()
            .by_id
            .get(action_id)
            .cloned()
            .ok_or_else(|| KernelError::TraceNotFound {
                action_id: action_id.to_owned(),
            })
    }

    /// All kept traces, oldest first.
    pub fn list_all(&self) -> Vec<Arc<ActionTrace>> {
        self.lock().order.iter().cloned().collect()
    }

    /// The traces recorded under the OpenTelemetry trace `trace_id`, oldest first.
    pub fn find_by_trace_id(&self, trace_id: &str) -> Vec<Arc<ActionTrace>> {
        self.lock()
            .order
            .iter()
            .filter(|t| t.trace_id.as_deref() == Some(trace_id))
            .cloned()
            .collect()
    }

    /// Number of traces kept.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Whether no trace is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many traces were dropped to stay within capacity.
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
    }

    /// How many traces were ever recorded.
    pub fn recorded(&self) -> u64 {
        self.lock().recorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;
    use crate::types::{Args, ResponseMode, TraceOutcome};

    fn trace(id: &str) -> ActionTrace {
        ActionTrace {
            action_id: id.to_owned(),
            capability_id: "cap".into(),
            principal_id: "u".into(),
            token_id: "t".into(),
            invoked_at: Timestamp::from_millis(0),
            args: Args::new(),
            requested_mode: ResponseMode::Summary,
            response_mode: ResponseMode::Summary,
            driver_id: "d".into(),
            handle_id: None,
            session_id: None,
            error: None,
            denial_category: None,
            outcome: TraceOutcome::Success,
            duration: None,
            trace_id: Some(format!("tr-{id}")),
            span_id: None,
        }
    }

    #[test]
    fn bounded_oldest_first_and_counted() {
        let s = TraceStore::with_capacity(3).unwrap();
        for i in 0..5 {
            s.record(trace(&format!("a{i}")));
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.evicted(), 2);
        assert_eq!(s.recorded(), 5);
        let ids: Vec<String> = s.list_all().iter().map(|t| t.action_id.clone()).collect();
        assert_eq!(ids, vec!["a2", "a3", "a4"]);
        let err = s.get("a0").unwrap_err();
        assert_eq!(err.kind(), "trace_not_found");
        assert!(err.to_string().contains("a0"));
        assert_eq!(s.get("a4").unwrap().action_id, "a4");
        assert_eq!(s.find_by_trace_id("tr-a3").len(), 1);
        assert!(TraceStore::with_capacity(0).is_err());
    }

    #[test]
    fn re_recording_replaces_in_place() {
        let s = TraceStore::new();
        s.record(trace("x"));
        s.record(trace("y"));
        let mut t = trace("x");
        t.error = Some("late".into());
        s.record(t);
        assert_eq!(s.len(), 2);
        let all = s.list_all();
        assert_eq!(all[0].error.as_deref(), Some("late"));
        assert_eq!(all[1].action_id, "y");
    }
}
