//! TraceStore: counted oldest-first eviction, look-ups by trace id and by
//! action id kept in step with eviction, and the JSON Lines v1 export/import.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{self, BufReader, Read};
use std::time::Duration;

use agent_kernel::trace::{
    JSONL_VERSION, MAX_JSONL_LINE_BYTES, parse_jsonl_record, read_jsonl, write_jsonl_record,
};
use agent_kernel::{
    ActionTrace, Args, DenialCategory, ResponseMode, Timestamp, TraceOutcome, TraceStore,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_B: &str = "0af7651916cd43dd8448eb211c80319c";

fn trace(action_id: &str, trace_id: Option<&str>, n: u64) -> ActionTrace {
    let mut args = Args::new();
    args.insert("operation".into(), json!("list_invoices"));
    args.insert("email".into(), json!(format!("user{n}@example.com")));
    ActionTrace {
        action_id: action_id.to_owned(),
        capability_id: "billing.list_invoices".into(),
        principal_id: "analyst-001".into(),
        token_id: format!("tok-{n}"),
        invoked_at: Timestamp::from_millis(1_700_000_000_000 + n),
        args,
        requested_mode: ResponseMode::Raw,
        response_mode: ResponseMode::Summary,
        driver_id: "billing".into(),
        handle_id: Some(format!("h-{n}")),
        session_id: Some("s-1".into()),
        error: None,
        denial_category: None,
        outcome: TraceOutcome::Success,
        duration: Some(Duration::new(0, 1_234_567 + n as u32)),
        trace_id: trace_id.map(str::to_owned),
        span_id: trace_id.map(|_| format!("{:016x}", n + 1)),
    }
}

fn ids(traces: &[std::sync::Arc<ActionTrace>]) -> Vec<String> {
    traces.iter().map(|t| t.action_id.clone()).collect()
}

#[test]
fn eviction_is_oldest_first_and_counted() {
    let store = TraceStore::with_capacity(4).unwrap();
    for i in 0..10u64 {
        store.record(trace(&format!("a{i}"), None, i));
    }
    assert_eq!(store.len(), 4);
    assert_eq!(store.capacity(), 4);
    assert_eq!(store.evicted(), 6);
    assert_eq!(store.recorded(), 10);
    assert_eq!(ids(&store.list_all()), ["a6", "a7", "a8", "a9"]);
    assert!(store.get("a5").is_err());
    // Replacing in place neither evicts nor grows.
    store.record(trace("a6", Some(TRACE_A), 6));
    assert_eq!((store.len(), store.evicted()), (4, 6));
    assert_eq!(ids(&store.list_all()), ["a6", "a7", "a8", "a9"]);
}

#[test]
fn look_ups_both_ways() {
    let store = TraceStore::new();
    store.record(trace("a1", Some(TRACE_A), 1));
    store.record(trace("b1", Some(TRACE_B), 2));
    store.record(trace("a2", Some(TRACE_A), 3));
    store.record(trace("none", None, 4));
    assert_eq!(ids(&store.by_trace_id(TRACE_A)), ["a1", "a2"]);
    assert_eq!(
        ids(&store.by_trace_id(&TRACE_A.to_uppercase())),
        ["a1", "a2"]
    );
    assert_eq!(ids(&store.by_trace_id(TRACE_B)), ["b1"]);
    assert!(store.by_trace_id("").is_empty());
    assert!(
        store
            .by_trace_id("ffffffffffffffffffffffffffffffff")
            .is_empty()
    );
    assert_eq!(store.trace_id_of("a2").as_deref(), Some(TRACE_A));
    assert_eq!(store.trace_id_of("none"), None);
    assert_eq!(store.trace_id_of("missing"), None);
    assert_eq!(store.trace_id_count(), 2);
}

#[test]
fn look_ups_follow_eviction() {
    let store = TraceStore::with_capacity(3).unwrap();
    store.record(trace("a1", Some(TRACE_A), 1));
    store.record(trace("a2", Some(TRACE_A), 2));
    store.record(trace("b1", Some(TRACE_B), 3));
    store.record(trace("a3", Some(TRACE_A), 4)); // evicts a1
    assert_eq!(ids(&store.by_trace_id(TRACE_A)), ["a2", "a3"]);
    assert_eq!(store.trace_id_of("a1"), None);
    store.record(trace("x", None, 5)); // evicts a2
    store.record(trace("y", None, 6)); // evicts b1
    assert!(store.by_trace_id(TRACE_B).is_empty());
    assert_eq!(store.trace_id_count(), 1);
    assert_eq!(ids(&store.by_trace_id(TRACE_A)), ["a3"]);
    assert_eq!(store.evicted(), 3);
}

#[derive(Debug, Clone)]
enum Op {
    Record { action: u8, trace: Option<u8> },
}

fn op() -> impl Strategy<Value = Op> {
    (0u8..24, proptest::option::of(0u8..4)).prop_map(|(action, trace)| Op::Record { action, trace })
}

fn trace_hex(t: u8) -> String {
    format!("{:032x}", u128::from(t) + 1)
}

proptest! {
    /// Against a naive model: the indexes answer exactly what a scan of the
    /// kept traces would, never hold more than capacity, and eviction is counted.
    #[test]
    fn indexes_match_a_scan_under_eviction(cap in 1usize..8, ops in proptest::collection::vec(op(), 0..80)) {
        let store = TraceStore::with_capacity(cap).unwrap();
        let mut model: Vec<(String, Option<String>)> = Vec::new();
        let mut evicted = 0u64;
        for (n, Op::Record { action, trace: t }) in ops.into_iter().enumerate() {
            let action_id = format!("act-{action}");
            let tid = t.map(trace_hex);
            store.record(trace(&action_id, tid.as_deref(), n as u64));
            if let Some(slot) = model.iter_mut().find(|(a, _)| *a == action_id) {
                slot.1 = tid;
            } else {
                model.push((action_id, tid));
                if model.len() > cap {
                    model.remove(0);
                    evicted += 1;
                }
            }
        }
        prop_assert_eq!(store.len(), model.len());
        prop_assert_eq!(store.evicted(), evicted);
        prop_assert!(store.trace_id_count() <= cap);
        let kept: Vec<String> = model.iter().map(|(a, _)| a.clone()).collect();
        prop_assert_eq!(ids(&store.list_all()), kept);
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for (a, t) in &model {
            if let Some(t) = t {
                groups.entry(t.clone()).or_default().push(a.clone());
            }
        }
        prop_assert_eq!(store.trace_id_count(), groups.len());
        for t in 0..4u8 {
            let hex = trace_hex(t);
            let want = groups.get(&hex).cloned().unwrap_or_default();
            prop_assert_eq!(ids(&store.by_trace_id(&hex)), want);
        }
        for action in 0..24u8 {
            let action_id = format!("act-{action}");
            let want = model.iter().find(|(a, _)| *a == action_id).and_then(|(_, t)| t.clone());
            prop_assert_eq!(store.trace_id_of(&action_id), want);
        }
    }
}

// ── JSON Lines ──────────────────────────────────────────────────────────────

fn varied() -> Vec<ActionTrace> {
    let mut denied = trace("d1", None, 7);
    denied.outcome = TraceOutcome::Denied;
    denied.denial_category = Some(DenialCategory::MissingRole);
    denied.error = Some("policy denied 'billing.list_invoices': role missing".into());
    denied.handle_id = None;
    denied.driver_id = String::new();
    denied.duration = None;
    let mut failed = trace("f1", Some(TRACE_B), 8);
    failed.outcome = TraceOutcome::DriverError;
    failed.error = Some("all drivers failed".into());
    failed.session_id = None;
    failed.args = Args::new();
    let mut cancelled = trace("c1", Some(TRACE_A), 9);
    cancelled.outcome = TraceOutcome::Cancelled;
    cancelled.duration = Some(Duration::new(u64::MAX, 999_999_999));
    cancelled.args.insert(
        "nested".into(),
        json!({"deep": [1, 2.5, null, true, {"k": "ü ✓ \n \"q\""}], "big": u64::MAX, "neg": -1}),
    );
    vec![trace("a1", Some(TRACE_A), 1), denied, failed, cancelled]
}

#[test]
fn arguments_are_redacted_on_the_way_in_unless_kept_raw() {
    let mut args = Args::new();
    args.insert("email".into(), json!("user1@example.com"));
    args.insert("password".into(), json!("hunter2"));
    args.insert("note".into(), json!("call me at bob@corp.com"));
    args.insert("nested".into(), json!({"card": "4111 1111 1111 1111"}));
    let mut t = varied().remove(0);
    t.args = args;
    let redacted = TraceStore::new().record(t.clone());
    let text = serde_json::to_string(&redacted.args).unwrap();
    for secret in [
        "user1@example.com",
        "hunter2",
        "bob@corp.com",
        "4111 1111 1111 1111",
    ] {
        assert!(!text.contains(secret), "{secret}: {text}");
    }
    assert!(text.contains("call me at"), "{text}");
    let raw = TraceStore::new().with_raw_arguments().record(t.clone());
    assert_eq!(raw.args, t.args);
}

#[test]
fn export_import_round_trip_is_lossless() {
    let store = TraceStore::new().with_raw_arguments();
    for t in varied() {
        store.record(t);
    }
    let mut buf = Vec::new();
    assert_eq!(store.export_jsonl(&mut buf).unwrap(), 4);
    let text = String::from_utf8(buf.clone()).unwrap();
    assert_eq!(text.lines().count(), 4);
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["v"], json!(JSONL_VERSION));
    }
    // A store that keeps raw arguments exports them (documented).
    assert!(text.contains("user1@example.com"));

    let back = TraceStore::new().with_raw_arguments();
    let report = back.import_jsonl(&buf[..]);
    assert!(report.is_clean(), "{:?}", report.errors);
    assert_eq!(report.imported, 4);
    let before: Vec<ActionTrace> = store.list_all().iter().map(|t| (**t).clone()).collect();
    let after: Vec<ActionTrace> = back.list_all().iter().map(|t| (**t).clone()).collect();
    assert_eq!(before, after);
    assert_eq!(ids(&back.by_trace_id(TRACE_A)), ["a1", "c1"]);

    // Export of the import is byte-identical.
    let mut again = Vec::new();
    back.export_jsonl(&mut again).unwrap();
    assert_eq!(buf, again);
}

#[test]
fn bad_lines_are_named_and_good_lines_kept() {
    let good: Vec<String> = varied()
        .iter()
        .map(|t| {
            let mut b = Vec::new();
            write_jsonl_record(t, &mut b).unwrap();
            String::from_utf8(b).unwrap().trim_end().to_owned()
        })
        .collect();
    let truncated = &good[1][..good[1].len() / 2];
    let v2 = good[2].replacen("\"v\":1", "\"v\":2", 1);
    let no_version = good[0].replacen("\"v\":1,", "", 1);
    let bad_trace_id = good[0].replace(TRACE_A, "XYZ");
    let lines = [
        good[0].as_str(),      // 1
        "",                    // 2: blank, ignored
        "{not json",           // 3
        good[1].as_str(),      // 4
        v2.as_str(),           // 5
        "[1,2,3]",             // 6
        no_version.as_str(),   // 7
        "{\"v\":1}",           // 8: missing fields
        bad_trace_id.as_str(), // 9
        good[2].as_str(),      // 10
        good[3].as_str(),      // 11
        truncated,             // 12: truncated last line, no newline
    ];
    let input = lines.join("\n");
    let store = TraceStore::new();
    let report = store.import_jsonl(input.as_bytes());
    assert_eq!(report.imported, 4);
    let lines_in_error: Vec<usize> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines_in_error, [3, 5, 6, 7, 8, 9, 12]);
    let msg = |line: usize| {
        report
            .errors
            .iter()
            .find(|e| e.line == line)
            .unwrap()
            .to_string()
    };
    assert!(msg(3).starts_with("line 3: malformed JSON"), "{}", msg(3));
    assert!(
        msg(5).contains("unsupported format version 2"),
        "{}",
        msg(5)
    );
    assert!(msg(6).contains("JSON object"), "{}", msg(6));
    assert!(msg(7).contains("missing format version"), "{}", msg(7));
    assert!(msg(8).contains("missing field"), "{}", msg(8));
    assert!(msg(9).contains("trace_id"), "{}", msg(9));
    assert!(
        msg(12).starts_with("line 12: truncated record"),
        "{}",
        msg(12)
    );
    assert_eq!(ids(&store.list_all()), ["a1", "d1", "f1", "c1"]);
}

#[test]
fn crlf_invalid_utf8_and_over_long_lines() {
    let mut b = Vec::new();
    write_jsonl_record(&varied()[0], &mut b).unwrap();
    let good = b.strip_suffix(b"\n").unwrap().to_vec();
    let mut input = Vec::new();
    input.extend_from_slice(&good);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(b"\xff\xfe\n");
    input.extend(std::iter::repeat_n(b'x', MAX_JSONL_LINE_BYTES + 10));
    input.extend_from_slice(b"\n");
    input.extend_from_slice(&good);
    // A small buffer: lines span many fill_buf calls.
    let items: Vec<_> = read_jsonl(BufReader::with_capacity(7, &input[..])).collect();
    assert_eq!(items.len(), 4);
    assert!(items[0].is_ok());
    assert_eq!(items[1].as_ref().unwrap_err().line, 2);
    assert!(items[1].as_ref().unwrap_err().message.contains("UTF-8"));
    assert_eq!(items[2].as_ref().unwrap_err().line, 3);
    assert!(
        items[2]
            .as_ref()
            .unwrap_err()
            .message
            .contains("longer than")
    );
    assert!(items[3].is_ok());
}

/// A reader that fails after some bytes.
struct Failing<'a>(&'a [u8]);

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn io_error_stops_the_import_and_keeps_what_was_read() {
    let mut b = Vec::new();
    write_jsonl_record(&varied()[0], &mut b).unwrap();
    let store = TraceStore::new();
    let report = store.import_jsonl(BufReader::new(Failing(&b)));
    assert_eq!(report.imported, 1);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].line, 2);
    assert!(report.errors[0].message.contains("disk on fire"));
}

#[test]
fn parse_rejects_unrepresentable_duration_and_accepts_unknown_keys() {
    let mut b = Vec::new();
    write_jsonl_record(&varied()[0], &mut b).unwrap();
    let mut v: Value = serde_json::from_slice(&b).unwrap();
    v["future_key"] = json!("ignored");
    assert!(parse_jsonl_record(&v.to_string()).is_ok());
    v["duration_ns"] = json!(0);
    let line = v.to_string().replace(
        "\"duration_ns\":0",
        &format!("\"duration_ns\":{}", u128::MAX),
    );
    let err = parse_jsonl_record(&line).unwrap_err();
    assert!(err.contains("duration_ns"), "{err}");
}

fn arb_trace() -> impl Strategy<Value = ActionTrace> {
    let mode = prop_oneof![
        Just(ResponseMode::Summary),
        Just(ResponseMode::Table),
        Just(ResponseMode::HandleOnly),
        Just(ResponseMode::Raw),
    ];
    let outcome = prop_oneof![
        Just(TraceOutcome::Success),
        Just(TraceOutcome::Denied),
        Just(TraceOutcome::DriverError),
        Just(TraceOutcome::Cancelled),
    ];
    let category = proptest::option::of(proptest::sample::select(DenialCategory::ALL.to_vec()));
    let text = "\\PC{0,12}";
    (
        (text, text, text, text, any::<u64>()),
        proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{0,10}", 0..4),
        (mode.clone(), mode, text),
        (
            proptest::option::of(text),
            proptest::option::of(text),
            proptest::option::of(text),
        ),
        (category, outcome),
        proptest::option::of((any::<u64>(), 0u32..1_000_000_000)),
        proptest::option::of((any::<u128>(), any::<u64>())),
    )
        .prop_map(
            |(
                (action_id, capability_id, principal_id, token_id, ms),
                args,
                (requested_mode, response_mode, driver_id),
                (handle_id, session_id, error),
                (denial_category, outcome),
                duration,
                ids,
            )| ActionTrace {
                action_id,
                capability_id,
                principal_id,
                token_id,
                invoked_at: Timestamp::from_millis(ms),
                args: args
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
                requested_mode,
                response_mode,
                driver_id,
                handle_id,
                session_id,
                error,
                denial_category,
                outcome,
                duration: duration.map(|(s, n)| Duration::new(s, n)),
                trace_id: ids.map(|(t, _)| format!("{:032x}", t.max(1))),
                span_id: ids.map(|(_, s)| format!("{:016x}", s.max(1))),
            },
        )
}

proptest! {
    #[test]
    fn any_record_round_trips(t in arb_trace()) {
        let mut b = Vec::new();
        write_jsonl_record(&t, &mut b).unwrap();
        prop_assert_eq!(b.iter().filter(|&&c| c == b'\n').count(), 1);
        let line = std::str::from_utf8(&b).unwrap().trim_end_matches('\n');
        prop_assert_eq!(parse_jsonl_record(line).unwrap(), t);
    }
}
