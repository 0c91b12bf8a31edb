//! End-to-end: the demo binary against real backends.
//!
//! - `e2e_demo_invoke_trees_in_phoenix`: the demo sends its spans over
//!   OTLP/HTTP into Arize Phoenix (a project of its own); read back through
//!   `GET /v1/projects/{project}/spans`, every invoke tree has the telemetry
//!   contract's span names, attributes, parent ids and error statuses, and
//!   nothing personal leaks into a span; invoke spans are Phoenix `TOOL`s,
//!   `policy.evaluate` and `firewall.apply` `GUARDRAIL`s, and no content is
//!   recorded by default.
//! - `e2e_demo_genai_names_and_redacted_content_in_phoenix`: two runs, the
//!   opt-ins once through the demo's flags (`--genai-conventions
//!   --capture-content`) and once through `OTEL_SEMCONV_STABILITY_OPT_IN` and
//!   `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`: invoke spans named
//!   `execute_tool <capability>`, their input and output present and
//!   redacted, no e-mail address or phone number of the data in any span.
//! - `e2e_demo_metrics_in_prometheus`: the demo serves `/metrics`
//!   (`--metrics-addr 127.0.0.1:0 --hold-secs`), Prometheus scrapes it
//!   through a file_sd target of this test's own, and PromQL returns exactly
//!   the invocation, duration-count, denial and budget numbers that the demo
//!   says it produced AND that the scripted session implies;
//!   `e2e_demo_genai_metrics_in_prometheus`: the same with
//!   `--genai-conventions`, plus `gen_ai_execute_tool_duration_seconds`
//!   per tool with the GenAI conventions' labels and buckets.
//! - `e2e_two_processes_one_trace`: `tool-server` runs as a second process
//!   exporting to Phoenix; the demo calls it through `HttpDriver`
//!   (`--remote-tool`); both processes' spans share one trace id and the
//!   server span's parent is the demo's `agent_kernel.driver.execute` span.
//!
//! Run by `scripts/test-all.sh` (backends started, `AGENT_KERNEL_E2E=1`, the
//! variables of `.e2e/backends.env`: `PHOENIX_URL`, `PHOENIX_OTLP_ENDPOINT`,
//! `PROMETHEUS_URL`, `PROMETHEUS_FILE_SD_DIR`). An unreachable backend fails
//! the test; nothing is skipped.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// How long the backends get to show what was sent.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(45);

// ── backends ────────────────────────────────────────────────────────────────

/// The backends' locations; fails (never skips) when they are not given or
/// do not answer.
#[derive(Clone)]
struct Backends {
    phoenix: String,
    phoenix_otlp: String,
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
        std::env::var(name).unwrap_or_else(|_| panic!("AGENT_KERNEL_E2E=1 but {name} is not set"))
    };
    let b = Backends {
        phoenix: var("PHOENIX_URL"),
        phoenix_otlp: var("PHOENIX_OTLP_ENDPOINT"),
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

/// Polls `probe` until it returns `Ok`, or fails with `what` and the last state.
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

/// The demo, sending its spans to `project` in Phoenix.
fn demo_to_phoenix(b: &Backends, project: &str, extra_args: &[&str]) -> Command {
    let mut command = Command::new(DEMO);
    command
        .args(extra_args)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &b.phoenix_otlp)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_SERVICE_NAME", "agent-kernel-demo")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            format!("openinference.project.name={project},deployment.environment=e2e"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "5000");
    command
}

fn assert_instrumented(summary: &Value) {
    assert_eq!(
        summary["instrumented"], true,
        "the demo was built without the kernel's instrumentation \
         (agent-kernel-demo/src/instrumentation.rs is not wired to agent_kernel::otel)"
    );
}

// ── Phoenix ─────────────────────────────────────────────────────────────────

/// Every span of `project` in Phoenix (all pages).
fn phoenix_spans(phoenix: &str, project: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = http()
            .get(format!("{phoenix}/v1/projects/{project}/spans"))
            .query(&[("limit", "1000")]);
        if let Some(c) = &cursor {
            request = request.query(&[("cursor", c.as_str())]);
        }
        let response = request.send().map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!(
                "HTTP {} (project not created yet?)",
                response.status()
            ));
        }
        let body: Value = response.json().map_err(|e| e.to_string())?;
        out.extend(body["data"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(out),
        }
    }
}

/// Waits until Phoenix holds at least `at_least` spans of `project`.
fn wait_for_spans(phoenix: &str, project: &str, at_least: u64) -> Vec<Value> {
    eventually(
        &format!("{at_least} spans in Phoenix project {project}"),
        || {
            let spans = phoenix_spans(phoenix, project)?;
            if spans.len() as u64 >= at_least {
                Ok(spans)
            } else {
                Err(format!("{} spans so far", spans.len()))
            }
        },
    )
}

/// The spans of one project, indexed.
struct Spans {
    all: Vec<Value>,
}

/// How the kernel named its invoke spans in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// `agent_kernel.invoke` (the default).
    Kernel,
    /// `execute_tool <capability>` (the GenAI conventions' opt-in).
    GenAi,
}

impl Naming {
    fn is_invoke(self, span: &Value) -> bool {
        let name = span["name"].as_str().unwrap_or_default();
        match self {
            Naming::Kernel => name == "agent_kernel.invoke",
            Naming::GenAi => name.starts_with("execute_tool "),
        }
    }
}

impl Spans {
    fn named(&self, name: &str) -> Vec<&Value> {
        self.all.iter().filter(|s| s["name"] == name).collect()
    }

    fn parent(&self, span: &Value) -> &Value {
        let id = span["parent_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no parent: {span:#}"));
        self.all
            .iter()
            .find(|s| span_id(s) == id)
            .unwrap_or_else(|| panic!("parent {id} not exported: {span:#}"))
    }

    fn children(&self, parent: &Value) -> Vec<&Value> {
        let id = span_id(parent);
        self.all.iter().filter(|s| s["parent_id"] == id).collect()
    }

    fn children_named(&self, parent: &Value, name: &str) -> Vec<&Value> {
        self.children(parent)
            .into_iter()
            .filter(|s| s["name"] == name)
            .collect()
    }

    /// The invoke spans, as the run named them.
    fn invokes(&self, naming: Naming) -> Vec<&Value> {
        self.all.iter().filter(|s| naming.is_invoke(s)).collect()
    }

    /// The invoke span of the action `name` of the demo's summary.
    fn invoke(&self, summary: &Value, name: &str) -> &Value {
        self.invoke_as(Naming::Kernel, summary, name)
    }

    /// The invoke span of the action `name`, in a run that named its invoke
    /// spans the `naming` way.
    fn invoke_as(&self, naming: Naming, summary: &Value, name: &str) -> &Value {
        let action = summary["actions"][name]["action_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no action {name} in the summary: {summary}"));
        let found: Vec<&Value> = self
            .invokes(naming)
            .into_iter()
            .filter(|s| s["attributes"]["agent_kernel.action_id"] == action)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "invoke spans of action {name} ({action}): {found:#?}"
        );
        found[0]
    }
}

fn span_id(span: &Value) -> &str {
    span["context"]["span_id"].as_str().unwrap_or_default()
}

fn trace_id(span: &Value) -> &str {
    span["context"]["trace_id"].as_str().unwrap_or_default()
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

fn has_exception_event(span: &Value) -> bool {
    span["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|e| e["name"] == "exception"))
}

/// An ERROR span with `error.type = kind` and an `exception` event.
fn assert_error(span: &Value, kind: &str) {
    assert_eq!(span["status_code"], "ERROR", "{span:#}");
    assert_eq!(attr(span, "error.type"), kind, "{span:#}");
    assert!(has_exception_event(span), "no exception event: {span:#}");
    assert!(
        !span["status_message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "an ERROR span carries a (redacted) description: {span:#}"
    );
}

/// The invoke span's contract attributes and its children's parentage.
fn assert_invoke_contract(
    spans: &Spans,
    invoke: &Value,
    capability: &str,
    principal: &str,
    class: &str,
) {
    let action = attr(invoke, "agent_kernel.action_id").as_str().unwrap();
    assert!(!action.is_empty());
    for (key, want) in [
        ("agent_kernel.principal_id", principal),
        ("agent_kernel.capability_id", capability),
        ("agent_kernel.safety_class", class),
        ("gen_ai.operation.name", "execute_tool"),
        ("gen_ai.tool.name", capability),
        ("gen_ai.tool.call.id", action),
        ("tool.name", capability),
    ] {
        assert_eq!(attr(invoke, key), want, "{key} of {invoke:#}");
    }
    // OpenInference: Phoenix lists the call as a TOOL (its REST API returns
    // `openinference.span.kind` as `span_kind`).
    assert_eq!(invoke["span_kind"], "TOOL", "{invoke:#}");
    for key in ["gen_ai.tool.description", "tool.description"] {
        assert!(attr(invoke, key).is_string(), "{key} missing: {invoke:#}");
    }
    for key in ["agent_kernel.sensitivity", "agent_kernel.response_mode"] {
        assert!(attr(invoke, key).is_string(), "{key} missing: {invoke:#}");
    }
    for child in spans.children(invoke) {
        assert_eq!(trace_id(child), trace_id(invoke), "{child:#}");
    }
    let policy = spans.children_named(invoke, "agent_kernel.policy.evaluate");
    assert_eq!(policy.len(), 1, "one policy.evaluate under {invoke:#}");
}

#[test]
#[ignore = "needs backends: run scripts/test-all.sh"]
fn e2e_demo_invoke_trees_in_phoenix() {
    let b = backends();
    let project = run_id("agent-kernel-demo");
    let mut demo = Child::spawn("agent-kernel-demo", demo_to_phoenix(&b, &project, &[]));
    let summary = summary_of(&mut demo, RUN_TIMEOUT);
    let status = demo.wait(RUN_TIMEOUT);
    assert!(
        status.success(),
        "demo failed: {status}\n{}",
        demo.context()
    );
    assert_instrumented(&summary);
    assert_eq!(summary["spans"]["failed"], 0, "{summary}");
    let exported = summary["spans"]["exported"].as_u64().unwrap();
    assert!(exported > 0, "{summary}");
    assert_eq!(
        summary["spans"]["queued"], exported,
        "every span exported: {summary}"
    );

    let spans = Spans {
        all: wait_for_spans(&b.phoenix, &project, exported),
    };
    assert_eq!(
        spans.all.len() as u64,
        exported,
        "Phoenix holds exactly what was sent"
    );

    // One invoke span per invocation the demo made.
    let totals = &summary["totals"];
    let invocations = ["success", "denied", "error"]
        .iter()
        .map(|k| totals[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(spans.named("agent_kernel.invoke").len() as u64, invocations);
    assert_eq!(invocations, PER_REPETITION.iter().map(|r| r.3).sum::<u64>());

    // Summary mode: the full tree, correlated with the audit record both ways.
    let invoke = spans.invoke(&summary, "summary");
    assert_invoke_contract(&spans, invoke, LIST, "analyst-001", "READ");
    assert_eq!(invoke["status_code"], "UNSET", "{invoke:#}");
    // Parent: the caller's current context, here the demo's step span.
    let step = spans.parent(invoke);
    assert_eq!(step["name"], "agent step mode_summary", "{step:#}");
    assert!(
        step["parent_id"].is_null(),
        "the step span is the root: {step:#}"
    );
    assert_eq!(trace_id(step), trace_id(invoke));
    assert_eq!(attr(invoke, "agent_kernel.sensitivity"), "PII");
    assert_eq!(attr(invoke, "agent_kernel.response_mode"), "summary");
    assert_eq!(attr(invoke, "agent_kernel.driver_id"), "billing");
    assert!(
        attr(invoke, "agent_kernel.session_id").is_null(),
        "no session: {invoke:#}"
    );
    let action = &summary["actions"]["summary"];
    assert_eq!(
        action["trace_id"],
        trace_id(invoke),
        "ActionTrace.trace_id = the invoke's trace"
    );
    assert_eq!(
        action["span_id"],
        span_id(invoke),
        "ActionTrace.span_id = the invoke span"
    );
    let names: BTreeSet<&str> = spans
        .children(invoke)
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "agent_kernel.policy.evaluate",
            "agent_kernel.driver.execute",
            "agent_kernel.firewall.apply"
        ])
    );
    for child in spans.children(invoke) {
        assert_eq!(child["status_code"], "UNSET", "{child:#}");
    }
    let policy = spans.children_named(invoke, "agent_kernel.policy.evaluate")[0];
    assert_eq!(attr(policy, "agent_kernel.decision"), "allow", "{policy:#}");
    let driver = spans.children_named(invoke, "agent_kernel.driver.execute");
    assert_eq!(driver.len(), 1);
    assert_eq!(attr(driver[0], "agent_kernel.driver_id"), "billing");
    assert_eq!(attr(driver[0], "agent_kernel.attempt"), 1);

    // Table mode, and the budgeted session's calls carry the session id.
    assert_eq!(
        attr(
            spans.invoke(&summary, "table"),
            "agent_kernel.response_mode"
        ),
        "table"
    );

    // Driver fallback: a failed attempt (ERROR), then the one that served.
    let invoke = spans.invoke(&summary, "fallback");
    assert_invoke_contract(&spans, invoke, SPEND, "analyst-001", "READ");
    assert_eq!(invoke["status_code"], "UNSET", "{invoke:#}");
    let mut attempts = spans.children_named(invoke, "agent_kernel.driver.execute");
    attempts.sort_by_key(|s| attr(s, "agent_kernel.attempt").as_i64());
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attr(attempts[0], "agent_kernel.attempt"), 1);
    assert_eq!(
        attr(attempts[0], "agent_kernel.driver_id"),
        "billing-warehouse"
    );
    assert_eq!(attempts[0]["status_code"], "ERROR", "{:#}", attempts[0]);
    assert!(
        attr(attempts[0], "error.type").is_string(),
        "{:#}",
        attempts[0]
    );
    assert!(has_exception_event(attempts[0]), "{:#}", attempts[0]);
    assert_eq!(attr(attempts[1], "agent_kernel.attempt"), 2);
    assert_eq!(attr(attempts[1], "agent_kernel.driver_id"), "billing");
    assert_eq!(attempts[1]["status_code"], "UNSET");
    assert_eq!(attr(invoke, "agent_kernel.driver_id"), "billing");

    // Every driver failed: the invoke is an ERROR of kind driver_error.
    let invoke = spans.invoke(&summary, "driver_error");
    assert_error(invoke, "driver_error");
    let attempts = spans.children_named(invoke, "agent_kernel.driver.execute");
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts.iter().all(|s| s["status_code"] == "ERROR"),
        "{attempts:#?}"
    );
    assert!(
        spans
            .children_named(invoke, "agent_kernel.firewall.apply")
            .is_empty()
    );

    // Rate limited: denied in policy.evaluate, no driver ran.
    let invoke = spans.invoke(&summary, "rate_limited");
    assert_invoke_contract(&spans, invoke, VOID, "admin-001", "DESTRUCTIVE");
    assert_error(invoke, "policy_denied");
    let policy = spans.children_named(invoke, "agent_kernel.policy.evaluate")[0];
    assert_eq!(attr(policy, "agent_kernel.decision"), "deny", "{policy:#}");
    assert_eq!(
        attr(policy, "agent_kernel.reason_category"),
        "rate_limited",
        "{policy:#}"
    );
    assert!(
        spans
            .children_named(invoke, "agent_kernel.driver.execute")
            .is_empty()
    );

    // Session budget exhausted: denied, with the session on the span.
    let invoke = spans.invoke(&summary, "budget_exhausted");
    assert_invoke_contract(&spans, invoke, LIST, "admin-001", "READ");
    assert_error(invoke, "budget_exhausted");
    assert_eq!(attr(invoke, "agent_kernel.session_id"), "chat-001");
    assert!(
        spans
            .children_named(invoke, "agent_kernel.driver.execute")
            .is_empty()
    );

    // The remote tool: HttpDriver's attempt, and under it the tool server's
    // SERVER span (in-process here), joined through `traceparent`.
    let invoke = spans.invoke(&summary, "remote");
    assert_invoke_contract(&spans, invoke, REMINDERS, "analyst-001", "READ");
    let attempt = spans.children_named(invoke, "agent_kernel.driver.execute");
    assert_eq!(attempt.len(), 1);
    assert_eq!(attr(attempt[0], "agent_kernel.driver_id"), "collections");
    let server = spans.children_named(attempt[0], "GET /tools/overdue_reminders");
    assert_eq!(
        server.len(),
        1,
        "the tool server's span under the HTTP attempt"
    );
    assert_eq!(trace_id(server[0]), trace_id(invoke));

    // Grants: one span each, with a policy.evaluate child; the two refused
    // WRITE grants are errors.
    let grants = spans.named("agent_kernel.grant");
    assert_eq!(grants.len(), 9, "grants of one repetition");
    for grant in &grants {
        assert_eq!(
            spans
                .children_named(grant, "agent_kernel.policy.evaluate")
                .len(),
            1,
            "{grant:#}"
        );
    }
    let refused: Vec<&&Value> = grants
        .iter()
        .filter(|g| g["status_code"] == "ERROR")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(!spans.named("agent_kernel.expand").is_empty());
    assert!(!spans.named("agent_kernel.explain").is_empty());

    // Nothing personal, no argument value, no token material in any span.
    for span in &spans.all {
        let text = serde_json::to_string(&(
            &span["attributes"],
            &span["events"],
            &span["status_message"],
        ))
        .unwrap();
        for needle in [
            "@example.com",
            "+1-555-",
            "customer_email",
            "e2e-demo-secret",
        ] {
            assert!(!text.contains(needle), "{needle:?} leaked into {span:#}");
        }
    }

    // OpenInference kinds; without the opt-ins, the default names and no content.
    assert_span_kinds(&spans, Naming::Kernel);
    assert!(
        spans.invokes(Naming::GenAi).is_empty(),
        "execute_tool names without the opt-in"
    );
    for invoke in spans.invokes(Naming::Kernel) {
        for key in CONTENT_KEYS {
            assert!(
                attr(invoke, key).is_null(),
                "{key} without capture: {invoke:#}"
            );
        }
    }
    // gen_ai.tool.type: in-process drivers are functions, remote ones extensions.
    let summary_invoke = spans.invoke(&summary, "summary");
    assert_eq!(attr(summary_invoke, "gen_ai.tool.type"), "function");
    assert_eq!(
        attr(spans.invoke(&summary, "remote"), "gen_ai.tool.type"),
        "extension"
    );
    // The session, as the conventions and OpenInference name it.
    let budgeted = spans.invoke(&summary, "budget_exhausted");
    for key in ["gen_ai.conversation.id", "session.id"] {
        assert_eq!(attr(budgeted, key), "chat-001", "{key}: {budgeted:#}");
    }
}

/// The captured-content attributes of an invoke span.
const CONTENT_KEYS: [&str; 6] = [
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "input.value",
    "output.value",
    "input.mime_type",
    "output.mime_type",
];

/// Phoenix's span kinds: every invoke span and only they are TOOL;
/// `policy.evaluate` and `firewall.apply` are GUARDRAIL.
fn assert_span_kinds(spans: &Spans, naming: Naming) {
    let invokes = spans.invokes(naming);
    assert!(!invokes.is_empty());
    for invoke in &invokes {
        assert_eq!(invoke["span_kind"], "TOOL", "{invoke:#}");
    }
    let tools = spans
        .all
        .iter()
        .filter(|s| s["span_kind"] == "TOOL")
        .count();
    assert_eq!(tools, invokes.len(), "TOOL spans = invoke spans");
    for name in [
        "agent_kernel.policy.evaluate",
        "agent_kernel.firewall.apply",
    ] {
        let guards = spans.named(name);
        assert!(!guards.is_empty(), "no {name}");
        for span in guards {
            assert_eq!(span["span_kind"], "GUARDRAIL", "{span:#}");
        }
    }
}

/// Every e-mail address and phone number of the demo's data (the
/// repository's `data/billing_invoices.json`).
fn protected_values() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/billing_invoices.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    let values: Vec<String> = rows
        .iter()
        .flat_map(|r| [&r["email"], &r["phone"]])
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert!(
        values.len() >= 2 * rows.len(),
        "e-mail and phone per invoice"
    );
    values
}

/// A run with both opt-ins on: `execute_tool <capability>` names, TOOL and
/// GUARDRAIL kinds, each call's arguments and result present, redacted, and
/// no protected value anywhere.
fn assert_genai_run_with_content(spans: &Spans, summary: &Value) {
    assert!(
        spans.named("agent_kernel.invoke").is_empty(),
        "agent_kernel.invoke despite the opt-in"
    );
    let totals = &summary["totals"];
    let invocations = ["success", "denied", "error"]
        .iter()
        .map(|k| totals[k].as_u64().unwrap())
        .sum::<u64>();
    let invokes = spans.invokes(Naming::GenAi);
    assert_eq!(invokes.len() as u64, invocations);
    for invoke in &invokes {
        let capability = attr(invoke, "agent_kernel.capability_id").as_str().unwrap();
        assert_eq!(invoke["name"], format!("execute_tool {capability}"));
        assert_eq!(attr(invoke, "gen_ai.tool.name"), capability);
    }
    assert_span_kinds(spans, Naming::GenAi);

    // A successful call: its arguments and result, as JSON.
    for name in ["summary", "table", "pii_redacted", "remote"] {
        let invoke = spans.invoke_as(Naming::GenAi, summary, name);
        for key in CONTENT_KEYS {
            assert!(attr(invoke, key).is_string(), "{key} of {name}: {invoke:#}");
        }
        for key in ["input.mime_type", "output.mime_type"] {
            assert_eq!(attr(invoke, key), "application/json", "{invoke:#}");
        }
        for key in ["input.value", "output.value"] {
            let text = attr(invoke, key).as_str().unwrap();
            let parsed: Result<Value, _> = serde_json::from_str(text);
            assert!(parsed.is_ok(), "{key} of {name} is not JSON: {text}");
        }
    }
    // The pii_reader's call: the arguments as given, the result as the
    // model got it, PII fields redacted.
    let pii = spans.invoke_as(Naming::GenAi, summary, "pii_redacted");
    let input = attr(pii, "input.value").as_str().unwrap();
    assert!(input.contains("overdue"), "the arguments: {input}");
    let output = attr(pii, "output.value").as_str().unwrap();
    assert!(
        output.contains("[REDACTED]"),
        "the redacted result: {output}"
    );
    // A denied call is an execute_tool span too, with the kernel's error kind.
    let denied = spans.invoke_as(Naming::GenAi, summary, "rate_limited");
    assert_eq!(denied["name"], "execute_tool billing.void_invoice");
    assert_error(denied, "policy_denied");
    assert!(attr(denied, "output.value").is_null(), "{denied:#}");

    // Zero protected values in any span, content included.
    let mut needles = protected_values();
    needles.extend(["@example.com", "+1-555-", "e2e-demo-secret"].map(str::to_owned));
    for span in &spans.all {
        let text = serde_json::to_string(&(
            &span["attributes"],
            &span["events"],
            &span["status_message"],
        ))
        .unwrap();
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{needle:?} leaked into {span:#}"
            );
        }
    }
}

/// Runs the demo into a project of its own and returns its summary and spans.
fn demo_run_in_phoenix(b: &Backends, project: &str, command: Command) -> (Value, Spans) {
    let mut demo = Child::spawn("agent-kernel-demo", command);
    let summary = summary_of(&mut demo, RUN_TIMEOUT);
    let status = demo.wait(RUN_TIMEOUT);
    assert!(
        status.success(),
        "demo failed: {status}\n{}",
        demo.context()
    );
    assert_instrumented(&summary);
    assert_eq!(summary["spans"]["failed"], 0, "{summary}");
    let exported = summary["spans"]["exported"].as_u64().unwrap();
    let all = wait_for_spans(&b.phoenix, project, exported);
    assert_eq!(
        all.len() as u64,
        exported,
        "Phoenix holds exactly what was sent"
    );
    (summary, Spans { all })
}

#[test]
#[ignore = "needs backends: run scripts/test-all.sh"]
fn e2e_demo_genai_names_and_redacted_content_in_phoenix() {
    let b = backends();
    // The opt-ins through the demo's flags and through the environment
    // variables the kernel reads at build: the same spans either way.
    let by_flags = run_id("agent-kernel-genai-flags");
    let by_env = run_id("agent-kernel-genai-env");
    let flags = demo_to_phoenix(&b, &by_flags, &["--genai-conventions", "--capture-content"]);
    let mut env = demo_to_phoenix(&b, &by_env, &[]);
    env.env(
        "OTEL_SEMCONV_STABILITY_OPT_IN",
        "http, gen_ai_latest_experimental",
    )
    .env(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "span_only",
    );
    // Both runs at once (each waits mostly on Phoenix).
    let flags_run = std::thread::spawn({
        let b = b.clone();
        move || demo_run_in_phoenix(&b, &by_flags, flags)
    });
    let (summary, spans) = demo_run_in_phoenix(&b, &by_env, env);
    assert_genai_run_with_content(&spans, &summary);
    let (summary, spans) = flags_run
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert_genai_run_with_content(&spans, &summary);
}

// ── Prometheus ──────────────────────────────────────────────────────────────

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

/// Series keyed by the values of `keys`, which must be exactly their label set.
fn keyed(series: &[Value], keys: &[&str]) -> Result<BTreeMap<Vec<String>, f64>, String> {
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    let mut out = BTreeMap::new();
    for s in series {
        let l = labels(s);
        let got: BTreeSet<&str> = l.keys().map(String::as_str).collect();
        if got != want {
            return Err(format!("label set {got:?}, want {want:?}: {s}"));
        }
        out.insert(keys.iter().map(|k| l[*k].clone()).collect(), value(s));
    }
    Ok(out)
}

/// Polls `query` until its series, keyed by `keys`, equal `want`.
fn expect_series(prometheus: &str, query: &str, keys: &[&str], want: &BTreeMap<Vec<String>, f64>) {
    eventually(&format!("PromQL {query} = {want:?}"), || {
        let got = keyed(&promql(prometheus, query)?, keys)?;
        if &got == want {
            Ok(())
        } else {
            Err(format!("got {got:?}"))
        }
    });
}

/// The `gen_ai.execute_tool.duration` series the scripted session implies
/// (label sets → recordings): `gen_ai.tool.type` where a driver served
/// (`function` in process, `extension` over HTTP), `error.type` (the
/// kernel's error kind) on failures.
fn genai_series(repetitions: u64) -> BTreeMap<BTreeMap<String, String>, f64> {
    let mut out = BTreeMap::new();
    for (cap, _class, status, n) in PER_REPETITION {
        let mut labels = BTreeMap::from([
            (
                "gen_ai_operation_name".to_owned(),
                "execute_tool".to_owned(),
            ),
            ("gen_ai_tool_name".to_owned(), cap.to_owned()),
        ]);
        match (cap, status) {
            (REMINDERS, "success") => {
                labels.insert("gen_ai_tool_type".to_owned(), "extension".to_owned());
            }
            (_, "success") => {
                labels.insert("gen_ai_tool_type".to_owned(), "function".to_owned());
            }
            // Every driver failed: none served.
            (SPEND, "error") => {
                labels.insert("error_type".to_owned(), "driver_error".to_owned());
            }
            (LIST, "denied") => {
                labels.insert("error_type".to_owned(), "budget_exhausted".to_owned());
            }
            (VOID, "denied") => {
                labels.insert("error_type".to_owned(), "policy_denied".to_owned());
            }
            other => panic!("no GenAI series for {other:?}"),
        }
        *out.entry(labels).or_default() += (n * repetitions) as f64;
    }
    out
}

fn key(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

#[test]
#[ignore = "needs backends: run scripts/test-all.sh"]
fn e2e_demo_metrics_in_prometheus() {
    demo_metrics_in_prometheus(Naming::Kernel);
}

#[test]
#[ignore = "needs backends: run scripts/test-all.sh"]
fn e2e_demo_genai_metrics_in_prometheus() {
    demo_metrics_in_prometheus(Naming::GenAi);
}

/// The demo's metrics, scraped by Prometheus: the kernel's four with and
/// without the GenAI opt-in (`--genai-conventions`), and with it the
/// conventions' `gen_ai.execute_tool.duration` as well.
fn demo_metrics_in_prometheus(naming: Naming) {
    const REPETITIONS: u64 = 3;
    let b = backends();
    let run = run_id("demo-metrics");
    let mut command = Command::new(DEMO);
    command
        .args([
            "--invocations",
            &REPETITIONS.to_string(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--hold-secs",
            "600",
        ])
        .args(if naming == Naming::GenAi {
            &["--genai-conventions"][..]
        } else {
            &[]
        })
        .env("OTEL_TRACES_EXPORTER", "none")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_SERVICE_NAME", "agent-kernel-demo");
    let mut demo = Child::spawn("agent-kernel-demo", command);
    let url = demo.line_starting("METRICS ", RUN_TIMEOUT);
    let target = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected METRICS line: {url}"))
        .to_owned();
    let _scraped = scrape(&b.file_sd_dir, &target, &run);
    let summary = summary_of(&mut demo, RUN_TIMEOUT);
    assert_instrumented(&summary);
    assert_eq!(summary["repetitions"], REPETITIONS);

    // What the scripted session implies, and what the demo says it did.
    let mut invocations: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for (cap, class, status, n) in PER_REPETITION {
        invocations.insert(key(&[cap, class, status]), (n * REPETITIONS) as f64);
    }
    let reported: BTreeMap<Vec<String>, f64> = summary["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                key(&[
                    r["capability_id"].as_str().unwrap(),
                    r["safety_class"].as_str().unwrap(),
                    r["status"].as_str().unwrap(),
                ]),
                r["count"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reported, invocations,
        "the demo's own counts = the script's"
    );

    let script_denials: BTreeMap<Vec<String>, f64> = DENIALS_PER_REPETITION
        .iter()
        .map(|(cap, category, stage, n)| (key(&[cap, category, stage]), (n * REPETITIONS) as f64))
        .collect();
    let reported_denials: BTreeMap<Vec<String>, f64> = summary["policy_denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                key(&[
                    r["capability_id"].as_str().unwrap(),
                    r["reason_category"].as_str().unwrap(),
                    r["stage"].as_str().unwrap(),
                ]),
                r["count"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reported_denials, script_denials,
        "the demo's own denials = the script's"
    );
    // `agent_kernel.policy_denials` counts every policy denial, at grant and
    // at invoke (docs/telemetry.md): per (capability, category), both stages.
    let mut denials: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for (cap, category, _stage, n) in DENIALS_PER_REPETITION {
        *denials.entry(key(&[cap, category])).or_default() += (n * REPETITIONS) as f64;
    }

    // Prometheus: the same numbers, with the contract's label sets.
    let q = |metric: &str| format!(r#"{metric}{{e2e_run="{run}"}}"#);
    let p = &b.prometheus;
    expect_series(
        p,
        &q("agent_kernel_invocations_total"),
        &["capability_id", "safety_class", "status"],
        &invocations,
    );
    expect_series(
        p,
        &q("agent_kernel_invocation_duration_milliseconds_count"),
        &["capability_id", "safety_class", "status"],
        &invocations,
    );
    expect_series(
        p,
        &q("agent_kernel_policy_denials_total"),
        &["capability_id", "reason_category"],
        &denials,
    );
    // The histogram's buckets are the contract's: 0.01 ms to 10 s.
    let buckets = eventually("duration buckets", || {
        promql(
            p,
            &format!(
                r#"count by (le) (agent_kernel_invocation_duration_milliseconds_bucket{{e2e_run="{run}"}})"#
            ),
        )
    });
    let bounds: BTreeSet<String> = buckets
        .iter()
        .map(|s| s["metric"]["le"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        bounds.contains("0.01") && bounds.contains("10000") && bounds.contains("+Inf"),
        "{bounds:?}"
    );

    // The budget gauge: each live session at what the kernel says it used.
    let mut budgets: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    let total = summary["session_budget"].as_f64().unwrap();
    for s in summary["sessions"].as_array().unwrap() {
        // Every session ran out: three table answers used the whole budget.
        assert_eq!(
            s["used"].as_f64(),
            Some(total),
            "every session runs out: {s}"
        );
        budgets.insert(key(&[s["session_id"].as_str().unwrap()]), total);
    }
    assert_eq!(budgets.len() as u64, REPETITIONS);
    expect_series(
        p,
        &q("agent_kernel_budget_consumed"),
        &["session_id"],
        &budgets,
    );

    // The GenAI conventions' histogram: only with the opt-in, one series per
    // (tool, tool type, error type) with the conventions' labels and buckets.
    let genai = q("gen_ai_execute_tool_duration_seconds_count");
    match naming {
        Naming::Kernel => assert_eq!(
            promql(p, &genai),
            Err("empty result".to_owned()),
            "gen_ai.execute_tool.duration without the opt-in"
        ),
        Naming::GenAi => {
            let want = genai_series(REPETITIONS);
            eventually(&format!("PromQL {genai} = {want:?}"), || {
                let got: BTreeMap<BTreeMap<String, String>, f64> = promql(p, &genai)?
                    .iter()
                    .map(|s| (labels(s), value(s)))
                    .collect();
                if got == want {
                    Ok(())
                } else {
                    Err(format!("got {got:?}"))
                }
            });
            let buckets = eventually("gen_ai duration buckets", || {
                promql(
                    p,
                    &format!(
                        r#"count by (le) (gen_ai_execute_tool_duration_seconds_bucket{{e2e_run="{run}"}})"#
                    ),
                )
            });
            let bounds: BTreeSet<String> = buckets
                .iter()
                .map(|s| s["metric"]["le"].as_str().unwrap().to_owned())
                .collect();
            let want: BTreeSet<String> = [
                "0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64", "1.28", "2.56", "5.12",
                "10.24", "20.48", "40.96", "81.92", "+Inf",
            ]
            .map(str::to_owned)
            .into();
            assert_eq!(bounds, want, "the conventions' buckets");
        }
    }

    // The demo is still holding /metrics open: stop it.
    drop(demo);
}

// ── two processes ───────────────────────────────────────────────────────────

#[test]
#[ignore = "needs backends: run scripts/test-all.sh"]
fn e2e_two_processes_one_trace() {
    let b = backends();
    let project = run_id("agent-kernel-2proc");
    let mut server_cmd = Command::new(TOOL_SERVER);
    server_cmd
        .args(["--addr", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &b.phoenix_otlp)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_SERVICE_NAME", "billing-tool-server")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            format!("openinference.project.name={project}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let mut server = Child::spawn("tool-server", server_cmd);
    let url = server.line_starting("http://", Duration::from_secs(30));
    let url = format!("http://{url}");

    let mut demo = Child::spawn(
        "agent-kernel-demo",
        demo_to_phoenix(&b, &project, &["--remote-tool", &url]),
    );
    let summary = summary_of(&mut demo, RUN_TIMEOUT);
    let status = demo.wait(RUN_TIMEOUT);
    assert!(
        status.success(),
        "demo failed: {status}\n{}",
        demo.context()
    );
    assert_instrumented(&summary);
    assert_eq!(summary["remote_tool"], url.as_str());
    assert_eq!(summary["remote_tool_in_process"], false);

    // A graceful stop flushes the server's spans.
    let server_pid = server.pid();
    let status = server.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "tool-server exit: {status}\n{}",
        server.context()
    );

    let exported = summary["spans"]["exported"].as_u64().unwrap();
    let all = wait_for_spans(&b.phoenix, &project, exported + 1);
    let spans = Spans { all };
    let servers: Vec<&Value> = spans
        .named("GET /tools/overdue_reminders")
        .into_iter()
        .filter(|s| attr(s, "process.pid") == i64::from(server_pid))
        .collect();
    assert_eq!(
        servers.len(),
        1,
        "one request served by the tool-server process: {servers:#?}"
    );
    let server_span = servers[0];
    assert_ne!(summary["pid"], i64::from(server_pid), "two processes");

    let remote = &summary["actions"]["remote"];
    let invoke = spans.invoke(&summary, "remote");
    assert_eq!(remote["trace_id"], trace_id(invoke));
    let attempt = spans.children_named(invoke, "agent_kernel.driver.execute");
    assert_eq!(attempt.len(), 1, "{attempt:#?}");
    assert_eq!(attr(attempt[0], "agent_kernel.driver_id"), "collections");

    assert_eq!(
        trace_id(server_span),
        trace_id(invoke),
        "one trace across both processes"
    );
    assert_eq!(
        server_span["parent_id"],
        span_id(attempt[0]),
        "the server span's parent is the demo's driver.execute span"
    );
    assert_eq!(attr(server_span, "http.response.status_code"), 200);
}
