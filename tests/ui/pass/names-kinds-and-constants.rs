// Checks: the grammar's run-time and constant forms. A span name from a
// constant path or from an expression evaluated per call; a kind from a
// keyword, a parameter, a parenthesised variable or any expression; attribute
// keys, metric names and buckets from constants (a path with `::`); whole
// metrics declared once as `CounterSpec`/`HistogramSpec` constants and used by
// two functions; labels that name constant keys (label key = the key without
// `agent_kernel.`). Exact spans, attributes and counts.
#![deny(warnings)]
use std::borrow::Cow;

use agent_kernel_otel::{kernel_span, record, CounterSpec, HistogramSpec, SpanError, SpanKind, Telemetry};
use agent_kernel_tests::Capture;

mod keys {
    use agent_kernel_otel::{CounterSpec, HistogramSpec};

    pub const SPAN_GRANT: &str = "agent_kernel.grant";
    pub const CAPABILITY_ID: &str = "agent_kernel.capability_id";
    pub const REASON_CATEGORY: &str = "agent_kernel.reason_category";
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    pub const LABEL_CAPABILITY_ID: &str = "capability_id";
    pub const METRIC_ATTEMPTS: &str = "agent_kernel.attempts";
    pub const BUCKETS_MS: [f64; 3] = [0.1, 1.0, 10.0];

    /// Declared once, used by `grant` and `invoke`.
    pub const POLICY_DENIALS: CounterSpec = CounterSpec::new(
        "agent_kernel.policy_denials",
        "{denial}",
        "Policy denials at grant and at invoke, by category",
        &["capability_id", "reason_category"],
    );
    pub const DURATION: HistogramSpec =
        HistogramSpec::new("agent_kernel.duration", "ms", "Latency", &["capability_id", "status"])
            .with_buckets(&[0.01, 1.0, 100.0]);
}

#[derive(Debug)]
struct Denied;

impl SpanError for Denied {
    fn error_type(&self) -> &'static str {
        "policy_denied"
    }
    fn is_denial(&self) -> bool {
        true
    }
    fn redacted_message(&self) -> Cow<'_, str> {
        Cow::Borrowed("policy_denied")
    }
}

struct Driver {
    remote: bool,
}

impl Driver {
    fn span_kind(&self) -> SpanKind {
        if self.remote { SpanKind::Client } else { SpanKind::Internal }
    }
}

struct Kernel {
    telemetry: Telemetry,
}

impl Kernel {
    #[kernel_span(
        name = keys::SPAN_GRANT,
        telemetry = self.telemetry,
        attrs(keys::CAPABILITY_ID = capability_id, keys::REASON_CATEGORY = deferred),
        metrics(counter(keys::POLICY_DENIALS, when = denied)),
    )]
    fn grant(&self, capability_id: &str, allow: bool) -> Result<(), Denied> {
        let _ = capability_id;
        if allow {
            return Ok(());
        }
        record(keys::REASON_CATEGORY, "missing_token");
        Err(Denied)
    }

    #[kernel_span(
        name = "agent_kernel.invoke",
        telemetry = self.telemetry,
        attrs(capability_id, reason_category = deferred),
        metrics(
            counter(keys::POLICY_DENIALS, when = denied),
            histogram(keys::DURATION),
        ),
    )]
    fn invoke(&self, capability_id: &str, allow: bool) -> Result<(), Denied> {
        let _ = capability_id;
        if allow {
            return Ok(());
        }
        record("reason_category", "quota");
        Err(Denied)
    }

    #[kernel_span(
        name = format!("execute_tool {}", tool),
        kind = driver.span_kind(),
        telemetry = self.telemetry,
        attrs(keys::TOOL_NAME = tool, attempt, capability_id),
        metrics(
            counter(name = keys::METRIC_ATTEMPTS, labels(keys::LABEL_CAPABILITY_ID, "gen_ai.tool.name")),
            histogram(name = "agent_kernel.attempt_duration", unit = "ms", buckets = keys::BUCKETS_MS,
                      labels(status)),
        ),
    )]
    async fn execute(&self, driver: &Driver, tool: &str, attempt: u32, capability_id: &str) -> u32 {
        // Read only by the span code (so unused without `otel`).
        let _ = (driver.remote, tool, capability_id);
        attempt
    }

    #[kernel_span(name = "demo.kind_param", kind = kind, telemetry = self.telemetry)]
    fn kind_param(&self, kind: SpanKind) {
        let _ = kind;
    }

    #[kernel_span(name = "demo.kind_variable", kind = (client), telemetry = self.telemetry)]
    fn kind_variable(&self, client: SpanKind) {
        let _ = client;
    }

    #[kernel_span(name = "demo.kind_keyword", kind = producer, telemetry = self.telemetry)]
    fn kind_keyword(&self) {}
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

fn main() {
    let cap = Capture::new();
    let k = Kernel { telemetry: cap.telemetry() };
    let _ = k.grant("billing.list", true);
    let _ = k.grant("billing.list", false);
    let _ = k.invoke("billing.list", false);
    let _ = k.invoke("billing.list", true);
    assert_eq!(block_on(k.execute(&Driver { remote: true }, "billing.list", 2, "billing.list")), 2);
    assert_eq!(block_on(k.execute(&Driver { remote: false }, "billing.get", 1, "billing.get")), 1);
    k.kind_param(SpanKind::Server);
    k.kind_variable(SpanKind::Consumer);
    k.kind_keyword();
    let _: (CounterSpec, HistogramSpec) = (keys::POLICY_DENIALS, keys::DURATION);

    if cfg!(feature = "otel") {
        let spans = cap.spans();
        let grants: Vec<_> = spans.iter().filter(|s| s.name == "agent_kernel.grant").collect();
        assert_eq!(grants.len(), 2);
        assert!(grants.iter().all(|s| s.attr("agent_kernel.capability_id") == Some("billing.list")));
        assert_eq!(grants[1].attr("agent_kernel.reason_category"), Some("missing_token"));

        let remote = cap.span("execute_tool billing.list");
        assert_eq!(remote.kind, "client");
        assert_eq!(remote.attr("gen_ai.tool.name"), Some("billing.list"));
        assert_eq!(remote.attr("agent_kernel.attempt"), Some("2"));
        assert_eq!(cap.span("execute_tool billing.get").kind, "internal");
        assert_eq!(cap.span("demo.kind_param").kind, "server");
        assert_eq!(cap.span("demo.kind_variable").kind, "consumer");
        assert_eq!(cap.span("demo.kind_keyword").kind, "producer");

        // One metric, declared once, fed by both functions.
        let denials = |reason| [("capability_id", "billing.list"), ("reason_category", reason)];
        assert_eq!(cap.count("agent_kernel.policy_denials", &denials("missing_token")), 1);
        assert_eq!(cap.count("agent_kernel.policy_denials", &denials("quota")), 1);
        let d = |status| [("capability_id", "billing.list"), ("status", status)];
        assert_eq!(cap.count("agent_kernel.duration", &d("denied")), 1);
        assert_eq!(cap.count("agent_kernel.duration", &d("success")), 1);
        let points = cap.points();
        let hist = points.iter().find(|p| p.name == "agent_kernel.duration").unwrap();
        assert_eq!(hist.unit, "ms");
        assert_eq!(hist.bounds, vec![0.01, 1.0, 100.0]);
        let attempts = points.iter().find(|p| p.name == "agent_kernel.attempt_duration").unwrap();
        assert_eq!(attempts.bounds, vec![0.1, 1.0, 10.0]);
        // A label given as a constant names the attribute by its label key.
        assert_eq!(
            cap.count("agent_kernel.attempts", &[("capability_id", "billing.list"), ("gen_ai.tool.name", "billing.list")]),
            1
        );
    }
}
