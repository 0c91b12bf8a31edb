//! The kernel's telemetry with explicit providers (`instrument_kernel_with`):
//! the invoke tree and its attributes, every error kind and denial category,
//! driver attempts, the raw-mode fallback, `traceparent` on the wire, the
//! budget gauge, exact metric counts, label bounds and 1 000 concurrent
//! invocations. Every test binds its own in-memory providers (`Capture`), so
//! the tests run in parallel without touching the OpenTelemetry globals.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kernel_fixture;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_kernel::otel::{instrument_kernel_with, keys as k};
use agent_kernel::*;
use agent_kernel_tests::{Capture, SpanRecord};
use kernel_fixture::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds a fixture, instruments it with a fresh capture and returns both
/// (and the hook, which must stay alive).
fn instrumented(options: Options) -> (Fixture, Capture, agent_kernel::otel::Instrumentation) {
    let fx = Fixture::with(options);
    let cap = Capture::new();
    let hook = instrument_kernel_with(&fx.kernel, cap.telemetry());
    (fx, cap, hook)
}

fn invoke(fx: &Fixture, req: InvokeRequest<'_>) -> Result<Frame> {
    rt().block_on(fx.kernel.invoke_with(req))
}

/// The invoke root span of the invocation whose action id is `action_id`.
fn invoke_span(all: &[SpanRecord], action_id: &str) -> SpanRecord {
    let found: Vec<&SpanRecord> = all
        .iter()
        .filter(|s| s.name == k::SPAN_INVOKE && s.attr(k::ACTION_ID) == Some(action_id))
        .collect();
    assert_eq!(found.len(), 1, "invoke spans for {action_id}: {all:?}");
    found[0].clone()
}

/// The only invoke span.
fn only_invoke(all: &[SpanRecord]) -> SpanRecord {
    let found = named(all, k::SPAN_INVOKE);
    assert_eq!(found.len(), 1, "{all:?}");
    found[0].clone()
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

fn assert_error(span: &SpanRecord, error_type: &str) {
    assert!(
        span.error.is_some(),
        "{} should be ERROR: {span:?}",
        span.name
    );
    assert_ne!(span.error.as_deref(), Some("ok"));
    assert_eq!(span.attr(k::ERROR_TYPE), Some(error_type), "{span:?}");
    let ev = span
        .event("exception")
        .unwrap_or_else(|| panic!("no exception event on {span:?}"));
    assert!(ev.contains(&("exception.type".to_owned(), error_type.to_owned())));
}

fn assert_unset(span: &SpanRecord) {
    assert_eq!(
        span.error, None,
        "{} status should be unset: {span:?}",
        span.name
    );
    assert_eq!(span.attr(k::ERROR_TYPE), None);
    assert!(span.event("exception").is_none());
}

#[test]
fn invoke_tree_parents_kinds_and_every_attribute() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let token = fx.token(LIST, &fx.analyst);
    let frame = invoke(
        &fx,
        InvokeRequest::new(&token, &fx.analyst)
            .with_mode(ResponseMode::Table)
            .with_session("chat-42"),
    )
    .unwrap();
    let all = cap.spans();

    // One root, three children, one trace.
    let root = invoke_span(&all, &frame.action_id);
    assert!(root.is_root());
    assert_eq!(root.kind, "internal");
    assert_eq!(
        root.scope,
        ("agent_kernel".to_owned(), Some(VERSION.to_owned()))
    );
    let tree: Vec<&SpanRecord> = all.iter().filter(|s| s.trace_id == root.trace_id).collect();
    assert_eq!(tree.len(), 4, "{tree:?}");
    assert_eq!(
        child_names(&all, &root),
        [
            k::SPAN_POLICY_EVALUATE,
            k::SPAN_DRIVER_EXECUTE,
            k::SPAN_FIREWALL_APPLY
        ],
        "children in end order"
    );
    for s in &tree {
        assert_unset(s);
        assert_eq!(s.scope.0, "agent_kernel");
    }

    // invoke: every attribute of the contract, nothing else.
    assert_eq!(
        keys(&root),
        sorted(&[
            k::PRINCIPAL_ID,
            k::CAPABILITY_ID,
            k::SAFETY_CLASS,
            k::SENSITIVITY,
            k::RESPONSE_MODE,
            k::EFFECTIVE_RESPONSE_MODE,
            k::ACTION_ID,
            k::SESSION_ID,
            k::DRIVER_ID,
            k::GEN_AI_OPERATION_NAME,
            k::GEN_AI_TOOL_NAME,
            k::GEN_AI_TOOL_CALL_ID,
            k::GEN_AI_TOOL_TYPE,
            k::GEN_AI_TOOL_DESCRIPTION,
            k::GEN_AI_CONVERSATION_ID,
            k::OPENINFERENCE_SPAN_KIND,
            k::TOOL_NAME,
            k::TOOL_DESCRIPTION,
            k::OPENINFERENCE_SESSION_ID,
        ])
    );
    let want = [
        (k::PRINCIPAL_ID, "analyst-001"),
        (k::CAPABILITY_ID, LIST),
        (k::SAFETY_CLASS, "READ"),
        (k::SENSITIVITY, "PII"),
        (k::RESPONSE_MODE, "table"),
        (k::EFFECTIVE_RESPONSE_MODE, "table"),
        (k::ACTION_ID, frame.action_id.as_str()),
        (k::SESSION_ID, "chat-42"),
        (k::DRIVER_ID, "billing"),
        (k::GEN_AI_OPERATION_NAME, "execute_tool"),
        (k::GEN_AI_TOOL_NAME, LIST),
        (k::GEN_AI_TOOL_CALL_ID, frame.action_id.as_str()),
        (k::GEN_AI_TOOL_TYPE, "function"),
        (k::GEN_AI_TOOL_DESCRIPTION, "Look up invoices"),
        (k::GEN_AI_CONVERSATION_ID, "chat-42"),
        (k::OPENINFERENCE_SPAN_KIND, "TOOL"),
        (k::TOOL_NAME, LIST),
        (k::TOOL_DESCRIPTION, "Look up invoices"),
        (k::OPENINFERENCE_SESSION_ID, "chat-42"),
    ];
    for (key, value) in want {
        assert_eq!(root.attr(key), Some(value), "{key}");
    }

    let policy = in_trace(&all, &root.trace_id, k::SPAN_POLICY_EVALUATE)[0];
    assert_eq!(policy.kind, "internal");
    assert_eq!(
        keys(policy),
        sorted(&[k::CAPABILITY_ID, k::DECISION, k::OPENINFERENCE_SPAN_KIND])
    );
    assert_eq!(policy.attr(k::OPENINFERENCE_SPAN_KIND), Some("GUARDRAIL"));
    assert_eq!(policy.attr(k::CAPABILITY_ID), Some(LIST));
    assert_eq!(policy.attr(k::DECISION), Some("allow"));

    let driver = in_trace(&all, &root.trace_id, k::SPAN_DRIVER_EXECUTE)[0];
    assert_eq!(driver.kind, "internal");
    assert_eq!(keys(driver), sorted(&[k::DRIVER_ID, k::ATTEMPT]));
    assert_eq!(driver.attr(k::DRIVER_ID), Some("billing"));
    assert_eq!(driver.attr(k::ATTEMPT), Some("1"));

    let fw = in_trace(&all, &root.trace_id, k::SPAN_FIREWALL_APPLY)[0];
    assert_eq!(fw.kind, "internal");
    assert_eq!(
        keys(fw),
        sorted(&[
            k::RESPONSE_MODE,
            k::EFFECTIVE_RESPONSE_MODE,
            k::ROWS_IN,
            k::ROWS_OUT,
            k::REDACTIONS,
            k::CHARS,
            k::OPENINFERENCE_SPAN_KIND,
        ])
    );
    assert_eq!(fw.attr(k::OPENINFERENCE_SPAN_KIND), Some("GUARDRAIL"));
    assert_eq!(fw.attr(k::RESPONSE_MODE), Some("table"));
    assert_eq!(fw.attr(k::EFFECTIVE_RESPONSE_MODE), Some("table"));
    assert_eq!(fw.attr(k::ROWS_IN), Some("5"));
    assert_eq!(
        fw.attr(k::ROWS_OUT),
        Some(frame.table_preview.len().to_string().as_str())
    );
    let redactions: usize = fw.attr(k::REDACTIONS).unwrap().parse().unwrap();
    assert!(
        redactions >= 2,
        "two e-mail addresses in allowed fields: {redactions}"
    );
    let chars: usize = fw.attr(k::CHARS).unwrap().parse().unwrap();
    assert!(chars > 0);

    // Correlation: the audit record carries the invoke span's ids.
    let trace = fx.kernel.explain(&frame.action_id).unwrap();
    assert_eq!(trace.trace_id.as_deref(), Some(root.trace_id.as_str()));
    assert_eq!(trace.span_id.as_deref(), Some(root.span_id.as_str()));
    // Nothing of the tool output or the arguments is on any span.
    for s in &all {
        for (key, value) in &s.attrs {
            assert!(!value.contains("example.com"), "{}: {key}={value}", s.name);
        }
    }
}

#[test]
fn session_id_only_when_set_and_handle_only_mode() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let token = fx.token(LIST, &fx.analyst);
    let frame = invoke(
        &fx,
        InvokeRequest::new(&token, &fx.analyst).with_mode(ResponseMode::HandleOnly),
    )
    .unwrap();
    let all = cap.spans();
    let root = invoke_span(&all, &frame.action_id);
    assert_eq!(root.attr(k::SESSION_ID), None);
    assert_eq!(root.attr(k::RESPONSE_MODE), Some("handle_only"));
    let fw = in_trace(&all, &root.trace_id, k::SPAN_FIREWALL_APPLY)[0];
    assert_eq!(fw.attr(k::RESPONSE_MODE), Some("handle_only"));
    assert_eq!(fw.attr(k::ROWS_OUT), Some("0"));
}

#[test]
fn grant_expand_and_explain_spans() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let grant = fx
        .kernel
        .grant_capability(&CapabilityRequest::new(LIST, "invoices"), &fx.analyst, "")
        .unwrap();
    let frame = invoke(&fx, InvokeRequest::new(&grant.token, &fx.analyst)).unwrap();
    let handle = frame.handle.clone().unwrap();
    let query = ExpandQuery {
        limit: Some(2),
        ..ExpandQuery::default()
    };
    let expanded = fx.kernel.expand(&handle, &query, &fx.analyst).unwrap();
    fx.kernel.explain(&frame.action_id).unwrap();
    let all = cap.spans();

    let g = named(&all, k::SPAN_GRANT);
    assert_eq!(g.len(), 1);
    let g = g[0];
    assert!(g.is_root());
    assert_unset(g);
    assert_eq!(
        keys(g),
        sorted(&[k::PRINCIPAL_ID, k::CAPABILITY_ID, k::SAFETY_CLASS])
    );
    assert_eq!(g.attr(k::PRINCIPAL_ID), Some("analyst-001"));
    assert_eq!(g.attr(k::CAPABILITY_ID), Some(LIST));
    assert_eq!(g.attr(k::SAFETY_CLASS), Some("READ"));
    assert_eq!(child_names(&all, g), [k::SPAN_POLICY_EVALUATE]);
    let gp = children(&all, g)[0];
    assert_eq!(gp.attr(k::DECISION), Some("allow"));

    let e = named(&all, k::SPAN_EXPAND);
    assert_eq!(e.len(), 1);
    let e = e[0];
    assert!(e.is_root());
    assert_eq!(
        keys(e),
        sorted(&[
            k::PRINCIPAL_ID,
            k::CAPABILITY_ID,
            k::HANDLE_ID,
            k::ROWS_RETURNED
        ])
    );
    assert_eq!(e.attr(k::HANDLE_ID), Some(handle.handle_id.as_str()));
    assert_eq!(e.attr(k::ROWS_RETURNED), Some("2"));
    assert_eq!(expanded.table_preview.len(), 2);
    assert_eq!(child_names(&all, e), [k::SPAN_FIREWALL_APPLY]);

    let x = named(&all, k::SPAN_EXPLAIN);
    assert_eq!(x.len(), 1);
    assert!(x[0].is_root());
    assert_eq!(keys(x[0]), sorted(&[k::ACTION_ID]));
    assert_eq!(x[0].attr(k::ACTION_ID), Some(frame.action_id.as_str()));

    // Errors there too: an unknown action id, another principal's handle.
    assert_eq!(
        fx.kernel
            .explain("0f8fad5b-d9cb-469f-a165-70867728950e")
            .unwrap_err()
            .kind(),
        "trace_not_found"
    );
    let intruder = Principal::new("mallory").with_roles(["reader"]);
    assert!(fx.kernel.expand(&handle, &query, &intruder).is_err());
    let all = cap.spans();
    let x = named(&all, k::SPAN_EXPLAIN);
    assert_error(x[1], "trace_not_found");
    let e = named(&all, k::SPAN_EXPAND);
    assert_error(e[1], "handle_access_denied");
}

#[test]
fn token_errors_revoked_expired_tampered() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let revoked = fx.token(LIST, &fx.analyst);
    fx.kernel.revoke_token(&revoked.token_id).unwrap();
    let mut tampered = fx.token(LIST, &fx.analyst);
    tampered.constraints.max_rows = Some(100_000);
    let expired = fx.token(LIST, &fx.analyst);
    let cases = [
        (&revoked, "token_revoked"),
        (&tampered, "token_invalid"),
        (&expired, "token_expired"),
    ];
    for (i, (token, kind)) in cases.iter().enumerate() {
        if *kind == "token_expired" {
            fx.clock.advance(DEFAULT_TOKEN_TTL + Duration::from_secs(1));
        }
        let err = invoke(&fx, InvokeRequest::new(token, &fx.analyst)).unwrap_err();
        assert_eq!(err.kind(), *kind);
        let all = cap.spans();
        let roots = named(&all, k::SPAN_INVOKE);
        assert_eq!(roots.len(), i + 1);
        let root = roots[i];
        assert_error(root, kind);
        // The description is redacted: no signature, no secret, no reason text.
        let description = root.error.clone().unwrap();
        assert!(!description.contains(&token.signature), "{description}");
        assert!(!description.contains(SECRET));
        assert_eq!(
            child_names(&all, root),
            [k::SPAN_POLICY_EVALUATE],
            "no driver, no firewall"
        );
        let policy = children(&all, root)[0];
        assert_error(policy, kind);
        assert_eq!(policy.attr(k::DECISION), Some("deny"));
        assert_eq!(policy.attr(k::REASON_CATEGORY), None, "not a policy denial");
        // The audit record still points at the span.
        let action_id = root.attr(k::ACTION_ID).unwrap();
        assert!(!action_id.is_empty());
    }
    let labels = [
        (k::LABEL_CAPABILITY_ID, LIST),
        (k::LABEL_SAFETY_CLASS, "READ"),
        (k::LABEL_STATUS, "error"),
    ];
    assert_eq!(cap.count(k::METRIC_INVOCATIONS, &labels), 3);
    assert_eq!(cap.count(k::METRIC_INVOCATION_DURATION, &labels), 3);
    assert!(
        cap.points()
            .iter()
            .all(|p| p.name != k::METRIC_POLICY_DENIALS)
    );
}

/// Invoke-time denials: missing_role, missing_tenant_attribute,
/// invalid_constraint (and rate_limited, budget_exhausted in their own tests).
#[test]
fn invoke_denials_by_category() {
    let (fx, cap, _hook) = instrumented(Options::default());
    // missing_role: the clerk lost the writer role since the grant.
    let refund = fx.token(REFUND, &fx.clerk);
    let demoted = Principal::new("clerk-7").with_attribute("tenant", "acme");
    // missing_tenant_attribute: the analyst lost the tenant attribute.
    let list = fx.token(LIST, &fx.analyst);
    let no_tenant = Principal::new("analyst-001").with_roles(["reader"]);
    // invalid_constraint: granted as pii_reader (no allowed_fields signed), invoked without.
    let auditor = Principal::new("auditor-3")
        .with_roles(["reader", "pii_reader"])
        .with_attribute("tenant", "acme");
    let wide = fx.token(LIST, &auditor);
    let auditor_now = Principal::new("auditor-3")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");

    let cases = [
        (&refund, &demoted, REFUND, "WRITE", "missing_role"),
        (&list, &no_tenant, LIST, "READ", "missing_tenant_attribute"),
        (&wide, &auditor_now, LIST, "READ", "invalid_constraint"),
    ];
    for (token, principal, capability, safety, category) in cases {
        let err = invoke(&fx, InvokeRequest::new(token, principal)).unwrap_err();
        assert_eq!(
            err.denial_category().map(DenialCategory::as_str),
            Some(category)
        );
        let all = cap.spans();
        let root = *named(&all, k::SPAN_INVOKE).last().unwrap();
        assert_error(root, "policy_denied");
        assert_eq!(root.attr(k::CAPABILITY_ID), Some(capability));
        assert_eq!(child_names(&all, root), [k::SPAN_POLICY_EVALUATE]);
        let policy = children(&all, root)[0];
        assert_error(policy, "policy_denied");
        assert_eq!(policy.attr(k::DECISION), Some("deny"));
        assert_eq!(policy.attr(k::REASON_CATEGORY), Some(category));
        // The denial reason (free text naming roles and ids) is not on the span.
        assert!(!root.error.clone().unwrap().contains("roles"));
        assert_eq!(
            cap.count(
                k::METRIC_POLICY_DENIALS,
                &[
                    (k::LABEL_CAPABILITY_ID, capability),
                    (k::LABEL_REASON_CATEGORY, category)
                ]
            ),
            1,
            "{category}"
        );
        let labels = [
            (k::LABEL_CAPABILITY_ID, capability),
            (k::LABEL_SAFETY_CLASS, safety),
            (k::LABEL_STATUS, "denied"),
        ];
        assert!(cap.count(k::METRIC_INVOCATIONS, &labels) >= 1);
        // The audit record is denied, with the span's ids.
        let action_id = root.attr(k::ACTION_ID).unwrap();
        let trace = fx.kernel.explain(action_id).unwrap();
        assert_eq!(trace.outcome, TraceOutcome::Denied);
        assert_eq!(trace.trace_id.as_deref(), Some(root.trace_id.as_str()));
        assert_eq!(trace.span_id.as_deref(), Some(root.span_id.as_str()));
    }
    let denied = |c, s| {
        cap.count(
            k::METRIC_INVOCATIONS,
            &[
                (k::LABEL_CAPABILITY_ID, c),
                (k::LABEL_SAFETY_CLASS, s),
                (k::LABEL_STATUS, "denied"),
            ],
        )
    };
    assert_eq!(denied(REFUND, "WRITE"), 1);
    assert_eq!(denied(LIST, "READ"), 2);
}

#[test]
fn rate_limited_at_grant_and_at_invoke() {
    let (fx, cap, _hook) = instrumented(Options {
        read_limit: 1,
        ..Options::default()
    });
    let token = fx.token(LIST, &fx.analyst);
    // Grant scope: the second grant within the window is refused.
    let err = fx
        .kernel
        .get_token(&CapabilityRequest::new(LIST, "again"), &fx.analyst, "")
        .unwrap_err();
    assert_eq!(err.denial_category(), Some(DenialCategory::RateLimited));
    // Invoke scope: the first invoke passes, the second is refused.
    invoke(&fx, InvokeRequest::new(&token, &fx.analyst)).unwrap();
    let err = invoke(&fx, InvokeRequest::new(&token, &fx.analyst)).unwrap_err();
    assert_eq!(err.denial_category(), Some(DenialCategory::RateLimited));

    let all = cap.spans();
    let grants = named(&all, k::SPAN_GRANT);
    assert_eq!(grants.len(), 2);
    assert_unset(grants[0]);
    assert_error(grants[1], "policy_denied");
    let gp = children(&all, grants[1])[0];
    assert_eq!(gp.attr(k::REASON_CATEGORY), Some("rate_limited"));
    let invokes = named(&all, k::SPAN_INVOKE);
    assert_unset(invokes[0]);
    assert_error(invokes[1], "policy_denied");
    let ip = children(&all, invokes[1])[0];
    assert_eq!(ip.attr(k::REASON_CATEGORY), Some("rate_limited"));
    // Both denials count.
    let labels = [
        (k::LABEL_CAPABILITY_ID, LIST),
        (k::LABEL_REASON_CATEGORY, "rate_limited"),
    ];
    assert_eq!(cap.count(k::METRIC_POLICY_DENIALS, &labels), 2);
    let status = |s| {
        cap.count(
            k::METRIC_INVOCATIONS,
            &[
                (k::LABEL_CAPABILITY_ID, LIST),
                (k::LABEL_SAFETY_CLASS, "READ"),
                (k::LABEL_STATUS, s),
            ],
        )
    };
    assert_eq!(
        (status("success"), status("denied"), status("error")),
        (1, 1, 0)
    );
}

/// Grant-time denials: every category the grant policy can produce.
#[test]
fn grant_denials_by_category() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let no_tenant = Principal::new("analyst-002").with_roles(["reader"]);
    let cases: Vec<(CapabilityRequest, &Principal, &str, &str)> = vec![
        (
            CapabilityRequest::new(REFUND, "refund"),
            &fx.analyst,
            JUSTIFICATION,
            "missing_role",
        ),
        (
            CapabilityRequest::new(REFUND, "refund"),
            &fx.clerk,
            "too short",
            "insufficient_justification",
        ),
        (
            CapabilityRequest::new(LIST, "invoices"),
            &no_tenant,
            "",
            "missing_tenant_attribute",
        ),
        (
            CapabilityRequest::new(LIST, "invoices")
                .with_constraint("max_rows", serde_json::json!("lots")),
            &fx.analyst,
            "",
            "invalid_constraint",
        ),
    ];
    for (i, (request, principal, justification, category)) in cases.iter().enumerate() {
        let err = fx
            .kernel
            .grant_capability(request, principal, justification)
            .unwrap_err();
        assert_eq!(
            err.denial_category().map(DenialCategory::as_str),
            Some(*category)
        );
        let all = cap.spans();
        let grants = named(&all, k::SPAN_GRANT);
        assert_eq!(grants.len(), i + 1);
        let g = grants[i];
        assert!(g.is_root());
        assert_error(g, "policy_denied");
        assert_eq!(
            g.attr(k::CAPABILITY_ID),
            Some(request.capability_id.as_str())
        );
        assert_eq!(child_names(&all, g), [k::SPAN_POLICY_EVALUATE]);
        let p = children(&all, g)[0];
        assert_error(p, "policy_denied");
        assert_eq!(p.attr(k::DECISION), Some("deny"));
        assert_eq!(p.attr(k::REASON_CATEGORY), Some(*category));
        let labels = [
            (k::LABEL_CAPABILITY_ID, request.capability_id.as_str()),
            (k::LABEL_REASON_CATEGORY, *category),
        ];
        assert_eq!(
            cap.count(k::METRIC_POLICY_DENIALS, &labels),
            1,
            "{category}"
        );
    }
    // A grant for an unregistered capability: an error, labelled _OTHER, no policy child.
    let err = fx
        .kernel
        .grant_capability(&CapabilityRequest::new(UNREGISTERED, "x"), &fx.analyst, "")
        .unwrap_err();
    assert_eq!(err.kind(), "capability_not_found");
    let all = cap.spans();
    let g = *named(&all, k::SPAN_GRANT).last().unwrap();
    assert_error(g, "capability_not_found");
    assert_eq!(g.attr(k::CAPABILITY_ID), Some(k::OTHER));
    assert_eq!(g.attr(k::SAFETY_CLASS), Some(k::OTHER));
    assert!(children(&all, g).is_empty());
    // Grants never count as invocations.
    assert!(cap.points().iter().all(|p| p.name != k::METRIC_INVOCATIONS));
}

#[test]
fn failing_first_driver_gives_two_attempts() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let token = fx.token(FLAKY, &fx.analyst);
    let frame = invoke(&fx, InvokeRequest::new(&token, &fx.analyst)).unwrap();
    let all = cap.spans();
    let root = invoke_span(&all, &frame.action_id);
    assert_unset(&root);
    assert_eq!(root.attr(k::DRIVER_ID), Some("billing"));
    assert_eq!(
        child_names(&all, &root),
        [
            k::SPAN_POLICY_EVALUATE,
            k::SPAN_DRIVER_EXECUTE,
            k::SPAN_DRIVER_EXECUTE,
            k::SPAN_FIREWALL_APPLY
        ]
    );
    let attempts = in_trace(&all, &root.trace_id, k::SPAN_DRIVER_EXECUTE);
    assert_eq!(attempts[0].attr(k::ATTEMPT), Some("1"));
    assert_eq!(attempts[0].attr(k::DRIVER_ID), Some("broken"));
    assert_error(attempts[0], "driver_error");
    assert_eq!(attempts[0].error.as_deref(), Some("driver 'broken' failed"));
    assert_eq!(attempts[1].attr(k::ATTEMPT), Some("2"));
    assert_eq!(attempts[1].attr(k::DRIVER_ID), Some("billing"));
    assert_unset(attempts[1]);
    let labels = [
        (k::LABEL_CAPABILITY_ID, FLAKY),
        (k::LABEL_SAFETY_CLASS, "READ"),
        (k::LABEL_STATUS, "success"),
    ];
    assert_eq!(cap.count(k::METRIC_INVOCATIONS, &labels), 1);
}

#[test]
fn all_drivers_failing() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let token = fx.token(DEAD, &fx.analyst);
    let err = invoke(&fx, InvokeRequest::new(&token, &fx.analyst)).unwrap_err();
    assert_eq!(err.kind(), "driver_error");
    let all = cap.spans();
    let root = only_invoke(&all);
    assert_error(&root, "driver_error");
    // The driver's message (it may quote input or output) is not on the span.
    let description = root.error.clone().unwrap();
    assert!(!description.contains("handler"), "{description}");
    assert_eq!(root.attr(k::DRIVER_ID), None, "no driver served");
    assert_eq!(
        child_names(&all, &root),
        [
            k::SPAN_POLICY_EVALUATE,
            k::SPAN_DRIVER_EXECUTE,
            k::SPAN_DRIVER_EXECUTE
        ],
        "no firewall"
    );
    let attempts = in_trace(&all, &root.trace_id, k::SPAN_DRIVER_EXECUTE);
    for (i, (a, id)) in attempts.iter().zip(["broken", "broken2"]).enumerate() {
        assert_error(a, "driver_error");
        assert_eq!(a.attr(k::DRIVER_ID), Some(id));
        assert_eq!(a.attr(k::ATTEMPT), Some((i + 1).to_string().as_str()));
    }
    let labels = [
        (k::LABEL_CAPABILITY_ID, DEAD),
        (k::LABEL_SAFETY_CLASS, "READ"),
        (k::LABEL_STATUS, "error"),
    ];
    assert_eq!(cap.count(k::METRIC_INVOCATIONS, &labels), 1);
    assert_eq!(cap.count(k::METRIC_INVOCATION_DURATION, &labels), 1);
    let action_id = root.attr(k::ACTION_ID).unwrap();
    let trace = fx.kernel.explain(action_id).unwrap();
    assert_eq!(trace.outcome, TraceOutcome::DriverError);
    assert_eq!(trace.span_id.as_deref(), Some(root.span_id.as_str()));
}

#[test]
fn raw_mode_fallback_is_visible_on_firewall_apply() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let token = fx.token(LIST, &fx.analyst);
    let frame = invoke(
        &fx,
        InvokeRequest::new(&token, &fx.analyst).with_mode(ResponseMode::Raw),
    )
    .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Summary);
    assert_eq!(
        frame
            .warnings
            .iter()
            .filter(|w| w.contains("raw mode requires admin"))
            .count(),
        1,
        "one fallback warning: {:?}",
        frame.warnings
    );
    assert!(frame.handle.is_some(), "a summary keeps its handle");
    let all = cap.spans();
    let root = invoke_span(&all, &frame.action_id);
    assert_eq!(root.attr(k::RESPONSE_MODE), Some("raw"));
    assert_eq!(root.attr(k::EFFECTIVE_RESPONSE_MODE), Some("summary"));
    let fw = in_trace(&all, &root.trace_id, k::SPAN_FIREWALL_APPLY)[0];
    assert_eq!(fw.attr(k::RESPONSE_MODE), Some("raw"));
    assert_eq!(fw.attr(k::EFFECTIVE_RESPONSE_MODE), Some("summary"));

    // An admin gets raw, and both spans say so.
    let admin = Principal::new("root-1")
        .with_roles(["admin"])
        .with_attribute("tenant", "acme");
    let token = fx.token(LIST, &admin);
    let frame = invoke(
        &fx,
        InvokeRequest::new(&token, &admin).with_mode(ResponseMode::Raw),
    )
    .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Raw);
    let all = cap.spans();
    let root = invoke_span(&all, &frame.action_id);
    assert_eq!(root.attr(k::EFFECTIVE_RESPONSE_MODE), Some("raw"));
    let fw = in_trace(&all, &root.trace_id, k::SPAN_FIREWALL_APPLY)[0];
    assert_eq!(fw.attr(k::RESPONSE_MODE), Some("raw"));
    assert_eq!(fw.attr(k::EFFECTIVE_RESPONSE_MODE), Some("raw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_driver_is_a_client_span_and_sends_traceparent() {
    use axum::{Json, Router, http::HeaderMap, routing::get};

    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let app = Router::new().route(
        "/invoices",
        get({
            let seen = Arc::clone(&seen);
            move |headers: HeaderMap| {
                let seen = Arc::clone(&seen);
                async move {
                    let tp = headers
                        .get("traceparent")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    seen.lock().unwrap().push(tp);
                    Json(serde_json::json!([{"id": "INV-9", "status": "paid"}]))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (fx, cap, _hook) = instrumented(Options::default());
    fx.kernel
        .register_driver(HttpDriver::new("remote").unwrap().with_endpoint(
            REMOTE,
            HttpEndpoint::new("GET", &format!("http://{addr}/invoices")).unwrap(),
        ));
    let token = fx.token(REMOTE, &fx.analyst);
    let frame = fx
        .kernel
        .invoke_with(InvokeRequest::new(&token, &fx.analyst).with_mode(ResponseMode::Table))
        .await
        .unwrap();
    assert_eq!(frame.table_preview.len(), 1);
    server.abort();

    let all = cap.spans();
    let root = invoke_span(&all, &frame.action_id);
    let driver = in_trace(&all, &root.trace_id, k::SPAN_DRIVER_EXECUTE);
    assert_eq!(driver.len(), 1);
    let driver = driver[0];
    assert_eq!(driver.kind, "client");
    assert!(root.is_parent_of(driver));
    assert_eq!(driver.attr(k::DRIVER_ID), Some("remote"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let tp = seen[0].clone().expect("traceparent header on the request");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], driver.trace_id, "trace id on the wire");
    assert_eq!(
        parts[2], driver.span_id,
        "parent span id on the wire = driver.execute"
    );
    assert_eq!(parts[3], "01", "sampled");
}

#[test]
fn budget_gauge_follows_a_session_through_use_and_exhaustion() {
    let (fx, cap, hook) = instrumented(Options {
        budget: BudgetConfig {
            total_budget: 120,
            default_request: 4_000,
            max_sessions: 16,
        },
        ..Options::default()
    });
    let gauge = |session: &str| -> Option<u64> {
        let found: Vec<u64> = cap
            .points()
            .iter()
            .filter(|p| p.name == k::METRIC_BUDGET_CONSUMED)
            .filter(|p| p.labels == [(k::LABEL_SESSION_ID.to_owned(), session.to_owned())])
            .map(|p| p.count)
            .collect();
        assert!(found.len() <= 1);
        found.first().copied()
    };
    let gauge_points = || {
        cap.points()
            .iter()
            .filter(|p| p.name == k::METRIC_BUDGET_CONSUMED)
            .count()
    };
    assert_eq!(gauge_points(), 0, "no live session yet");
    let token = fx.token(LIST, &fx.analyst);
    let mut previous = 0;
    let mut successes = 0;
    let err = loop {
        match invoke(
            &fx,
            InvokeRequest::new(&token, &fx.analyst).with_session("s-1"),
        ) {
            Ok(_) => {
                successes += 1;
                let used = fx.kernel.budget().usage("s-1").unwrap().used;
                assert_eq!(gauge("s-1"), Some(used), "gauge equals the session's use");
                assert!(used > previous, "use grows: {previous} → {used}");
                previous = used;
                assert!(successes < 50, "budget never ran out");
            }
            Err(e) => break e,
        }
    };
    assert!(successes >= 1);
    assert_eq!(err.kind(), "budget_exhausted");
    // The frame that did not fit what was left was refused (after its
    // driver ran), not charged past the budget.
    let used = fx.kernel.budget().usage("s-1").unwrap().used;
    assert!(used <= 120, "{used}");
    assert_eq!(gauge("s-1"), Some(used), "exhausted: what was charged");

    let all = cap.spans();
    let root = *named(&all, k::SPAN_INVOKE).last().unwrap();
    assert_error(root, "budget_exhausted");
    assert_eq!(root.attr(k::SESSION_ID), Some("s-1"));
    // The check after the firewall ("does this frame fit?") is a policy
    // evaluation of its own: the denial is on it, and counted as one.
    let policies: Vec<&SpanRecord> = children(&all, root)
        .into_iter()
        .filter(|s| s.name == k::SPAN_POLICY_EVALUATE)
        .collect();
    assert_eq!(policies.len(), 2, "before the driver, after the firewall");
    assert_eq!(policies[0].attr(k::DECISION), Some("allow"));
    assert_error(policies[1], "budget_exhausted");
    assert_eq!(
        policies[1].attr(k::REASON_CATEGORY),
        Some("budget_exhausted")
    );
    assert_eq!(
        cap.count(
            k::METRIC_POLICY_DENIALS,
            &[
                (k::LABEL_CAPABILITY_ID, LIST),
                (k::LABEL_REASON_CATEGORY, "budget_exhausted")
            ]
        ),
        1
    );
    let status = |s| {
        cap.count(
            k::METRIC_INVOCATIONS,
            &[
                (k::LABEL_CAPABILITY_ID, LIST),
                (k::LABEL_SAFETY_CLASS, "READ"),
                (k::LABEL_STATUS, s),
            ],
        )
    };
    assert_eq!((status("success"), status("denied")), (successes, 1));

    // An ended session stops being reported; another one is.
    assert!(fx.kernel.budget().end_session("s-1"));
    invoke(
        &fx,
        InvokeRequest::new(&token, &fx.analyst).with_session("s-2"),
    )
    .unwrap();
    assert_eq!(gauge("s-1"), None);
    assert!(gauge("s-2").unwrap() > 0);
    assert_eq!(gauge_points(), 1);

    // After the hook drops, the gauge reports nothing.
    drop(hook);
    assert_eq!(gauge_points(), 0);
    assert!(
        fx.kernel.telemetry().is_global(),
        "back to the default binding"
    );
}

#[test]
fn exact_counter_and_histogram_counts_and_bounded_labels() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let list = fx.token(LIST, &fx.analyst);
    let dead = fx.token(DEAD, &fx.analyst);
    let no_tenant = Principal::new("analyst-001").with_roles(["reader"]);
    // A token for a capability the registry does not know (signed by the kernel's key).
    let stray = fx.kernel.token_provider().issue(
        UNREGISTERED,
        "analyst-001",
        Constraints::default(),
        None,
        "audit-x",
    );
    for _ in 0..3 {
        invoke(&fx, InvokeRequest::new(&list, &fx.analyst)).unwrap();
    }
    for _ in 0..2 {
        invoke(&fx, InvokeRequest::new(&dead, &fx.analyst)).unwrap_err();
    }
    invoke(&fx, InvokeRequest::new(&list, &no_tenant)).unwrap_err();
    let err = invoke(&fx, InvokeRequest::new(&stray, &fx.analyst)).unwrap_err();
    assert_eq!(err.kind(), "capability_not_found");

    let points = cap.points();
    let mut got: HashMap<(String, Vec<(String, String)>), u64> = HashMap::new();
    for p in &points {
        if p.name == k::METRIC_INVOCATIONS
            || p.name == k::METRIC_INVOCATION_DURATION
            || p.name == k::METRIC_POLICY_DENIALS
        {
            *got.entry((p.name.clone(), p.labels.clone())).or_default() += p.count;
        }
    }
    let key = |name: &str, labels: &[(&str, &str)]| {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        l.sort();
        (name.to_owned(), l)
    };
    fn inv<'a>(c: &'a str, s: &'a str, st: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            (k::LABEL_CAPABILITY_ID, c),
            (k::LABEL_SAFETY_CLASS, s),
            (k::LABEL_STATUS, st),
        ]
    }
    let mut want: HashMap<(String, Vec<(String, String)>), u64> = HashMap::new();
    for (labels, n) in [
        (inv(LIST, "READ", "success"), 3),
        (inv(DEAD, "READ", "error"), 2),
        (inv(LIST, "READ", "denied"), 1),
        (inv(k::OTHER, k::OTHER, "error"), 1),
    ] {
        want.insert(key(k::METRIC_INVOCATIONS, &labels), n);
        want.insert(key(k::METRIC_INVOCATION_DURATION, &labels), n);
    }
    want.insert(
        key(
            k::METRIC_POLICY_DENIALS,
            &[
                (k::LABEL_CAPABILITY_ID, LIST),
                (k::LABEL_REASON_CATEGORY, "missing_tenant_attribute"),
            ],
        ),
        1,
    );
    assert_eq!(got, want);

    for p in &points {
        // principal_id is never a label; every label value is from a bounded set.
        assert!(
            p.labels
                .iter()
                .all(|(key, _)| key != "principal_id" && !key.contains("principal"))
        );
        assert!(
            p.labels
                .iter()
                .all(|(_, v)| v != UNREGISTERED && v != "analyst-001")
        );
        if p.name == k::METRIC_INVOCATION_DURATION {
            assert_eq!(p.unit, "ms");
            assert_eq!(p.bounds, k::DURATION_BUCKETS_MS);
            assert!(p.sum > 0.0);
        }
    }
    // The unknown capability is _OTHER on the span too.
    let all = cap.spans();
    let root = *named(&all, k::SPAN_INVOKE).last().unwrap();
    assert_eq!(root.attr(k::CAPABILITY_ID), Some(k::OTHER));
    assert_eq!(root.attr(k::GEN_AI_TOOL_NAME), Some(k::OTHER));
    assert_eq!(
        root.attr(k::PRINCIPAL_ID),
        Some("analyst-001"),
        "principal_id lives on spans"
    );
}

#[test]
fn invoke_inside_a_callers_span_is_its_child() {
    use agent_kernel_otel::opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use agent_kernel_otel::opentelemetry::{Context, context::FutureExt};

    let (fx, cap, _hook) = instrumented(Options::default());
    let token = fx.token(LIST, &fx.analyst);

    // A caller's context, e.g. extracted from an incoming request's traceparent.
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let parent_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let remote = SpanContext::new(
        trace_id,
        parent_id,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = Context::current().with_remote_span_context(remote);
    let frame = rt()
        .block_on(
            fx.kernel
                .invoke_with(InvokeRequest::new(&token, &fx.analyst))
                .with_context(cx),
        )
        .unwrap();
    let all = cap.spans();
    let root = invoke_span(&all, &frame.action_id);
    assert_eq!(root.trace_id, trace_id.to_string());
    assert_eq!(root.parent_span_id, parent_id.to_string());
    assert_eq!(children(&all, &root).len(), 3);

    // A caller's own #[kernel_span] span, bound to the same providers.
    #[agent_kernel_otel::kernel_span(name = "app.handle_request", telemetry = telemetry)]
    async fn handle_request(
        telemetry: &agent_kernel_otel::Telemetry,
        fx: &Fixture,
        token: &CapabilityToken,
    ) -> Result<Frame> {
        fx.kernel
            .invoke_with(InvokeRequest::new(token, &fx.analyst))
            .await
    }
    let frame = rt()
        .block_on(handle_request(&cap.telemetry(), &fx, &token))
        .unwrap();
    let all = cap.spans();
    let caller = named(&all, "app.handle_request")[0];
    let root = invoke_span(&all, &frame.action_id);
    assert!(caller.is_parent_of(&root));
    assert!(caller.is_root());
    let trace = fx.kernel.explain(&frame.action_id).unwrap();
    assert_eq!(
        trace.span_id.as_deref(),
        Some(root.span_id.as_str()),
        "the invoke span, not the caller's"
    );
}

#[test]
fn one_thousand_concurrent_invokes_make_disjoint_trees() {
    const N: usize = 1_000;
    let (fx, cap, _hook) = instrumented(Options::default());
    let token = Arc::new(fx.token(SLOW, &fx.analyst));
    let principal = Arc::new(fx.analyst.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let action_ids: Vec<String> = runtime.block_on(async {
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let kernel = Arc::clone(&fx.kernel);
                let token = Arc::clone(&token);
                let principal = Arc::clone(&principal);
                tokio::spawn(async move {
                    kernel
                        .invoke(&token, &principal, Args::new(), ResponseMode::Table)
                        .await
                        .map(|f| f.action_id)
                })
            })
            .collect();
        let mut ids = Vec::with_capacity(N);
        for t in tasks {
            ids.push(t.await.unwrap().unwrap());
        }
        ids
    });
    // Leave out the grant's tree (made by `fx.token` above).
    let spans = cap.spans();
    let grant_trace = named(&spans, k::SPAN_GRANT)[0].trace_id.clone();
    let all: Vec<SpanRecord> = spans
        .into_iter()
        .filter(|s| s.trace_id != grant_trace)
        .collect();
    assert_eq!(all.len(), 4 * N, "one root and three children per invoke");
    let mut by_trace: HashMap<&str, Vec<&SpanRecord>> = HashMap::new();
    for s in &all {
        by_trace.entry(s.trace_id.as_str()).or_default().push(s);
    }
    assert_eq!(by_trace.len(), N, "one trace per invoke");
    let by_span: HashMap<&str, &SpanRecord> = all.iter().map(|s| (s.span_id.as_str(), s)).collect();
    assert_eq!(by_span.len(), 4 * N, "span ids are unique");
    for spans in by_trace.values() {
        let roots: Vec<&&SpanRecord> = spans.iter().filter(|s| s.is_root()).collect();
        assert_eq!(roots.len(), 1);
        let root = roots[0];
        assert_eq!(root.name, k::SPAN_INVOKE);
        let mut names: Vec<&str> = spans
            .iter()
            .filter(|s| !s.is_root())
            .map(|s| {
                assert!(
                    root.is_parent_of(s),
                    "cross-parenting: {s:?} not under {root:?}"
                );
                s.name.as_str()
            })
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                k::SPAN_DRIVER_EXECUTE,
                k::SPAN_FIREWALL_APPLY,
                k::SPAN_POLICY_EVALUATE
            ]
        );
    }
    // Every audit record points at its own invoke span.
    let mut seen = std::collections::HashSet::new();
    for id in &action_ids {
        let trace = fx.kernel.explain(id).unwrap();
        let span_id = trace.span_id.clone().unwrap();
        let root = by_span[span_id.as_str()];
        assert_eq!(root.name, k::SPAN_INVOKE);
        assert_eq!(root.attr(k::ACTION_ID), Some(id.as_str()));
        assert_eq!(trace.trace_id.as_deref(), Some(root.trace_id.as_str()));
        assert!(seen.insert(span_id));
    }
    let labels = [
        (k::LABEL_CAPABILITY_ID, SLOW),
        (k::LABEL_SAFETY_CLASS, "READ"),
        (k::LABEL_STATUS, "success"),
    ];
    assert_eq!(cap.count(k::METRIC_INVOCATIONS, &labels), N as u64);
    assert_eq!(cap.count(k::METRIC_INVOCATION_DURATION, &labels), N as u64);
}

#[test]
fn instrumenting_is_idempotent_and_per_kernel() {
    let fx = Fixture::new();
    let other = Fixture::new();
    let a = Capture::new();
    let b = Capture::new();
    let hook = instrument_kernel_with(&fx.kernel, a.telemetry());
    let again = instrument_kernel_with(&fx.kernel, a.telemetry());
    assert!(again.telemetry().same_binding(hook.telemetry()));
    let _other_hook = instrument_kernel_with(&other.kernel, b.telemetry());
    let t1 = fx.token(LIST, &fx.analyst);
    let t2 = other.token(LIST, &other.analyst);
    invoke(&fx, InvokeRequest::new(&t1, &fx.analyst)).unwrap();
    invoke(&other, InvokeRequest::new(&t2, &other.analyst)).unwrap();
    assert_eq!(named(&a.spans(), k::SPAN_INVOKE).len(), 1);
    assert_eq!(named(&b.spans(), k::SPAN_INVOKE).len(), 1);
    // One clone dropped: still hooked. Both dropped: unhooked.
    drop(again);
    assert!(!fx.kernel.telemetry().is_global());
    hook.unhook();
    assert!(fx.kernel.telemetry().is_global());
    invoke(&fx, InvokeRequest::new(&t1, &fx.analyst)).unwrap();
    assert_eq!(
        named(&a.spans(), k::SPAN_INVOKE).len(),
        1,
        "unhooked kernel reports to the (no-op) globals"
    );
}

#[test]
fn a_binding_given_to_the_builder_needs_no_instrument_call() {
    let cap = Capture::new();
    let fx = Fixture::with(Options {
        telemetry: Some(cap.telemetry()),
        ..Options::default()
    });
    assert!(fx.kernel.telemetry().same_binding(&cap.telemetry()));
    let token = fx.token(LIST, &fx.analyst);
    let frame = invoke(
        &fx,
        InvokeRequest::new(&token, &fx.analyst).with_session("s-built"),
    )
    .unwrap();
    // The whole tree, the per-call metrics and the budget gauge go to the
    // builder's providers.
    let all = cap.spans();
    let root = invoke_span(&all, &frame.action_id);
    for stage in [
        k::SPAN_POLICY_EVALUATE,
        k::SPAN_DRIVER_EXECUTE,
        k::SPAN_FIREWALL_APPLY,
    ] {
        let spans = in_trace(&all, &root.trace_id, stage);
        assert_eq!(spans.len(), 1, "{stage}: {all:?}");
        assert!(root.is_parent_of(spans[0]), "{stage}");
    }
    let labels = [
        (k::LABEL_CAPABILITY_ID, LIST),
        (k::LABEL_SAFETY_CLASS, "READ"),
        (k::LABEL_STATUS, "success"),
    ];
    assert_eq!(cap.count(k::METRIC_INVOCATIONS, &labels), 1);
    let used = fx.kernel.budget().usage("s-built").unwrap().used;
    assert_eq!(
        cap.count(
            k::METRIC_BUDGET_CONSUMED,
            &[(k::LABEL_SESSION_ID, "s-built")]
        ),
        used
    );
    // instrument_kernel_with the same binding is an idempotent rebind: it
    // returns the builder's hook, and dropping that copy unhooks nothing.
    let again = instrument_kernel_with(&fx.kernel, cap.telemetry());
    assert!(again.telemetry().same_binding(&cap.telemetry()));
    drop(again);
    assert!(fx.kernel.telemetry().same_binding(&cap.telemetry()));
    invoke(&fx, InvokeRequest::new(&token, &fx.analyst)).unwrap();
    assert_eq!(named(&cap.spans(), k::SPAN_INVOKE).len(), 2);
}

#[test]
fn content_is_captured_only_when_switched_on_and_after_the_firewall() {
    let capture_keys = [
        k::GEN_AI_TOOL_CALL_ARGUMENTS,
        k::GEN_AI_TOOL_CALL_RESULT,
        k::INPUT_VALUE,
        k::OUTPUT_VALUE,
        k::INPUT_MIME_TYPE,
        k::OUTPUT_MIME_TYPE,
    ];
    // Off (the default): none of the content keys, whatever the call.
    let (fx, cap, _hook) = instrumented(Options::default());
    let token = fx.token(LIST, &fx.analyst);
    let frame = invoke(
        &fx,
        InvokeRequest::new(&token, &fx.analyst)
            .with_arg("status", "open")
            .with_mode(ResponseMode::Table),
    )
    .unwrap();
    let root = invoke_span(&cap.spans(), &frame.action_id);
    for key in capture_keys {
        assert_eq!(root.attr(key), None, "{key} recorded with capture off");
    }
    assert_eq!(root.attr(k::OPENINFERENCE_SPAN_KIND), Some("TOOL"));
    assert_eq!(root.attr(k::GEN_AI_TOOL_TYPE), Some("function"));

    // On: the arguments (redacted; free text withheld) and the frame.
    let (fx, cap, _hook) = instrumented(Options {
        capture: agent_kernel::otel::ContentCapture::on(),
        ..Options::default()
    });
    let token = fx.token(LIST, &fx.analyst);
    let frame = invoke(
        &fx,
        InvokeRequest::new(&token, &fx.analyst)
            .with_arg("status", "open")
            .with_arg("contact", "jane.doe@example.com")
            .with_arg("note", "call her back about the refund")
            .with_mode(ResponseMode::Table)
            .with_tool_call_id("call_9f2Kx"),
    )
    .unwrap();
    let root = invoke_span(&cap.spans(), &frame.action_id);
    assert_eq!(root.attr(k::GEN_AI_TOOL_CALL_ID), Some("call_9f2Kx"));
    let input: serde_json::Value =
        serde_json::from_str(root.attr(k::INPUT_VALUE).unwrap()).unwrap();
    assert_eq!(input["status"], "open");
    assert_eq!(input["contact"], "[REDACTED]");
    assert_eq!(input["note"], "[WITHHELD: 30 chars]");
    assert_eq!(
        root.attr(k::GEN_AI_TOOL_CALL_ARGUMENTS),
        root.attr(k::INPUT_VALUE)
    );
    let output: serde_json::Value =
        serde_json::from_str(root.attr(k::OUTPUT_VALUE).unwrap()).unwrap();
    assert_eq!(output["action_id"], frame.action_id.as_str());
    assert_eq!(output["response_mode"], "table");
    assert_eq!(
        output["table_preview"].as_array().map(Vec::len),
        Some(frame.table_preview.len())
    );
    assert!(
        output.get("provenance").is_none(),
        "no caller ids in the capture"
    );
    assert_eq!(
        root.attr(k::GEN_AI_TOOL_CALL_RESULT),
        root.attr(k::OUTPUT_VALUE)
    );
    assert_eq!(root.attr(k::INPUT_MIME_TYPE), Some("application/json"));
    assert_eq!(root.attr(k::OUTPUT_MIME_TYPE), Some("application/json"));
    let all = cap.spans();
    for span in all.iter().filter(|s| s.trace_id == root.trace_id) {
        let text = format!("{span:?}");
        assert!(!text.contains("jane.doe"), "{text}");
        assert!(!text.contains("refund"), "{text}");
    }

    // A tool-call id that is not an id: refused before any driver runs.
    let err = invoke(
        &fx,
        InvokeRequest::new(&token, &fx.analyst).with_tool_call_id("call 1; DROP TABLE"),
    )
    .unwrap_err();
    assert_eq!(err.kind(), "invalid_argument");
    assert!(!err.to_string().contains("DROP"), "{err}");
}

#[test]
fn with_the_genai_opt_in_tool_calls_are_execute_tool_spans_and_measured() {
    let (fx, cap, _hook) = instrumented(Options {
        genai: true,
        ..Options::default()
    });
    let token = fx.token(LIST, &fx.analyst);
    let frame = invoke(&fx, InvokeRequest::new(&token, &fx.analyst)).unwrap();
    let all = cap.spans();
    let root = all
        .iter()
        .find(|s| s.attr(k::ACTION_ID) == Some(frame.action_id.as_str()) && s.is_root())
        .unwrap();
    assert_eq!(root.name, format!("execute_tool {LIST}"));
    assert_eq!(root.attr(k::GEN_AI_OPERATION_NAME), Some("execute_tool"));
    // The kernel's own names stay on the children.
    assert_eq!(
        in_trace(&all, &root.trace_id, k::SPAN_POLICY_EVALUATE).len(),
        1
    );
    // Denied (another principal's token): still an execute_tool span.
    let err = invoke(&fx, InvokeRequest::new(&token, &fx.clerk)).unwrap_err();
    assert_eq!(err.kind(), "token_principal_mismatch");
    let denied = named(&cap.spans(), &format!("execute_tool {LIST}")).len();
    assert_eq!(denied, 2);
    // A validly signed token for an unknown capability: `_OTHER`.
    let stray = fx.kernel.token_provider().issue(
        "no.such.tool",
        &fx.analyst.principal_id,
        Constraints::default(),
        None,
        "audit-stray",
    );
    invoke(&fx, InvokeRequest::new(&stray, &fx.analyst)).unwrap_err();
    assert_eq!(named(&cap.spans(), "execute_tool _OTHER").len(), 1);
    // The histogram: seconds, per tool, with the conventions' labels.
    let ok = [
        (k::GEN_AI_OPERATION_NAME, "execute_tool"),
        (k::GEN_AI_TOOL_NAME, LIST),
        (k::GEN_AI_TOOL_TYPE, "function"),
    ];
    assert_eq!(cap.count(k::METRIC_GEN_AI_EXECUTE_TOOL_DURATION, &ok), 1);
    let refused = [
        (k::GEN_AI_OPERATION_NAME, "execute_tool"),
        (k::GEN_AI_TOOL_NAME, LIST),
        (k::ERROR_TYPE, "token_principal_mismatch"),
    ];
    assert_eq!(
        cap.count(k::METRIC_GEN_AI_EXECUTE_TOOL_DURATION, &refused),
        1
    );
    let unknown = [
        (k::GEN_AI_OPERATION_NAME, "execute_tool"),
        (k::GEN_AI_TOOL_NAME, k::OTHER),
        (k::ERROR_TYPE, "capability_not_found"),
    ];
    assert_eq!(
        cap.count(k::METRIC_GEN_AI_EXECUTE_TOOL_DURATION, &unknown),
        1
    );
    // The kernel's own metrics keep their names.
    assert_eq!(
        cap.count(
            k::METRIC_INVOCATIONS,
            &[
                (k::LABEL_CAPABILITY_ID, LIST),
                (k::LABEL_SAFETY_CLASS, "READ"),
                (k::LABEL_STATUS, "success"),
            ]
        ),
        1
    );
}

#[test]
fn without_the_opt_in_there_is_no_genai_metric_and_the_names_stay() {
    let (fx, cap, _hook) = instrumented(Options::default());
    let token = fx.token(LIST, &fx.analyst);
    invoke(&fx, InvokeRequest::new(&token, &fx.analyst)).unwrap();
    assert_eq!(named(&cap.spans(), k::SPAN_INVOKE).len(), 1);
    assert!(
        cap.points()
            .iter()
            .all(|p| p.name != k::METRIC_GEN_AI_EXECUTE_TOOL_DURATION)
    );
}
