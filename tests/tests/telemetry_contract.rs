//! `docs/telemetry.md` cannot drift from the code: a scripted session touches
//! every span, every attribute, every metric and every label, and what it
//! emits must EQUAL the span table and the metric table of the document
//! (parsed between the `<!-- span-table:start -->` / `end` and
//! `<!-- metric-table:start -->` / `end` markers): span names, kinds, parents
//! and attribute keys; metric names, instruments, units, buckets and label keys.
//! Uses its own SDK providers (not `Capture`) to see span kinds and metric
//! data types as exported.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kernel_fixture;

use std::collections::{BTreeMap, BTreeSet};

use agent_kernel::otel::{instrument_kernel_with, keys as k};
use agent_kernel::*;
use agent_kernel_otel::Telemetry;
use kernel_fixture::*;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
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
    let fx = Fixture::new();
    fx.kernel.register_driver(RemoteStub);
    let _hook = instrument_kernel_with(
        &fx.kernel,
        Telemetry::new(&tracer_provider, &meter_provider),
    );
    let runtime = rt();
    // Grant: allowed, then denied (reason_category at grant).
    let list = fx.token(LIST, &fx.analyst);
    let denied = fx
        .kernel
        .grant_capability(
            &CapabilityRequest::new(REFUND, "refund"),
            &fx.analyst,
            JUSTIFICATION,
        )
        .unwrap_err();
    assert_eq!(denied.denial_category(), Some(DenialCategory::MissingRole));
    // Invoke: success with a session (every invoke attribute, firewall, driver).
    let frame = runtime
        .block_on(
            fx.kernel.invoke_with(
                InvokeRequest::new(&list, &fx.analyst)
                    .with_mode(ResponseMode::Table)
                    .with_session("s-1"),
            ),
        )
        .unwrap();
    // Invoke: a remote driver (CLIENT span).
    let remote = fx.token(REMOTE, &fx.analyst);
    runtime
        .block_on(
            fx.kernel
                .invoke(&remote, &fx.analyst, Args::new(), ResponseMode::Summary),
        )
        .unwrap();
    // Invoke: denied at invoke (reason_category at invoke).
    let no_tenant = Principal::new("analyst-001").with_roles(["reader"]);
    runtime
        .block_on(
            fx.kernel
                .invoke(&list, &no_tenant, Args::new(), ResponseMode::Summary),
        )
        .unwrap_err();
    // Expand and explain.
    let handle = frame.handle.clone().unwrap();
    fx.kernel
        .expand(&handle, &ExpandQuery::default(), &fx.analyst)
        .unwrap();
    fx.kernel.explain(&frame.action_id).unwrap();

    // ── What was emitted ────────────────────────────────────────────────────
    tracer_provider.force_flush().unwrap();
    let finished = spans.get_finished_spans().unwrap();
    let by_id: std::collections::HashMap<_, _> = finished
        .iter()
        .map(|s| (s.span_context.span_id(), s.name.to_string()))
        .collect();
    let mut emitted: BTreeMap<String, SpanRow> = BTreeMap::new();
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
        }
    }

    meter_provider.force_flush().unwrap();
    let exported = metrics.get_finished_metrics().unwrap();
    let last = exported.last().expect("a metric export");
    let mut emitted_metrics: BTreeMap<String, MetricRow> = BTreeMap::new();
    for scope in last.scope_metrics() {
        assert_eq!(scope.scope().name(), "agent_kernel");
        for metric in scope.metrics() {
            let mut labels = BTreeSet::new();
            let (instrument, buckets) = match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    assert!(sum.is_monotonic());
                    for p in sum.data_points() {
                        labels.extend(p.attributes().map(|kv| kv.key.to_string()));
                    }
                    ("counter (u64)", Vec::new())
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    let mut bounds = None;
                    for p in h.data_points() {
                        labels.extend(p.attributes().map(|kv| kv.key.to_string()));
                        bounds = Some(p.bounds().collect::<Vec<f64>>());
                    }
                    ("histogram (f64)", bounds.unwrap_or_default())
                }
                AggregatedMetrics::U64(MetricData::Gauge(g)) => {
                    for p in g.data_points() {
                        labels.extend(p.attributes().map(|kv| kv.key.to_string()));
                    }
                    ("observable gauge (u64)", Vec::new())
                }
                other => panic!("{}: unexpected metric data {other:?}", metric.name()),
            };
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
    for (name, row) in &documented_metrics {
        assert_eq!(
            &emitted_metrics[name], row,
            "metric {name}: emitted (left) vs docs/telemetry.md (right)"
        );
    }
    // The failure attributes are documented in prose.
    for key in FAILURE_KEYS {
        assert!(doc.contains(&format!("`{key}`")), "{key} not documented");
    }

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
}
