//! The trace store: the bounded audit trail of invocations, its look-ups by
//! action id and by OpenTelemetry trace id, and its JSON Lines export and import.
//!
//! # Correlation
//! An [`ActionTrace`] recorded under a live `agent_kernel.invoke` span carries
//! that span's W3C trace id and span id. [`TraceStore::by_trace_id`] answers
//! "which invocations belong to this distributed trace" (all of them, in the
//! order they were recorded) and [`TraceStore::trace_id_of`] answers "which trace
//! do I open in the backend for this action id". Both are served from indexes
//! kept in step with eviction, so they never hold more than `capacity` records.
//!
//! # JSON Lines, version 1
//! [`TraceStore::export_jsonl`] writes one JSON object per line and
//! [`TraceStore::import_jsonl`] reads them back; [`read_jsonl`] streams them
//! without a store. Every record carries `"v": 1`. The fields:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `v` | integer | format version, always `1` |
//! | `action_id`, `capability_id`, `principal_id`, `token_id` | string | as in [`ActionTrace`] |
//! | `invoked_at_ms` | integer | start, milliseconds since the Unix epoch (UTC) |
//! | `args` | object | the argument values as the store keeps them (see below) |
//! | `requested_mode`, `response_mode` | string | `summary`, `table`, `handle_only`, `raw` |
//! | `driver_id` | string | `""` when no driver produced a result |
//! | `handle_id`, `session_id`, `error` | string or null | |
//! | `denial_category` | string or null | `missing_role`, `rate_limited`, … |
//! | `outcome` | string | `success`, `denied`, `driver_error`, `cancelled` |
//! | `duration_ns` | integer or null | wall time of the invocation, in nanoseconds |
//! | `trace_id`, `span_id` | string or null | W3C hex (32 and 16 lowercase digits) |
//!
//! The export is the audit trail, the source of truth, so it is lossless: it
//! carries the argument values as the store keeps them — redacted by default
//! (values under sensitive field names, recognised secrets), verbatim for a
//! store built [`with_raw_arguments`](TraceStore::with_raw_arguments). Free
//! text the redactor cannot recognise stays: protect the file like the data
//! it names. (The OpenTelemetry bridge, by contrast, never emits an argument
//! value: only the keys.)
//!
//! Compatibility: a reader of version 1 ignores keys it does not know, so
//! optional keys may be added within version 1; removing a key or changing its
//! meaning makes version 2. A record whose `v` is not `1` is an error for that
//! line.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque, hash_map};
use std::fmt;
use std::io::{self, BufRead, Write};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::error::{DenialCategory, KernelError, Result};
use crate::firewall::Redactor;
use crate::time::Timestamp;
use crate::types::{ActionTrace, Args, ResponseMode, TraceOutcome};

/// Default number of traces kept.
pub const DEFAULT_TRACE_CAPACITY: usize = 10_000;

/// The version of the JSON Lines format written by [`TraceStore::export_jsonl`]
/// and the only one [`TraceStore::import_jsonl`] accepts.
pub const JSONL_VERSION: u32 = 1;

/// Longest line [`read_jsonl`] accepts (16 MiB); a longer line is an error for
/// that line, and is skipped without being held in memory.
pub const MAX_JSONL_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Whether `s` is a valid W3C trace id: 32 lowercase hex digits, not all zero.
///
/// ```
/// assert!(agent_kernel::trace::is_w3c_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
/// assert!(!agent_kernel::trace::is_w3c_trace_id("00000000000000000000000000000000"));
/// assert!(!agent_kernel::trace::is_w3c_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"));
/// ```
pub fn is_w3c_trace_id(s: &str) -> bool {
    is_lower_hex_id(s, 32)
}

/// Whether `s` is a valid W3C span (parent) id: 16 lowercase hex digits, not all zero.
pub fn is_w3c_span_id(s: &str) -> bool {
    is_lower_hex_id(s, 16)
}

fn is_lower_hex_id(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && s.bytes().any(|b| b != b'0')
}

/// One stored trace and its insertion number.
#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    trace: Arc<ActionTrace>,
    /// The trace-id index key, computed once when recorded.
    key: Option<TraceKey>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Action id → insertion number of its entry in `order`.
    by_id: HashMap<String, u64>,
    /// OpenTelemetry trace id → the insertion numbers of the entries under it.
    by_trace: HashMap<TraceKey, Group>,
    /// Entries oldest first; their insertion numbers are consecutive.
    order: VecDeque<Entry>,
    next_seq: u64,
    evicted: u64,
    recorded: u64,
}

impl Inner {
    fn index_of(&self, seq: u64) -> Option<usize> {
        let front = self.order.front()?.seq;
        usize::try_from(seq.checked_sub(front)?).ok()
    }

    fn unindex_trace(&mut self, seq: u64, key: Option<&TraceKey>) {
        let Some(key) = key else {
            return;
        };
        let now_empty = match self.by_trace.get_mut(key) {
            Some(Group::One(s)) => *s == seq,
            Some(Group::Many(seqs)) => {
                seqs.remove(&seq);
                seqs.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.by_trace.remove(key);
        }
    }

    fn index_trace(&mut self, seq: u64, key: Option<&TraceKey>) {
        let Some(key) = key.cloned() else {
            return;
        };
        match self.by_trace.entry(key) {
            hash_map::Entry::Vacant(v) => {
                v.insert(Group::One(seq));
            }
            hash_map::Entry::Occupied(mut o) => {
                let group = o.get_mut();
                match group {
                    Group::One(first) => {
                        *group = Group::Many(BTreeSet::from([*first, seq]));
                    }
                    Group::Many(seqs) => {
                        seqs.insert(seq);
                    }
                }
            }
        }
    }
}

/// The index key of an OpenTelemetry trace id, compared case-insensitively.
/// A W3C id (32 hex digits, the only kind the kernel records) is kept as a
/// number: no allocation and a 16-byte hash per record. Anything else (a
/// record built or imported by hand) is kept lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TraceKey {
    W3c(u128),
    Other(String),
}

impl TraceKey {
    /// `None` for an empty id (not indexed).
    fn of(trace_id: &str) -> Option<TraceKey> {
        if trace_id.is_empty() {
            return None;
        }
        let mut bytes = [0u8; 16];
        if trace_id.len() == 32 && hex::decode_to_slice(trace_id, &mut bytes).is_ok() {
            return Some(TraceKey::W3c(u128::from_be_bytes(bytes)));
        }
        Some(TraceKey::Other(trace_id.to_ascii_lowercase()))
    }
}

/// The insertion numbers of the kept entries of one trace id. Almost every
/// trace holds one action, which needs no allocation.
#[derive(Debug)]
enum Group {
    One(u64),
    Many(BTreeSet<u64>),
}

impl Group {
    fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        let (one, many) = match self {
            Group::One(s) => (Some(*s), None),
            Group::Many(seqs) => (None, Some(seqs.iter().copied())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// Keeps [`ActionTrace`]s by action id, in insertion order, dropping the
/// oldest first once `capacity` is reached (the drops are counted), and
/// answers by OpenTelemetry trace id (see the [module docs](self)).
///
/// ```
/// use agent_kernel::TraceStore;
/// let store = TraceStore::with_capacity(2)?;
/// assert!(store.get("nope").is_err());
/// assert!(store.by_trace_id("4bf92f3577b34da6a3ce929d0e0e4736").is_empty());
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Debug)]
pub struct TraceStore {
    inner: Mutex<Inner>,
    capacity: usize,
    /// Whether arguments are kept as passed (else redacted on the way in).
    raw_arguments: bool,
}

impl Default for TraceStore {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: DEFAULT_TRACE_CAPACITY,
            raw_arguments: false,
        }
    }
}

/// Redacts the arguments of every record a store keeps (unless it keeps them
/// raw): values under sensitive field names, recognised secrets in strings and
/// keys, nesting beyond eight levels.
static ARGUMENT_REDACTOR: LazyLock<Redactor> = LazyLock::new(|| Redactor::new().with_max_depth(8));

/// Redacts `trace`'s arguments as every audit store does unless it keeps
/// them raw (see [`TraceStore::with_raw_arguments`]).
pub(crate) fn redact_arguments(trace: &mut ActionTrace) {
    if trace.args.is_empty() {
        return;
    }
    let args = Value::Object(std::mem::take(&mut trace.args));
    if let (Value::Object(redacted), _, _) = ARGUMENT_REDACTOR.redact_value(&args, None) {
        trace.args = redacted;
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
            raw_arguments: false,
        })
    }

    /// Keeps every record's arguments as the caller passed them. By default a
    /// store redacts them as it records (the firewall's redaction: sensitive
    /// field names, e-mail addresses, card numbers, credentials…), because
    /// arguments are the agent's text and the audit trail is read by people
    /// and exported; switch this on only where the audit store is as
    /// protected as the tools' own data.
    #[must_use]
    pub fn with_raw_arguments(mut self) -> Self {
        self.raw_arguments = true;
        self
    }

    /// Whether arguments are kept raw ([`with_raw_arguments`](Self::with_raw_arguments)).
    pub fn keeps_raw_arguments(&self) -> bool {
        self.raw_arguments
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a trace. A trace with an action id already present replaces it
    /// in place (it keeps its position in the eviction order, and moves to its
    /// new trace id's group if the trace id changed).
    pub fn record(&self, mut trace: ActionTrace) -> Arc<ActionTrace> {
        if !self.raw_arguments {
            redact_arguments(&mut trace);
        }
        let trace = Arc::new(trace);
        // Computed once, outside the lock; kept with the entry for eviction.
        let key = trace.trace_id.as_deref().and_then(TraceKey::of);
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.recorded += 1;
        if let Some(&seq) = inner.by_id.get(&trace.action_id) {
            if let Some(idx) = inner.index_of(seq) {
                if let Some(entry) = inner.order.get_mut(idx) {
                    entry.trace = Arc::clone(&trace);
                    let old_key = std::mem::replace(&mut entry.key, key.clone());
                    inner.unindex_trace(seq, old_key.as_ref());
                    inner.index_trace(seq, key.as_ref());
                    return trace;
                }
            }
            // Unreachable while the indexes are in step; recover by re-inserting.
            inner.by_id.remove(&trace.action_id);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.by_id.insert(trace.action_id.clone(), seq);
        inner.index_trace(seq, key.as_ref());
        inner.order.push_back(Entry {
            seq,
            trace: Arc::clone(&trace),
            key,
        });
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.by_id.remove(&oldest.trace.action_id);
                inner.unindex_trace(oldest.seq, oldest.key.as_ref());
                inner.evicted += 1;
            }
        }
        trace
    }

    /// The trace of `action_id`.
    pub fn get(&self, action_id: &str) -> Result<Arc<ActionTrace>> {
        let inner = self.lock();
        inner
            .by_id
            .get(action_id)
            .and_then(|&seq| inner.index_of(seq))
            .and_then(|idx| inner.order.get(idx))
            .map(|e| Arc::clone(&e.trace))
            .ok_or_else(|| KernelError::TraceNotFound {
                action_id: action_id.to_owned(),
            })
    }

    /// All kept traces, oldest first.
    pub fn list_all(&self) -> Vec<Arc<ActionTrace>> {
        self.lock()
            .order
            .iter()
            .map(|e| Arc::clone(&e.trace))
            .collect()
    }

    /// All kept actions of the OpenTelemetry trace `trace_id` (W3C hex; compared
    /// case-insensitively), in the order they were recorded. Served from an
    /// index, not a scan; empty when none is kept.
    pub fn by_trace_id(&self, trace_id: &str) -> Vec<Arc<ActionTrace>> {
        let Some(key) = TraceKey::of(trace_id) else {
            return Vec::new();
        };
        let inner = self.lock();
        let Some(group) = inner.by_trace.get(&key) else {
            return Vec::new();
        };
        group
            .seqs()
            .filter_map(|seq| inner.index_of(seq))
            .filter_map(|idx| inner.order.get(idx))
            .map(|e| Arc::clone(&e.trace))
            .collect()
    }

    /// The same as [`by_trace_id`](Self::by_trace_id).
    pub fn find_by_trace_id(&self, trace_id: &str) -> Vec<Arc<ActionTrace>> {
        self.by_trace_id(trace_id)
    }

    /// The OpenTelemetry trace id of the action `action_id`, when it is kept
    /// and was recorded under a live span.
    pub fn trace_id_of(&self, action_id: &str) -> Option<String> {
        self.get(action_id).ok()?.trace_id.clone()
    }

    /// Number of distinct OpenTelemetry trace ids among the kept traces (at most [`len`](Self::len)).
    pub fn trace_id_count(&self) -> usize {
        self.lock().by_trace.len()
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

    /// How many traces were dropped, oldest first, to stay within capacity.
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
    }

    /// Removes the oldest records while more than `keep` are kept, or while
    /// the oldest was invoked before `before` (when given); returns how many
    /// were removed (not counted as [`evicted`](Self::evicted): this is
    /// retention the application asked for).
    pub fn remove_oldest(&self, keep: usize, before: Option<Timestamp>) -> u64 {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut removed = 0;
        while let Some(oldest) = inner.order.front() {
            let too_many = inner.order.len() > keep;
            let too_old = before.is_some_and(|b| oldest.trace.invoked_at < b);
            if !(too_many || too_old) {
                break;
            }
            if let Some(oldest) = inner.order.pop_front() {
                inner.by_id.remove(&oldest.trace.action_id);
                inner.unindex_trace(oldest.seq, oldest.key.as_ref());
                removed += 1;
            }
        }
        removed
    }

    /// How many traces were ever recorded (replacements included).
    pub fn recorded(&self) -> u64 {
        self.lock().recorded
    }

    /// Writes every kept trace, oldest first, as JSON Lines version 1 (see the
    /// [module docs](self); argument values included, as the store keeps
    /// them). Returns the number
    /// of records written. The store is not locked while writing.
    pub fn export_jsonl(&self, mut writer: impl Write) -> io::Result<usize> {
        let traces = self.list_all();
        for trace in &traces {
            write_jsonl_record(trace, &mut writer)?;
        }
        writer.flush()?;
        Ok(traces.len())
    }

    /// Reads JSON Lines version 1 and records every valid record (subject to
    /// capacity, like [`record`](Self::record)). A malformed, truncated,
    /// over-long or wrong-version line is reported with its 1-based line number
    /// and skipped; every good line is kept. Blank lines are ignored. An I/O
    /// error ends the import and is reported as the last error.
    pub fn import_jsonl(&self, reader: impl BufRead) -> ImportReport {
        let mut report = ImportReport::default();
        for item in read_jsonl(reader) {
            match item {
                Ok(trace) => {
                    self.record(trace);
                    report.imported += 1;
                }
                Err(err) => report.errors.push(err),
            }
        }
        report
    }
}

// ── JSON Lines ──────────────────────────────────────────────────────────────

/// What [`TraceStore::import_jsonl`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Records recorded into the store.
    pub imported: usize,
    /// One entry per line that could not be imported, in line order.
    pub errors: Vec<LineError>,
}

impl ImportReport {
    /// Whether every non-blank line was imported.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A line of a JSON Lines import that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// The version-1 record, borrowed for writing.
#[derive(Serialize)]
struct RecordOut<'a> {
    v: u32,
    action_id: &'a str,
    capability_id: &'a str,
    principal_id: &'a str,
    token_id: &'a str,
    invoked_at_ms: u64,
    args: &'a Args,
    requested_mode: ResponseMode,
    response_mode: ResponseMode,
    driver_id: &'a str,
    handle_id: Option<&'a str>,
    session_id: Option<&'a str>,
    error: Option<&'a str>,
    denial_category: Option<DenialCategory>,
    outcome: TraceOutcome,
    duration_ns: Option<u128>,
    trace_id: Option<&'a str>,
    span_id: Option<&'a str>,
}

/// Just the version of a record; anything but a JSON object is refused.
struct VersionProbe {
    v: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for VersionProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = VersionProbe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<VersionProbe, A::Error> {
                let mut v = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "v" {
                        v = Some(map.next_value::<serde_json::Value>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(VersionProbe { v })
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The version-1 record, owned for reading (after `v` was checked).
#[derive(Deserialize)]
struct RecordIn {
    action_id: String,
    capability_id: String,
    principal_id: String,
    token_id: String,
    invoked_at_ms: u64,
    args: Args,
    requested_mode: ResponseMode,
    response_mode: ResponseMode,
    driver_id: String,
    #[serde(default)]
    handle_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    denial_category: Option<DenialCategory>,
    outcome: TraceOutcome,
    #[serde(default)]
    duration_ns: Option<u128>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    span_id: Option<String>,
}

/// Writes one trace as a JSON Lines version-1 record (one line, `\n`-terminated),
/// for applications that stream the audit trail as it is recorded.
pub fn write_jsonl_record(trace: &ActionTrace, mut writer: impl Write) -> io::Result<()> {
    let record = RecordOut {
        v: JSONL_VERSION,
        action_id: &trace.action_id,
        capability_id: &trace.capability_id,
        principal_id: &trace.principal_id,
        token_id: &trace.token_id,
        invoked_at_ms: trace.invoked_at.as_millis(),
        args: &trace.args,
        requested_mode: trace.requested_mode,
        response_mode: trace.response_mode,
        driver_id: &trace.driver_id,
        handle_id: trace.handle_id.as_deref(),
        session_id: trace.session_id.as_deref(),
        error: trace.error.as_deref(),
        denial_category: trace.denial_category,
        outcome: trace.outcome,
        duration_ns: trace.duration.map(|d| d.as_nanos()),
        trace_id: trace.trace_id.as_deref(),
        span_id: trace.span_id.as_deref(),
    };
    serde_json::to_writer(&mut writer, &record).map_err(io::Error::other)?;
    writer.write_all(b"\n")
}

/// Parses one JSON Lines version-1 record (without its line break).
pub fn parse_jsonl_record(line: &str) -> std::result::Result<ActionTrace, String> {
    // The version first (a probe that ignores every other key), so that a
    // record of another version is reported as such, not as a shape error.
    let probe: VersionProbe = serde_json::from_str(line).map_err(|e| {
        if e.is_eof() {
            format!(
                "truncated record (JSON ends early at column {})",
                e.column()
            )
        } else if e.is_syntax() {
            format!("malformed JSON at column {}: {e}", e.column())
        } else {
            "a record must be a JSON object".to_owned()
        }
    })?;
    match probe.v {
        None => return Err("missing format version \"v\"".to_owned()),
        Some(v) if v.as_u64() == Some(u64::from(JSONL_VERSION)) => {}
        Some(v) => {
            return Err(format!(
                "unsupported format version {v} (this build reads version {JSONL_VERSION})"
            ));
        }
    }
    let r: RecordIn = serde_json::from_str(line)
        .map_err(|e| format!("invalid version-{JSONL_VERSION} record: {e}"))?;
    for (name, id, valid) in [
        ("trace_id", &r.trace_id, is_w3c_trace_id as fn(&str) -> bool),
        ("span_id", &r.span_id, is_w3c_span_id),
    ] {
        if let Some(id) = id {
            if !valid(id) {
                return Err(format!(
                    "\"{name}\" is not a W3C id (lowercase hex, not all zero)"
                ));
            }
        }
    }
    let duration = match r.duration_ns {
        None => None,
        Some(ns) => Some(duration_from_nanos(ns).ok_or_else(|| {
            "\"duration_ns\" is larger than the longest representable duration".to_owned()
        })?),
    };
    Ok(ActionTrace {
        action_id: r.action_id,
        capability_id: r.capability_id,
        principal_id: r.principal_id,
        token_id: r.token_id,
        invoked_at: Timestamp::from_millis(r.invoked_at_ms),
        args: r.args,
        requested_mode: r.requested_mode,
        response_mode: r.response_mode,
        driver_id: r.driver_id,
        handle_id: r.handle_id,
        session_id: r.session_id,
        error: r.error,
        denial_category: r.denial_category,
        outcome: r.outcome,
        duration,
        trace_id: r.trace_id,
        span_id: r.span_id,
    })
}

fn duration_from_nanos(ns: u128) -> Option<Duration> {
    let secs = u64::try_from(ns / 1_000_000_000).ok()?;
    let nanos = u32::try_from(ns % 1_000_000_000).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Streams the records of a JSON Lines version-1 reader, one item per
/// non-blank line: the trace, or a [`LineError`] naming the line. Lines longer
/// than [`MAX_JSONL_LINE_BYTES`] are errors and are never held whole in
/// memory. An I/O error is the last item.
pub fn read_jsonl<R: BufRead>(reader: R) -> JsonlRecords<R> {
    JsonlRecords {
        reader,
        line: 0,
        done: false,
        buf: Vec::new(),
    }
}

/// The iterator returned by [`read_jsonl`].
#[derive(Debug)]
pub struct JsonlRecords<R> {
    reader: R,
    line: usize,
    done: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> JsonlRecords<R> {
    /// Reads the next line into `buf`, capped. Returns `Ok(None)` at end of
    /// input, `Ok(Some(too_long))` otherwise.
    fn next_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > MAX_JSONL_LINE_BYTES {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.reader.consume(if end { take + 1 } else { take });
            if end {
                return Ok(Some(too_long));
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonlRecords<R> {
    type Item = std::result::Result<ActionTrace, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let read = self.next_line();
            self.line += 1;
            let line = self.line;
            let err = |message: String| Some(Err(LineError { line, message }));
            match read {
                Err(e) => {
                    self.done = true;
                    return err(format!("read error, import stopped: {e}"));
                }
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(true)) => {
                    return err(format!(
                        "line longer than {MAX_JSONL_LINE_BYTES} bytes, skipped"
                    ));
                }
                Ok(Some(false)) => {}
            }
            let bytes = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
            let Ok(text) = std::str::from_utf8(bytes) else {
                return err("not valid UTF-8".to_owned());
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(parse_jsonl_record(text).map_err(|message| LineError { line, message }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(s.by_trace_id("tr-a0").is_empty());
        assert_eq!(s.trace_id_count(), 3);
        assert!(TraceStore::with_capacity(0).is_err());
    }

    #[test]
    fn re_recording_replaces_in_place() {
        let s = TraceStore::new();
        s.record(trace("x"));
        s.record(trace("y"));
        let mut t = trace("x");
        t.error = Some("late".into());
        t.trace_id = Some("tr-y".into());
        s.record(t);
        assert_eq!(s.len(), 2);
        let all = s.list_all();
        assert_eq!(all[0].error.as_deref(), Some("late"));
        assert_eq!(all[1].action_id, "y");
        assert!(s.by_trace_id("tr-x").is_empty());
        let group: Vec<_> = s
            .by_trace_id("TR-Y")
            .iter()
            .map(|t| t.action_id.clone())
            .collect();
        assert_eq!(group, vec!["x", "y"]);
    }

    #[test]
    fn line_reader_caps_and_numbers_lines() {
        let input = b"\n{\"v\":1}\r\n   \nnot json".to_vec();
        let items: Vec<_> = read_jsonl(&input[..]).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap_err().line, 2);
        assert_eq!(items[1].as_ref().unwrap_err().line, 4);
        assert!(duration_from_nanos(u128::MAX).is_none());
        assert_eq!(
            duration_from_nanos(1_500_000_001),
            Some(Duration::new(1, 500_000_001))
        );
    }
}
