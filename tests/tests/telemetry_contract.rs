//! `docs/telemetry.md` cannot drift from the code: a scripted session touches
//! every span, every attribute, every metric and every label, on the success
//! paths and on the failure paths (grant denials: missing role, short
//! justification, invalid constraint, unregistered capability; token errors:
//! tampered, another principal's, revoked, expired; an unregistered capability
//! at invoke; invoke denials: missing tenant, invalid constraint, rate limit,
//! exhausted session budget; a driver fallback and every driver failing; a
//! cancelled and a panicked invocation; failed expansions (another principal's
//! handle, a field outside allowed_fields, unknown, expired) and a failed
//! explanation), and what it emits must EQUAL the tables of the document
//! (parsed between `<!-- {name}:start -->` / `end` markers):
//! - `span-table`: span names, kinds, parents and attribute keys; an attribute
//!   noted "on success" is on every successful span and on no failed one;
//! - `metric-table`: metric names, instruments, units, buckets and label keys;
//! - `value-table`: the values of every enumerated label and attribute
//!   (`status`, `reason_category`, `error.type`, …), per span or metric, as
//!   sets: the session emits every documented value, and no other.
//!
//! The failure attributes (`error.type`, `agent_kernel.cancelled`) and the
//! `exception` event come on top of the span table, on failed spans only.
//! Uses its own SDK providers (not `Capture`) to see span kinds and metric
//! data types as exported.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kernel_fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use agent_kernel::otel::{instrument_kernel_with, keys as k};
use agent_kernel::*;
use agent_kernel_otel::Telemetry;
use kernel_fixture::*;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;

/// A remote driver that does not leave the process (its spans are CLIENT).
#[derive(Debug)]
struct RemoteStub;

#[async_trait]
impl Driver for RemoteStub {
    fn driver_id(&self) -> &str {
        "remote"
    }
    fn is_remote(&self) -> bool {
        true
    }
    async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        Ok(RawResult::new(ctx.capability_id, json!([{"id": "R-1"}])))
    }
}

/// Registered over the fixture's `slow` driver (the route of `SLOW`): a driver
/// that never returns (its invocation is dropped by a timeout) or one that panics.
#[derive(Debug)]
enum Misbehaving {
    Hang,
    Panic,
}

#[async_trait]
impl Driver for Misbehaving {
    fn driver_id(&self) -> &str {
        "slow"
    }
    async fn execute(&self, _ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        tokio::task::yield_now().await;
        match self {
            Misbehaving::Hang => std::future::pending().await,
            Misbehaving::Panic => panic!("the contract session's driver panics on purpose"),
        }
    }
}

/// READ invocations (and grants) per principal and capability per minute:
/// small enough for the session to run into it, large enough for the rest.
const READ_LIMIT: u64 = 3;

/// The session whose budget one table frame uses up.
const SESSION: &str = "s-1";

/// One row of the span table.
#[derive(Debug, Default, PartialEq, Eq)]
struct SpanRow {
    kinds: BTreeSet<String>,
    /// Parent span names; empty for "caller" (a root in this session).
    parents: BTreeSet<String>,
    attributes: BTreeSet<String>,
}

/// One row of the metric table.
#[derive(Debug, Default, PartialEq)]
struct MetricRow {
    instrument: String,
    unit: String,
    buckets: Vec<f64>,
    labels: BTreeSet<String>,
}

fn document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/telemetry.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The body rows of the markdown table between `<!-- {name}:start -->` and
/// `<!-- {name}:end -->`, as cells.
fn table(doc: &str, name: &str) -> Vec<Vec<String>> {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let from = doc.find(&start).unwrap_or_else(|| panic!("no {start}")) + start.len();
    let to = doc[from..].find(&end).unwrap_or_else(|| panic!("no {end}")) + from;
    let rows: Vec<Vec<String>> = doc[from..to]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    assert!(rows.len() >= 2, "{name}: header and separator expected");
    assert!(
        rows[1]
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
    );
    rows[2..].to_vec()
}

/// The backticked words of a cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect()
}

/// Attribute and span keys: dotted lower-case names (`_OTHER` and code are not keys).
fn is_key(s: &str) -> bool {
    s.contains('.')
        && !s.contains('(')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_')
}

fn span_table(doc: &str) -> BTreeMap<String, SpanRow> {
    let mut out = BTreeMap::new();
    for cells in table(doc, "span-table") {
        assert_eq!(
            cells.len(),
            4,
            "span | kind | parent | attributes: {cells:?}"
        );
        let name = ticked(&cells[0]);
        assert_eq!(name.len(), 1, "{cells:?}");
        let kinds = cells[1]
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| ["INTERNAL", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"].contains(w))
            .map(str::to_owned)
            .collect();
        let parents = ticked(&cells[2])
            .into_iter()
            .filter(|s| is_key(s))
            .collect();
        let attributes = ticked(&cells[3])
            .into_iter()
            .filter(|s| is_key(s))
            .collect();
        let row = SpanRow {
            kinds,
            parents,
            attributes,
        };
        assert!(
            out.insert(name[0].clone(), row).is_none(),
            "duplicate row {}",
            name[0]
        );
    }
    out
}

fn metric_table(doc: &str) -> BTreeMap<String, MetricRow> {
    let mut out = BTreeMap::new();
    for cells in table(doc, "metric-table") {
        assert_eq!(
            cells.len(),
            5,
            "name | instrument | unit | buckets | labels: {cells:?}"
        );
        let name = ticked(&cells[0]);
        assert_eq!(name.len(), 1, "{cells:?}");
        let unit = ticked(&cells[2]);
        assert_eq!(unit.len(), 1, "{cells:?}");
        let buckets = cells[3]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "–" && *s != "-")
            .map(|s| {
                s.parse::<f64>()
                    .unwrap_or_else(|e| panic!("bucket {s:?}: {e}"))
            })
            .collect();
        let row = MetricRow {
            instrument: cells[1].clone(),
            unit: unit[0].clone(),
            buckets,
            labels: ticked(&cells[4]).into_iter().collect(),
        };
        assert!(
            out.insert(name[0].clone(), row).is_none(),
            "duplicate row {}",
            name[0]
        );
    }
    out
}

/// The span-table attributes whose note says "on success", by span.
fn on_success_only(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for cells in table(doc, "span-table") {
        let name = ticked(&cells[0]).remove(0);
        // A key's note is everything up to the next key (notes may hold
        // backticked values such as `_OTHER`).
        let mut notes: Vec<(String, String)> = Vec::new();
        for (i, piece) in cells[3].split('`').enumerate() {
            if i % 2 == 1 && is_key(piece) {
                notes.push((piece.to_owned(), String::new()));
            } else if let Some((_, note)) = notes.last_mut() {
                note.push_str(piece);
            }
        }
        let keys = notes
            .into_iter()
            .filter(|(_, note)| note.contains("on success"))
            .map(|(key, _)| key)
            .collect();
        out.insert(name, keys);
    }
    out
}

/// The value table: (key, span or metric name) → the documented values.
fn value_table(doc: &str) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for cells in table(doc, "value-table") {
        assert_eq!(cells.len(), 3, "key | on | values: {cells:?}");
        let key = ticked(&cells[0]);
        assert_eq!(key.len(), 1, "{cells:?}");
        let places = ticked(&cells[1]);
        let values: BTreeSet<String> = ticked(&cells[2]).into_iter().collect();
        assert!(!places.is_empty() && !values.is_empty(), "{cells:?}");
        for place in places {
            assert!(
                out.insert((key[0].clone(), place.clone()), values.clone())
                    .is_none(),
                "duplicate value-table row: {} on {place}",
                key[0]
            );
        }
    }
    out
}

/// Fails with the differences of two set-valued maps, both ways.
fn assert_same_sets<K: Ord + Debug>(
    what: &str,
    emitted: &BTreeMap<K, BTreeSet<String>>,
    documented: &BTreeMap<K, BTreeSet<String>>,
) {
    let empty = BTreeSet::new();
    let mut problems = Vec::new();
    for key in emitted
        .keys()
        .chain(documented.keys())
        .collect::<BTreeSet<_>>()
    {
        let e = emitted.get(key).unwrap_or(&empty);
        let d = documented.get(key).unwrap_or(&empty);
        let undocumented: Vec<_> = e.difference(d).collect();
        let unemitted: Vec<_> = d.difference(e).collect();
        if !undocumented.is_empty() {
            problems.push(format!(
                "{key:?}: emitted, not in docs/telemetry.md: {undocumented:?}"
            ));
        }
        if !unemitted.is_empty() {
            problems.push(format!(
                "{key:?}: in docs/telemetry.md, never emitted by the session: {unemitted:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

fn is_failed(span: &SpanData) -> bool {
    matches!(span.status, Status::Error { .. })
}

/// The value of a span attribute, as text.
fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

/// One invocation on `runtime`.
fn call(
    runtime: &tokio::runtime::Runtime,
    kernel: &Kernel,
    request: InvokeRequest<'_>,
) -> Result<Frame> {
    runtime.block_on(kernel.invoke_with(request))
}

fn kind_name(kind: &SpanKind) -> String {
    match kind {
        SpanKind::Internal => "INTERNAL",
        SpanKind::Client => "CLIENT",
        SpanKind::Server => "SERVER",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
    }
    .to_owned()
}

/// Attributes that come on top of the table on failure (documented in prose).
const FAILURE_KEYS: [&str; 2] = [k::ERROR_TYPE, "agent_kernel.cancelled"];

#[test]
fn emitted_telemetry_equals_the_documented_tables() {
    let spans = InMemorySpanExporter::default();
    let metrics = InMemoryMetricExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics.clone()).build())
        .build();

    // ── The scripted session ────────────────────────────────────────────────
    // The session's budget is exactly one table frame (a frame is never
    // charged past the budget): the first call uses it up, the next is
    // refused before any driver runs, on the policy span.
    let table_cost = {
        let probe = Fixture::with(Options {
            read_limit: READ_LIMIT,
            ..Options::default()
        });
        let token = probe.token(LIST, &probe.analyst);
        let frame = rt()
            .block_on(probe.kernel.invoke_with(
                InvokeRequest::new(&token, &probe.analyst).with_mode(ResponseMode::Table),
            ))
            .unwrap();
        CharsOverFour.count(&FramePayload::of(&frame))
    };
    // Content capture on, so that every documented key is emitted (the
    // capture keys are checked off in kernel_telemetry.rs).
    let fx = Fixture::with(Options {
        read_limit: READ_LIMIT,
        capture: agent_kernel::otel::ContentCapture::on(),
        budget: BudgetConfig {
            total_budget: table_cost,
            default_request: table_cost,
            ..BudgetConfig::default()
        },
        ..Options::default()
    });
    fx.kernel.register_driver(RemoteStub);
    let _hook = instrument_kernel_with(
        &fx.kernel,
        Telemetry::new(&tracer_provider, &meter_provider),
    );
    let runtime = rt();
    let kernel = &*fx.kernel;
    let analyst = &fx.analyst;

    // Grants: allowed; denied for a missing role, a short justification and
    // an invalid constraint (reason_category at grant); an unregistered
    // capability (no policy span).
    let list = fx.token(LIST, analyst);
    let grant_error = |request: CapabilityRequest, principal: &Principal, justification: &str| {
        kernel
            .grant_capability(&request, principal, justification)
            .unwrap_err()
    };
    let refund = || CapabilityRequest::new(REFUND, "refund");
    assert_eq!(
        grant_error(refund(), analyst, JUSTIFICATION).denial_category(),
        Some(DenialCategory::MissingRole)
    );
    assert_eq!(
        grant_error(refund(), &fx.clerk, "because").denial_category(),
        Some(DenialCategory::InsufficientJustification)
    );
    let bad_rows = CapabilityRequest::new(LIST, "list").with_constraint("max_rows", json!("many"));
    assert_eq!(
        grant_error(bad_rows, analyst, "").denial_category(),
        Some(DenialCategory::InvalidConstraint)
    );
    assert_eq!(
        grant_error(CapabilityRequest::new(UNREGISTERED, "?"), analyst, "").kind(),
        "capability_not_found"
    );

    // Invoke: success with a session (every invoke attribute, firewall,
    // driver); the table frame uses up the session's budget.
    let frame = call(
        &runtime,
        kernel,
        InvokeRequest::new(&list, analyst)
            .with_mode(ResponseMode::Table)
            .with_session(SESSION),
    )
    .unwrap();
    // The session budget is exhausted: denied (reason_category at invoke).
    let exhausted = call(
        &runtime,
        kernel,
        InvokeRequest::new(&list, analyst).with_session(SESSION),
    )
    .unwrap_err();
    assert_eq!(exhausted.kind(), "budget_exhausted");
    assert_eq!(
        exhausted.denial_category(),
        Some(DenialCategory::BudgetExhausted)
    );
    // A remote driver (CLIENT span).
    let remote = fx.token(REMOTE, analyst);
    call(&runtime, kernel, InvokeRequest::new(&remote, analyst)).unwrap();
    // Denied at invoke: no tenant attribute; a token without the
    // allowed_fields the policy requires; the rate limit.
    let no_tenant = Principal::new("analyst-001").with_roles(["reader"]);
    assert_eq!(
        call(&runtime, kernel, InvokeRequest::new(&list, &no_tenant))
            .unwrap_err()
            .denial_category(),
        Some(DenialCategory::MissingTenantAttribute)
    );
    let unconstrained = kernel.token_provider().issue(
        LIST,
        &analyst.principal_id,
        Constraints::default(),
        None,
        "audit-unconstrained",
    );
    assert_eq!(
        call(
            &runtime,
            kernel,
            InvokeRequest::new(&unconstrained, analyst)
        )
        .unwrap_err()
        .denial_category(),
        Some(DenialCategory::InvalidConstraint)
    );
    let burst = Principal::new("analyst-002").with_roles(["reader"]);
    let remote_burst = fx.token(REMOTE, &burst);
    for _ in 0..READ_LIMIT {
        call(&runtime, kernel, InvokeRequest::new(&remote_burst, &burst)).unwrap();
    }
    assert_eq!(
        call(&runtime, kernel, InvokeRequest::new(&remote_burst, &burst))
            .unwrap_err()
            .denial_category(),
        Some(DenialCategory::RateLimited)
    );
    // Token errors (no reason_category): tampered after signing, presented
    // by another principal, revoked; expired comes last (the clock moves).
    let mut tampered = list.clone();
    tampered.constraints.max_rows = Some(1_000_000);
    let token_error = |token: &CapabilityToken, principal: &Principal| {
        let err = call(&runtime, kernel, InvokeRequest::new(token, principal)).unwrap_err();
        assert!(err.is_token_error(), "{err}");
        err.kind()
    };
    assert_eq!(token_error(&tampered, analyst), "token_invalid");
    assert_eq!(token_error(&list, &fx.clerk), "token_principal_mismatch");
    let revoked = fx.token(LIST, analyst);
    kernel.revoke_token(&revoked.token_id).unwrap();
    assert_eq!(token_error(&revoked, analyst), "token_revoked");
    // A validly signed token for a capability that is not registered (`_OTHER`).
    let stray = kernel.token_provider().issue(
        UNREGISTERED,
        &analyst.principal_id,
        Constraints::default(),
        None,
        "audit-stray",
    );
    assert_eq!(
        call(&runtime, kernel, InvokeRequest::new(&stray, analyst))
            .unwrap_err()
            .kind(),
        "capability_not_found"
    );
    // Drivers: the first fails and the second serves; every driver fails.
    let flaky = fx.token(FLAKY, analyst);
    call(&runtime, kernel, InvokeRequest::new(&flaky, analyst)).unwrap();
    let dead = fx.token(DEAD, analyst);
    assert_eq!(
        call(&runtime, kernel, InvokeRequest::new(&dead, analyst))
            .unwrap_err()
            .kind(),
        "driver_error"
    );
    // Cancelled: the invoke future is dropped by a timeout while its driver hangs.
    kernel.register_driver(Misbehaving::Hang);
    let slow = fx.token(SLOW, analyst);
    let timed_out = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(20),
            kernel.invoke_with(InvokeRequest::new(&slow, analyst)),
        )
        .await
    });
    assert!(timed_out.is_err(), "the hanging invocation must time out");
    // Panicked: the driver panics (on a runtime of its own).
    kernel.register_driver(Misbehaving::Panic);
    let panic_runtime = rt();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // an expected panic: no message
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        call(&panic_runtime, kernel, InvokeRequest::new(&slow, analyst))
    }));
    std::panic::set_hook(default_hook);
    assert!(panicked.is_err(), "the driver's panic must propagate");
    drop(panic_runtime);

    // Expand: success; another principal's handle; a field outside the
    // token's allowed_fields; an unknown handle. Explain: success; unknown.
    // The session's handle would charge the exhausted session: expand one
    // made outside it, once the READ rate window (which expansions count
    // in, like invocations) has passed.
    let _ = &frame;
    fx.clock.advance(Duration::from_secs(61));
    let handle = call(
        &runtime,
        kernel,
        InvokeRequest::new(&list, analyst).with_mode(ResponseMode::HandleOnly),
    )
    .unwrap()
    .handle
    .unwrap();
    kernel
        .expand(&handle, &ExpandQuery::default(), analyst)
        .unwrap();
    assert_eq!(
        kernel
            .expand(&handle, &ExpandQuery::default(), &fx.clerk)
            .unwrap_err()
            .kind(),
        "handle_access_denied"
    );
    let email = ExpandQuery {
        fields: Some(vec!["email".to_owned()]),
        ..ExpandQuery::default()
    };
    assert_eq!(
        kernel.expand(&handle, &email, analyst).unwrap_err().kind(),
        "policy_denied"
    );
    // A well-formed id that names nothing, and a forged one.
    const UNKNOWN_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
    for (handle_id, kind) in [
        (UNKNOWN_ID, "handle_not_found"),
        ("no-such-handle", "malformed_id"),
    ] {
        let unknown = Handle {
            handle_id: handle_id.to_owned(),
            ..handle.clone()
        };
        assert_eq!(
            kernel
                .expand(&unknown, &ExpandQuery::default(), analyst)
                .unwrap_err()
                .kind(),
            kind
        );
    }
    kernel.explain(&frame.action_id).unwrap();
    assert_eq!(
        kernel.explain(UNKNOWN_ID).unwrap_err().kind(),
        "trace_not_found"
    );
    assert_eq!(
        kernel.explain("no-such-action").unwrap_err().kind(),
        "malformed_id"
    );

    // Time passes: the token and the handle expire.
    fx.clock
        .advance(DEFAULT_TOKEN_TTL.max(DEFAULT_HANDLE_TTL) + Duration::from_secs(1));
    assert_eq!(token_error(&list, analyst), "token_expired");
    assert_eq!(
        kernel
            .expand(&handle, &ExpandQuery::default(), analyst)
            .unwrap_err()
            .kind(),
        "handle_expired"
    );

    // ── What was emitted ────────────────────────────────────────────────────
    tracer_provider.force_flush().unwrap();
    let finished = spans.get_finished_spans().unwrap();
    let by_id: std::collections::HashMap<_, _> = finished
        .iter()
        .map(|s| (s.span_context.span_id(), s.name.to_string()))
        .collect();
    let mut emitted: BTreeMap<String, SpanRow> = BTreeMap::new();
    // (attribute or label key, span or metric name) → the values seen.
    let mut emitted_values: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for s in &finished {
        assert_eq!(s.instrumentation_scope.name(), "agent_kernel");
        assert_eq!(
            s.instrumentation_scope.version(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        let row = emitted.entry(s.name.to_string()).or_default();
        row.kinds.insert(kind_name(&s.span_kind));
        if let Some(parent) = by_id.get(&s.parent_span_id) {
            row.parents.insert(parent.clone());
        } else {
            assert_eq!(
                s.parent_span_id,
                opentelemetry::trace::SpanId::INVALID,
                "{} has a parent outside the session",
                s.name
            );
        }
        for kv in &s.attributes {
            let key = kv.key.as_str();
            if !FAILURE_KEYS.contains(&key) {
                row.attributes.insert(key.to_owned());
            }
            emitted_values
                .entry((key.to_owned(), s.name.to_string()))
                .or_default()
                .insert(kv.value.as_str().into_owned());
        }
    }

    meter_provider.force_flush().unwrap();
    let exported = metrics.get_finished_metrics().unwrap();
    let last = exported.last().expect("a metric export");
    let mut emitted_metrics: BTreeMap<String, MetricRow> = BTreeMap::new();
    for scope in last.scope_metrics() {
        assert_eq!(scope.scope().name(), "agent_kernel");
        for metric in scope.metrics() {
            let mut points: Vec<Vec<opentelemetry::KeyValue>> = Vec::new();
            let (instrument, buckets) = match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    assert!(sum.is_monotonic());
                    points.extend(sum.data_points().map(|p| p.attributes().cloned().collect()));
                    ("counter (u64)", Vec::new())
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    let mut bounds = None;
                    for p in h.data_points() {
                        points.push(p.attributes().cloned().collect());
                        bounds = Some(p.bounds().collect::<Vec<f64>>());
                    }
                    ("histogram (f64)", bounds.unwrap_or_default())
                }
                AggregatedMetrics::U64(MetricData::Gauge(g)) => {
                    points.extend(g.data_points().map(|p| p.attributes().cloned().collect()));
                    ("observable gauge (u64)", Vec::new())
                }
                other => panic!("{}: unexpected metric data {other:?}", metric.name()),
            };
            let mut labels = BTreeSet::new();
            for kv in points.iter().flatten() {
                labels.insert(kv.key.to_string());
                emitted_values
                    .entry((kv.key.to_string(), metric.name().to_owned()))
                    .or_default()
                    .insert(kv.value.as_str().into_owned());
            }
            emitted_metrics.insert(
                metric.name().to_owned(),
                MetricRow {
                    instrument: instrument.to_owned(),
                    unit: metric.unit().to_owned(),
                    buckets,
                    labels,
                },
            );
        }
    }

    // ── Equal to the document ───────────────────────────────────────────────
    let doc = document();
    let documented = span_table(&doc);
    // Roots: "caller" in the document, no parent in this session.
    assert_eq!(
        emitted.keys().collect::<Vec<_>>(),
        documented.keys().collect::<Vec<_>>(),
        "span names"
    );
    let attributes_of = |rows: &BTreeMap<String, SpanRow>| -> BTreeMap<String, BTreeSet<String>> {
        rows.iter()
            .map(|(name, row)| (name.clone(), row.attributes.clone()))
            .collect()
    };
    assert_same_sets(
        "span attribute keys (span-table)",
        &attributes_of(&emitted),
        &attributes_of(&documented),
    );
    for (name, row) in &documented {
        assert_eq!(
            &emitted[name], row,
            "span {name}: emitted (left) vs docs/telemetry.md (right)"
        );
    }
    let documented_metrics = metric_table(&doc);
    assert_eq!(
        emitted_metrics.keys().collect::<Vec<_>>(),
        documented_metrics.keys().collect::<Vec<_>>(),
        "metric names"
    );
    let labels_of = |rows: &BTreeMap<String, MetricRow>| -> BTreeMap<String, BTreeSet<String>> {
        rows.iter()
            .map(|(name, row)| (name.clone(), row.labels.clone()))
            .collect()
    };
    assert_same_sets(
        "metric label keys (metric-table)",
        &labels_of(&emitted_metrics),
        &labels_of(&documented_metrics),
    );
    for (name, row) in &documented_metrics {
        assert_eq!(
            &emitted_metrics[name], row,
            "metric {name}: emitted (left) vs docs/telemetry.md (right)"
        );
    }

    // Attributes noted "on success": on every successful span of their row
    // and on no failed one (the session has both outcomes of each such span).
    let conditional = on_success_only(&doc);
    assert!(
        conditional.values().any(|keys| !keys.is_empty()),
        "span-table: no attribute noted \"on success\""
    );
    for (name, keys) in conditional.iter().filter(|(_, keys)| !keys.is_empty()) {
        let of_name: Vec<&SpanData> = finished.iter().filter(|s| s.name == *name).collect();
        assert!(
            of_name.iter().any(|s| is_failed(s)) && of_name.iter().any(|s| !is_failed(s)),
            "{name}: the session must end it both ways"
        );
        for s in of_name {
            for key in keys {
                assert_eq!(
                    attr(s, key).is_some(),
                    !is_failed(s),
                    "{name}: `{key}` is documented \"on success\", but a {} span {} it \
                     (error.type {:?}; keys {:?})",
                    if is_failed(s) { "failed" } else { "successful" },
                    if is_failed(s) { "has" } else { "lacks" },
                    attr(s, k::ERROR_TYPE),
                    s.attributes
                        .iter()
                        .map(|kv| kv.key.as_str())
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    // The failure attributes and the `exception` event: on failed spans only.
    for key in FAILURE_KEYS
        .iter()
        .chain(&["exception", "exception.type", "exception.message"])
    {
        assert!(doc.contains(&format!("`{key}`")), "{key} not documented");
    }
    for s in &finished {
        let events: Vec<_> = s.events.iter().collect();
        match &s.status {
            Status::Error { description } => {
                let error_type = attr(s, k::ERROR_TYPE)
                    .unwrap_or_else(|| panic!("{}: ERROR without error.type", s.name));
                assert_eq!(
                    events.len(),
                    1,
                    "{}: one exception event: {events:?}",
                    s.name
                );
                let event = events[0];
                assert_eq!(event.name, "exception", "{}", s.name);
                let event_attr = |key: &str| {
                    event
                        .attributes
                        .iter()
                        .find(|kv| kv.key.as_str() == key)
                        .map(|kv| kv.value.as_str().into_owned())
                };
                assert_eq!(event.attributes.len(), 2, "{}: {event:?}", s.name);
                assert_eq!(event_attr("exception.type"), Some(error_type.clone()));
                assert_eq!(
                    event_attr("exception.message").as_deref(),
                    Some(description.as_ref())
                );
                assert_eq!(
                    attr(s, "agent_kernel.cancelled").is_some(),
                    error_type == "cancelled",
                    "{}: agent_kernel.cancelled goes with error.type = cancelled",
                    s.name
                );
            }
            Status::Unset => {
                for key in FAILURE_KEYS {
                    assert!(attr(s, key).is_none(), "{}: {key} without ERROR", s.name);
                }
                assert!(
                    events.is_empty(),
                    "{}: events without ERROR: {events:?}",
                    s.name
                );
            }
            Status::Ok => panic!("{}: the kernel never sets OK", s.name),
        }
    }

    // The enumerated values: equal sets, per span or metric.
    let documented_values = value_table(&doc);
    for (key, place) in documented_values.keys() {
        if let Some(row) = documented.get(place) {
            assert!(
                row.attributes.contains(key) || FAILURE_KEYS.contains(&key.as_str()),
                "value-table: {key} is not an attribute of {place}"
            );
        } else {
            let row = documented_metrics
                .get(place)
                .unwrap_or_else(|| panic!("value-table: {place} is neither a span nor a metric"));
            assert!(
                row.labels.contains(key),
                "value-table: {key} is not a label of {place}"
            );
        }
    }
    let enumerated: BTreeSet<&String> = documented_values.keys().map(|(key, _)| key).collect();
    let emitted_enumerated: BTreeMap<(String, String), BTreeSet<String>> = emitted_values
        .iter()
        .filter(|((key, _), _)| enumerated.contains(key))
        .map(|(place, values)| (place.clone(), values.clone()))
        .collect();
    assert_same_sets(
        "values of the enumerated keys, (key, span or metric) (value-table)",
        &emitted_enumerated,
        &documented_values,
    );

    // ── The names are the constants of agent_kernel::otel::keys ─────────────
    let span_names: BTreeSet<&str> = [
        k::SPAN_INVOKE,
        k::SPAN_POLICY_EVALUATE,
        k::SPAN_DRIVER_EXECUTE,
        k::SPAN_FIREWALL_APPLY,
        k::SPAN_GRANT,
        k::SPAN_EXPAND,
        k::SPAN_EXPLAIN,
    ]
    .into();
    assert_eq!(span_names, emitted.keys().map(String::as_str).collect());
    let attribute_keys: BTreeSet<&str> = [
        k::PRINCIPAL_ID,
        k::CAPABILITY_ID,
        k::SAFETY_CLASS,
        k::SENSITIVITY,
        k::RESPONSE_MODE,
        k::EFFECTIVE_RESPONSE_MODE,
        k::ACTION_ID,
        k::SESSION_ID,
        k::DRIVER_ID,
        k::ATTEMPT,
        k::DECISION,
        k::REASON_CATEGORY,
        k::ROWS_IN,
        k::ROWS_OUT,
        k::REDACTIONS,
        k::CHARS,
        k::HANDLE_ID,
        k::ROWS_RETURNED,
        k::GEN_AI_OPERATION_NAME,
        k::GEN_AI_TOOL_NAME,
        k::GEN_AI_TOOL_CALL_ID,
        k::GEN_AI_TOOL_TYPE,
        k::GEN_AI_TOOL_DESCRIPTION,
        k::GEN_AI_CONVERSATION_ID,
        k::GEN_AI_TOOL_CALL_ARGUMENTS,
        k::GEN_AI_TOOL_CALL_RESULT,
        k::OPENINFERENCE_SPAN_KIND,
        k::TOOL_NAME,
        k::TOOL_DESCRIPTION,
        k::OPENINFERENCE_SESSION_ID,
        k::INPUT_VALUE,
        k::INPUT_MIME_TYPE,
        k::OUTPUT_VALUE,
        k::OUTPUT_MIME_TYPE,
        k::FALLBACK,
    ]
    .into();
    let emitted_keys: BTreeSet<&str> = emitted
        .values()
        .flat_map(|r| r.attributes.iter().map(String::as_str))
        .collect();
    assert_eq!(attribute_keys, emitted_keys);
    let metric_names: BTreeSet<&str> = [
        k::METRIC_INVOCATIONS,
        k::METRIC_INVOCATION_DURATION,
        k::METRIC_POLICY_DENIALS,
        k::METRIC_BUDGET_CONSUMED,
    ]
    .into();
    assert_eq!(
        metric_names,
        emitted_metrics.keys().map(String::as_str).collect()
    );
    let label_keys: BTreeSet<&str> = [
        k::LABEL_CAPABILITY_ID,
        k::LABEL_SAFETY_CLASS,
        k::LABEL_STATUS,
        k::LABEL_REASON_CATEGORY,
        k::LABEL_SESSION_ID,
    ]
    .into();
    let emitted_labels: BTreeSet<&str> = emitted_metrics
        .values()
        .flat_map(|r| r.labels.iter().map(String::as_str))
        .collect();
    assert_eq!(label_keys, emitted_labels);
    assert_eq!(
        emitted_metrics[k::METRIC_INVOCATION_DURATION].buckets,
        k::DURATION_BUCKETS_MS
    );
    // The denial categories a policy evaluation can have are the kernel's
    // closed set but `handle_principal_mismatch` (expand only, no policy span).
    let categories: BTreeSet<String> = DenialCategory::ALL
        .iter()
        .filter(|c| **c != DenialCategory::HandlePrincipalMismatch)
        .map(|c| c.as_str().to_owned())
        .collect();
    for key in [k::LABEL_REASON_CATEGORY, k::REASON_CATEGORY] {
        let place = if key == k::LABEL_REASON_CATEGORY {
            k::METRIC_POLICY_DENIALS
        } else {
            k::SPAN_POLICY_EVALUATE
        };
        assert_eq!(
            documented_values.get(&(key.to_owned(), place.to_owned())),
            Some(&categories),
            "{key} on {place}"
        );
    }
    assert_eq!(
        documented_values.get(&(
            k::GEN_AI_OPERATION_NAME.to_owned(),
            k::SPAN_INVOKE.to_owned()
        )),
        Some(&BTreeSet::from([
            k::GEN_AI_OPERATION_EXECUTE_TOOL.to_owned()
        ]))
    );
}
