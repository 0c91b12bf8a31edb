//! End-to-end: the telemetry set-up of `agent-kernel-otel` exports into real
//! backends. Spans go over OTLP/HTTP into Arize Phoenix and are read back
//! through its REST API; metrics are served on `/metrics`, scraped by
//! Prometheus and read back with PromQL.
//!
//! Run by `scripts/test-all.sh`, which starts the backends
//! (`scripts/backends.sh start`) and runs the ignored `e2e_*` tests with
//! `--features e2e` and `AGENT_KERNEL_E2E=1`. A backend that cannot be
//! reached fails the test: nothing is skipped.
//!
//! Environment: `PHOENIX_URL`, `PROMETHEUS_URL`, `PROMETHEUS_FILE_SD_DIR` (as
//! written to `.e2e/backends.env` by `scripts/backends.sh start`).

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(not(feature = "e2e"))]
#[test]
#[ignore = "needs backends: run scripts/test-all.sh"]
fn e2e_setup_needs_the_e2e_feature() {
    panic!("build with `--features e2e` (scripts/test-all.sh does)");
}

#[cfg(feature = "e2e")]
mod e2e {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use agent_kernel_otel::opentelemetry;
    use agent_kernel_otel::setup::{TelemetryConfig, init};
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry::trace::{
        Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
    };
    use opentelemetry::{Context, KeyValue};
    use serde_json::Value;

    /// How long the backends get to show what was sent.
    const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

    /// The backends' locations; fails (never skips) when they are not given.
    struct Backends {
        phoenix: String,
        prometheus: String,
        file_sd_dir: String,
    }

    fn backends() -> Backends {
        assert_eq!(
            std::env::var("AGENT_KERNEL_E2E").as_deref(),
            Ok("1"),
            "end-to-end tests need real backends: run scripts/test-all.sh \
             (or scripts/backends.sh start, source .e2e/backends.env, export AGENT_KERNEL_E2E=1)"
        );
        let var = |name: &str| {
            std::env::var(name)
                .unwrap_or_else(|_| panic!("AGENT_KERNEL_E2E=1 but {name} is not set"))
        };
        let b = Backends {
            phoenix: var("PHOENIX_URL"),
            prometheus: var("PROMETHEUS_URL"),
            file_sd_dir: var("PROMETHEUS_FILE_SD_DIR"),
        };
        for (name, url) in [
            ("Phoenix", format!("{}/healthz", b.phoenix)),
            ("Prometheus", format!("{}/-/ready", b.prometheus)),
        ] {
            let ok = http()
                .get(&url)
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            assert!(ok, "{name} is not reachable at {url}");
        }
        b
    }

    fn http() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// A name unique to this run, so runs and tests never see each other's data.
    fn run_id(prefix: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{prefix}-{}-{nanos}", std::process::id())
    }

    fn lookup(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// Polls `probe` until it returns `Some`, or fails with `what` and the last state.
    fn eventually<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
        let start = Instant::now();
        loop {
            match probe() {
                Ok(v) => return v,
                Err(last) if start.elapsed() > ARRIVAL_TIMEOUT => {
                    panic!("{what}: not seen within {ARRIVAL_TIMEOUT:?}; last: {last}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }

    #[test]
    #[ignore = "needs backends: run scripts/test-all.sh"]
    fn e2e_spans_arrive_in_phoenix_as_a_tree() {
        let b = backends();
        let project = run_id("agent-kernel-e2e");
        // Configured exactly as an application would be, through the OTEL_* variables.
        let config = TelemetryConfig::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", b.phoenix.clone()),
            ("OTEL_SERVICE_NAME", "agent-kernel-e2e".to_owned()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                format!("openinference.project.name={project},deployment.environment=e2e"),
            ),
            ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
            ("OTEL_METRICS_EXPORTER", "none".to_owned()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000".to_owned()),
        ]))
        .unwrap();
        let guard = init(config).unwrap();
        let tracer = guard.tracer_provider().unwrap().tracer("agent_kernel");

        // The contract's invoke tree, made with the plain API.
        let mut root = tracer
            .span_builder("agent_kernel.invoke")
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new("agent_kernel.principal_id", "alice"),
                KeyValue::new("agent_kernel.capability_id", "billing.read"),
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
            ])
            .start(&tracer);
        root.set_attribute(KeyValue::new("agent_kernel.action_id", "act-1"));
        let root_cx = Context::current().with_span(root);
        let child = |name: &str, attrs: Vec<KeyValue>, error: Option<&str>| {
            let mut span = tracer
                .span_builder(name.to_owned())
                .with_attributes(attrs)
                .start_with_context(&tracer, &root_cx);
            if let Some(message) = error {
                span.add_event(
                    "exception",
                    vec![
                        KeyValue::new("exception.type", "driver_unavailable"),
                        KeyValue::new("exception.message", message.to_owned()),
                    ],
                );
                span.set_attribute(KeyValue::new("error.type", "driver_unavailable"));
                span.set_status(Status::error(message.to_owned()));
            }
            span.end();
        };
        child(
            "agent_kernel.policy.evaluate",
            vec![KeyValue::new("agent_kernel.decision", "allow")],
            None,
        );
        child(
            "agent_kernel.driver.execute",
            vec![KeyValue::new("agent_kernel.attempt", 1_i64)],
            Some("connection refused"),
        );
        child(
            "agent_kernel.driver.execute",
            vec![KeyValue::new("agent_kernel.attempt", 2_i64)],
            None,
        );
        child(
            "agent_kernel.firewall.apply",
            vec![KeyValue::new("agent_kernel.rows_out", 3_i64)],
            None,
        );
        let root_span_id = root_cx.span().span_context().span_id().to_string();
        let trace_id = root_cx.span().span_context().trace_id().to_string();
        root_cx.span().end();
        drop(root_cx);

        let stats = guard.stats();
        guard.shutdown().unwrap();
        assert_eq!(stats.spans_queued, 5, "{stats:?}");

        let url = format!("{}/v1/projects/{project}/spans?limit=100", b.phoenix);
        let spans: Vec<Value> = eventually("5 spans in Phoenix", || {
            let response = http().get(&url).send().map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            let body: Value = response.json().map_err(|e| e.to_string())?;
            let data = body["data"].as_array().cloned().unwrap_or_default();
            if data.len() >= 5 {
                Ok(data)
            } else {
                Err(format!("{} spans so far", data.len()))
            }
        });
        assert_eq!(spans.len(), 5, "{spans:#?}");

        // Phoenix's span shape: context.{trace_id, span_id}, parent_id,
        // status_code (UNSET | OK | ERROR), status_message, attributes (flat
        // map, dotted keys kept), events [{name, attributes}].
        for span in &spans {
            assert_eq!(span["context"]["trace_id"], trace_id.as_str(), "{span:#}");
        }
        let by_name =
            |name: &str| -> Vec<&Value> { spans.iter().filter(|s| s["name"] == name).collect() };
        let root = by_name("agent_kernel.invoke");
        assert_eq!(root.len(), 1);
        let root = root[0];
        assert_eq!(root["context"]["span_id"], root_span_id.as_str());
        assert!(root["parent_id"].is_null(), "{root:#}");
        assert_eq!(root["status_code"], "UNSET");
        assert_eq!(root["attributes"]["agent_kernel.principal_id"], "alice");
        assert_eq!(
            root["attributes"]["agent_kernel.capability_id"],
            "billing.read"
        );
        assert_eq!(root["attributes"]["agent_kernel.action_id"], "act-1");
        assert_eq!(root["attributes"]["gen_ai.operation.name"], "execute_tool");

        for span in spans.iter().filter(|s| s["name"] != "agent_kernel.invoke") {
            assert_eq!(span["parent_id"], root_span_id.as_str(), "{span:#}");
        }
        let policy = by_name("agent_kernel.policy.evaluate");
        assert_eq!(policy.len(), 1);
        assert_eq!(policy[0]["attributes"]["agent_kernel.decision"], "allow");
        assert_eq!(policy[0]["status_code"], "UNSET");

        let mut attempts = by_name("agent_kernel.driver.execute");
        attempts.sort_by_key(|s| s["attributes"]["agent_kernel.attempt"].as_i64());
        assert_eq!(attempts.len(), 2);
        let failed = attempts[0];
        assert_eq!(failed["attributes"]["agent_kernel.attempt"], 1);
        assert_eq!(failed["status_code"], "ERROR", "{failed:#}");
        assert_eq!(failed["status_message"], "connection refused");
        assert_eq!(failed["attributes"]["error.type"], "driver_unavailable");
        let events = failed["events"].as_array().cloned().unwrap_or_default();
        assert!(
            events.iter().any(|e| e["name"] == "exception"),
            "exception event missing: {failed:#}"
        );
        assert_eq!(attempts[1]["status_code"], "UNSET");

        let firewall = by_name("agent_kernel.firewall.apply");
        assert_eq!(firewall.len(), 1);
        assert_eq!(firewall[0]["attributes"]["agent_kernel.rows_out"], 3);
    }

    /// Points Prometheus at `target` (labelled `e2e_run = run`) through a
    /// file_sd file of this run's own; the returned guard removes it.
    fn scrape(dir: &str, target: &str, run: &str) -> RemoveOnDrop {
        let groups = serde_json::json!([{"targets": [target], "labels": {"e2e_run": run}}]);
        let path = std::path::Path::new(dir).join(format!("{run}.json"));
        let tmp = std::path::Path::new(dir).join(format!(".{run}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(&groups).unwrap()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        RemoveOnDrop(path)
    }

    struct RemoveOnDrop(std::path::PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Runs an instant PromQL query; `Err` while the result is empty.
    fn promql(prometheus: &str, query: &str) -> Result<Vec<Value>, String> {
        let response = http()
            .get(format!("{prometheus}/api/v1/query"))
            .query(&[("query", query)])
            .send()
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("query failed: {body}"));
        }
        let result = body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if result.is_empty() {
            Err("empty result".to_owned())
        } else {
            Ok(result)
        }
    }

    /// The labels of one series, without Prometheus's own and the scope's.
    fn labels(series: &Value) -> BTreeMap<String, String> {
        series["metric"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                !matches!(k.as_str(), "__name__" | "job" | "instance" | "e2e_run")
                    && !k.starts_with("otel_scope_")
            })
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect()
    }

    fn value(series: &Value) -> f64 {
        series["value"][1].as_str().unwrap().parse().unwrap()
    }

    #[test]
    #[ignore = "needs backends: run scripts/test-all.sh"]
    fn e2e_metrics_are_scraped_by_prometheus() {
        let b = backends();
        let run = run_id("metrics");
        let config = TelemetryConfig::from_lookup(lookup(&[
            ("OTEL_TRACES_EXPORTER", "none".to_owned()),
            ("OTEL_METRICS_EXPORTER", "prometheus".to_owned()),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1".to_owned()),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0".to_owned()),
            ("OTEL_SERVICE_NAME", "agent-kernel-e2e".to_owned()),
        ]))
        .unwrap();
        let guard = init(config).unwrap();
        let addr = guard.prometheus_addr().unwrap();
        let meter = guard.meter_provider().unwrap().meter("agent_kernel");

        // Everything is recorded before the first scrape: the values are exact.
        let invocations = meter
            .u64_counter("agent_kernel.invocations")
            .with_unit("{invocation}")
            .build();
        let duration = meter
            .f64_histogram("agent_kernel.invocation_duration")
            .with_unit("ms")
            .with_boundaries(vec![0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0])
            .build();
        let denials = meter
            .u64_counter("agent_kernel.policy_denials")
            .with_unit("{denial}")
            .build();
        let labels_of = |cap: &str, class: &str, status: &str| {
            [
                KeyValue::new("capability_id", cap.to_owned()),
                KeyValue::new("safety_class", class.to_owned()),
                KeyValue::new("status", status.to_owned()),
            ]
        };
        for (cap, class, status, n, ms) in [
            ("billing.read", "read", "success", 3_u64, 2.5),
            ("billing.read", "read", "error", 1, 40.0),
            ("billing.write", "write", "denied", 2, 0.05),
        ] {
            for _ in 0..n {
                invocations.add(1, &labels_of(cap, class, status));
                duration.record(ms, &labels_of(cap, class, status));
            }
        }
        denials.add(
            2,
            &[
                KeyValue::new("capability_id", "billing.write"),
                KeyValue::new("reason_category", "safety_class"),
            ],
        );

        // Our endpoint serves the exposition format itself.
        let exposition = http()
            .get(format!("http://{addr}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            exposition.contains("# TYPE agent_kernel_invocations_total counter"),
            "{exposition}"
        );

        let _scraped = scrape(&b.file_sd_dir, &addr.to_string(), &run);
        let query = |q: &str| {
            let q = q.replace("RUN", &run);
            eventually(&format!("PromQL {q}"), || promql(&b.prometheus, &q))
        };

        let series = query(r#"agent_kernel_invocations_total{e2e_run="RUN"}"#);
        let got: BTreeMap<(String, String, String), f64> = series
            .iter()
            .map(|s| {
                let l = labels(s);
                let keys: BTreeSet<&str> = l.keys().map(String::as_str).collect();
                assert_eq!(
                    keys,
                    BTreeSet::from(["capability_id", "safety_class", "status"]),
                    "label set of {s}"
                );
                (
                    (
                        l["capability_id"].clone(),
                        l["safety_class"].clone(),
                        l["status"].clone(),
                    ),
                    value(s),
                )
            })
            .collect();
        let key = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            got,
            BTreeMap::from([
                (key("billing.read", "read", "error"), 1.0),
                (key("billing.read", "read", "success"), 3.0),
                (key("billing.write", "write", "denied"), 2.0),
            ])
        );

        let count =
            query(r#"sum(agent_kernel_invocation_duration_milliseconds_count{e2e_run="RUN"})"#);
        assert_eq!(value(&count[0]), 6.0);
        let by_status = query(
            r#"sum by (status) (agent_kernel_invocation_duration_milliseconds_count{e2e_run="RUN"})"#,
        );
        assert_eq!(by_status.len(), 3, "{by_status:?}");
        let sum = query(r#"sum(agent_kernel_invocation_duration_milliseconds_sum{e2e_run="RUN"})"#);
        assert!((value(&sum[0]) - (3.0 * 2.5 + 40.0 + 2.0 * 0.05)).abs() < 1e-9);
        let le_1 = query(
            r#"agent_kernel_invocation_duration_milliseconds_bucket{e2e_run="RUN",status="denied",le="0.1"}"#,
        );
        assert_eq!(value(&le_1[0]), 2.0);

        let denied = query(r#"agent_kernel_policy_denials_total{e2e_run="RUN"}"#);
        assert_eq!(denied.len(), 1);
        assert_eq!(
            labels(&denied[0]),
            BTreeMap::from([
                ("capability_id".to_owned(), "billing.write".to_owned()),
                ("reason_category".to_owned(), "safety_class".to_owned()),
            ])
        );
        assert_eq!(value(&denied[0]), 2.0);

        guard.shutdown().unwrap();
    }
}
