//! Bounded cardinality: the instrumented kernel is flooded with 100 000
//! distinct unknown capability ids (forged and validly signed tokens for
//! unregistered capabilities), 100 000 distinct principals and 100 000 distinct
//! sessions, and the series the in-memory metric exporter receives are
//! counted: label values come only from bounded sets (`_OTHER` for every
//! unregistered capability id, `principal_id` never a label), and the
//! `agent_kernel.budget_consumed` gauge reports at most the budget manager's
//! live-session cap. The SDK's own cardinality safety net (2 000 series per
//! instrument, then an `otel.metric.overflow` series) must never be reached.
//!
//! Spans go to a tracer provider without processors (recorded and dropped), so
//! the flood costs no span memory; metrics are read with a forced flush.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kernel_fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use agent_kernel::otel::{instrument_kernel_with, keys as k};
use agent_kernel::*;
use agent_kernel_otel::Telemetry;
use kernel_fixture::*;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Distinct unknown capability ids, principals and sessions. 100 000 each
/// (the issue's figure), far above every cap in play: the budget manager's
/// 128 live sessions here, the rate limiter's 16 384 keys, and the SDK's 2 000
/// series per instrument.
const N: usize = 100_000;

/// The budget manager's live-session cap in this test.
const MAX_SESSIONS: usize = 128;

/// One exported data point: instrument name and sorted labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: Vec<(String, String)>,
}

/// The series of the last export, and each counter's total.
fn collect(
    meter_provider: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
) -> (Vec<Series>, BTreeMap<Series, u64>) {
    exporter.reset();
    meter_provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    let last = exported.last().expect("one export after the flush");
    let mut series = Vec::new();
    let mut totals = BTreeMap::new();
    for scope in last.scope_metrics() {
        for metric in scope.metrics() {
            let name = metric.name().to_owned();
            let mut push = |attrs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>,
                            value: u64| {
                let mut labels: Vec<(String, String)> = attrs
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect();
                labels.sort();
                let s = Series {
                    name: name.clone(),
                    labels,
                };
                totals.insert(s.clone(), value);
                series.push(s);
            };
            match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    for p in sum.data_points() {
                        push(&mut p.attributes(), p.value());
                    }
                }
                AggregatedMetrics::U64(MetricData::Gauge(g)) => {
                    for p in g.data_points() {
                        push(&mut p.attributes(), p.value());
                    }
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        push(&mut p.attributes(), p.count());
                    }
                }
                other => panic!("unexpected aggregation for {name}: {other:?}"),
            }
        }
    }
    (series, totals)
}

#[test]
fn a_flood_of_unknown_ids_principals_and_sessions_keeps_series_bounded() {
    let started = Instant::now();
    let fx = Fixture::with(Options {
        budget: BudgetConfig {
            total_budget: 1_000_000,
            default_request: 4_000,
            max_sessions: MAX_SESSIONS,
        },
        ..Options::default()
    });
    let tracer_provider = SdkTracerProvider::builder().build();
    let exporter = InMemoryMetricExporter::default();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let _hook = instrument_kernel_with(
        &fx.kernel,
        Telemetry::new(&tracer_provider, &meter_provider),
    );

    let real = fx.token(LIST, &fx.analyst);
    let provider = fx.kernel.token_provider();
    let mut invokes = 0u64;

    rt().block_on(async {
        for i in 0..N {
            // Let rate-limit windows (sliding: the previous minute still
            // counts) empty now and then, so that new principals are admitted
            // rather than refused by the full key table (16 384 keys). 20 steps
            // of 130 s stay inside the template token's one-hour lifetime.
            if i % 5_000 == 0 {
                fx.clock.advance(Duration::from_secs(130));
            }
            let principal = Principal::new(format!("p-{i}"))
                .with_roles(["writer"])
                .with_attribute("tenant", "acme");
            let session = format!("s-{i}");

            // An unknown capability id: forged (bad signature) on even i,
            // validly signed for an unregistered capability on odd i.
            let unknown = format!("unknown.cap.{i}");
            let stray = if i % 2 == 0 {
                let mut t = real.clone();
                t.capability_id.clone_from(&unknown);
                t.principal_id.clone_from(&principal.principal_id);
                t.token_id = format!("tok-{i}");
                t
            } else {
                provider.issue(
                    &unknown,
                    &principal.principal_id,
                    Constraints::default(),
                    None,
                    "audit",
                )
            };
            let err = fx
                .kernel
                .invoke_with(InvokeRequest::new(&stray, &principal).with_session(&session))
                .await
                .unwrap_err();
            let want = if i % 2 == 0 {
                "token_invalid"
            } else {
                "capability_not_found"
            };
            assert_eq!(err.kind(), want);

            // The same principal and session, on a registered capability with
            // a small result (cheap in a debug build): a success, and a new
            // live session for the gauge.
            let token = provider.issue(
                REFUND,
                &principal.principal_id,
                Constraints::default(),
                None,
                "audit",
            );
            fx.kernel
                .invoke_with(InvokeRequest::new(&token, &principal).with_session(&session))
                .await
                .unwrap();
            invokes += 2;

            // Every 10th principal also loses its role: a denial at invoke and at grant.
            if i % 10 == 0 {
                let demoted =
                    Principal::new(principal.principal_id.clone()).with_attribute("tenant", "acme");
                let err = fx
                    .kernel
                    .invoke_with(InvokeRequest::new(&token, &demoted).with_session(&session))
                    .await
                    .unwrap_err();
                assert_eq!(err.denial_category(), Some(DenialCategory::MissingRole));
                invokes += 1;
                let err = fx
                    .kernel
                    .grant_capability(
                        &CapabilityRequest::new(&unknown, "x"),
                        &demoted,
                        JUSTIFICATION,
                    )
                    .unwrap_err();
                assert_eq!(err.kind(), "capability_not_found");
                let err = fx
                    .kernel
                    .grant_capability(
                        &CapabilityRequest::new(REFUND, "x"),
                        &demoted,
                        JUSTIFICATION,
                    )
                    .unwrap_err();
                assert_eq!(err.denial_category(), Some(DenialCategory::MissingRole));
            }
        }
    });
    let flooded = started.elapsed();

    let (series, totals) = collect(&meter_provider, &exporter);
    let mut per_metric: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &series {
        *per_metric.entry(s.name.as_str()).or_default() += 1;
    }
    println!(
        "{N} unknown ids, principals and sessions ({invokes} invokes) in {flooded:.1?}; series per metric: {per_metric:?}"
    );

    // Bounded label sets.
    let registered: BTreeSet<String> = fx
        .kernel
        .registry()
        .list_all()
        .map(|c| c.capability_id.clone())
        .chain([k::OTHER.to_owned()])
        .collect();
    let safety: BTreeSet<&str> = ["READ", "WRITE", "DESTRUCTIVE", k::OTHER].into();
    let status: BTreeSet<&str> = ["success", "error", "denied"].into();
    let categories: BTreeSet<&str> = DenialCategory::ALL.iter().map(|c| c.as_str()).collect();
    for s in &series {
        for (key, value) in &s.labels {
            assert!(
                !key.contains("principal"),
                "principal_id is never a label: {s:?}"
            );
            assert_ne!(
                key, "otel.metric.overflow",
                "the SDK's cardinality cap was hit: {s:?}"
            );
            assert!(
                !value.starts_with("p-")
                    && !value.starts_with("unknown.")
                    && !value.starts_with("tok-"),
                "a flooded id became a label value: {s:?}"
            );
            match key.as_str() {
                "capability_id" => assert!(registered.contains(value), "{s:?}"),
                "safety_class" => assert!(safety.contains(value.as_str()), "{s:?}"),
                "status" => assert!(status.contains(value.as_str()), "{s:?}"),
                "reason_category" => assert!(categories.contains(value.as_str()), "{s:?}"),
                "session_id" => assert_eq!(s.name, k::METRIC_BUDGET_CONSUMED, "{s:?}"),
                other => panic!("unexpected label {other:?} on {s:?}"),
            }
        }
    }

    // Per metric: exactly the expected series, whatever N is.
    let labels = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut l: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        l.sort();
        l
    };
    let names = |name: &str| -> BTreeSet<Vec<(String, String)>> {
        series
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.labels.clone())
            .collect()
    };
    let inv = |c: &str, sc: &str, st: &str| {
        labels(&[
            (k::LABEL_CAPABILITY_ID, c),
            (k::LABEL_SAFETY_CLASS, sc),
            (k::LABEL_STATUS, st),
        ])
    };
    let expected_invocations: BTreeSet<_> = [
        inv(k::OTHER, k::OTHER, "error"),
        inv(REFUND, "WRITE", "success"),
        inv(REFUND, "WRITE", "denied"),
    ]
    .into();
    assert_eq!(names(k::METRIC_INVOCATIONS), expected_invocations);
    assert_eq!(names(k::METRIC_INVOCATION_DURATION), expected_invocations);
    assert_eq!(
        names(k::METRIC_POLICY_DENIALS),
        [labels(&[
            (k::LABEL_CAPABILITY_ID, REFUND),
            (k::LABEL_REASON_CATEGORY, "missing_role")
        ])]
        .into()
    );
    let gauge = per_metric
        .get(k::METRIC_BUDGET_CONSUMED)
        .copied()
        .unwrap_or(0);
    assert!(gauge > 0, "the gauge reports the live sessions");
    assert!(
        gauge <= MAX_SESSIONS,
        "{gauge} gauge series > the {MAX_SESSIONS}-session cap"
    );
    assert!(fx.kernel.budget().sessions().len() <= MAX_SESSIONS);
    assert!(
        series.len() <= 3 + 3 + 1 + MAX_SESSIONS,
        "{} series in all",
        series.len()
    );

    // No recording was lost to the bounding: the counters add up.
    let counted: u64 = totals
        .iter()
        .filter(|(s, _)| s.name == k::METRIC_INVOCATIONS)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(counted, invokes);
    let unknown = totals[&Series {
        name: k::METRIC_INVOCATIONS.to_owned(),
        labels: inv(k::OTHER, k::OTHER, "error"),
    }];
    assert_eq!(unknown, N as u64, "every unknown id counted under _OTHER");

    // The kernel's own stores stayed bounded too.
    assert!(fx.kernel.traces().len() <= fx.kernel.traces().capacity());
    assert!(fx.kernel.handles().len() <= fx.kernel.handles().max_entries());
}
