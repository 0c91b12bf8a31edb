//! End-to-end behaviour of the kernel: discover → grant → invoke → expand → explain,
//! denials, token failures, the invoke-time policy, handles, traces and budgets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use agent_kernel::*;
use common::*;
use serde_json::{Value, json};

fn list_token(k: &Kernel, p: &Principal) -> CapabilityToken {
    k.get_token(&CapabilityRequest::new(LIST, "list invoices"), p, "")
        .unwrap()
}

fn query(v: Value) -> ExpandQuery {
    ExpandQuery::from_json(&v).unwrap()
}

#[tokio::test]
async fn full_flow_discover_grant_invoke_expand_explain() {
    let f = fixture();
    let k = &f.kernel;
    let p = reader();

    let found = k.request_capabilities("list invoices");
    assert_eq!(found[0].capability_id, LIST);

    let grant = k.grant_capability(&found[0], &p, "").unwrap();
    assert!(grant.decision.allowed);
    assert_eq!(grant.token.audit_id, grant.audit_id);
    assert_eq!(grant.token.capability_id, LIST);
    assert_eq!(grant.token.principal_id, p.principal_id);
    assert_eq!(grant.token.constraints.max_rows, Some(50));
    assert_eq!(
        grant
            .token
            .constraints
            .allowed_fields
            .as_deref()
            .map(<[String]>::len),
        Some(6)
    );
    assert_eq!(
        grant.token.expires_at.as_millis() - grant.token.issued_at.as_millis(),
        3_600_000
    );

    let frame = k
        .invoke(&grant.token, &p, list_args(), ResponseMode::Summary)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Summary);
    assert!(!frame.action_id.is_empty());
    assert!(!frame.facts.is_empty());
    assert!(frame.table_preview.is_empty());
    assert!(frame.raw_data.is_none());
    assert_eq!(frame.provenance.principal_id, p.principal_id);
    assert_eq!(frame.provenance.action_id, frame.action_id);
    let handle = frame.handle.clone().unwrap();
    assert_eq!(handle.total_rows, 30);
    assert_eq!(handle.capability_id, LIST);
    assert!(!leaks_email(&frame_json(&frame)));

    let trace = k.explain(&frame.action_id).unwrap();
    assert_eq!(trace.capability_id, LIST);
    assert_eq!(trace.principal_id, p.principal_id);
    assert_eq!(trace.token_id, grant.token.token_id);
    assert_eq!(trace.driver_id, "billing");
    assert_eq!(trace.handle_id.as_deref(), Some(handle.handle_id.as_str()));
    assert_eq!(trace.outcome, TraceOutcome::Success);
    assert_eq!(trace.args, list_args());
    assert_eq!(trace.requested_mode, ResponseMode::Summary);
    assert!(trace.error.is_none());
    assert!(trace.duration.is_some());
    assert!(trace.trace_id.is_none() && trace.span_id.is_none());

    let expanded = k
        .expand(&handle, &query(json!({"offset": 0, "limit": 2})), &p)
        .unwrap();
    assert_eq!(expanded.table_preview.len(), 2);
    assert_eq!(expanded.response_mode, ResponseMode::Table);
    // Audited as its own action; the provenance names the invocation.
    assert_eq!(expanded.provenance.action_id, frame.action_id);
    assert_ne!(expanded.action_id, frame.action_id);
    let audit = k.explain(&expanded.action_id).unwrap();
    assert_eq!(audit.handle_id.as_deref(), Some(handle.handle_id.as_str()));
    assert_eq!(audit.outcome, TraceOutcome::Success);
    assert_eq!(expanded.table_preview[0]["id"], "INV-0001");
}

#[tokio::test]
async fn table_mode_respects_allowed_fields_and_max_rows() {
    let f = fixture();
    let p = reader();
    let token = list_token(&f.kernel, &p);
    let frame = f
        .kernel
        .invoke(&token, &p, list_args(), ResponseMode::Table)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Table);
    assert_eq!(frame.table_preview.len(), 30);
    let allowed = [
        "id",
        "customer_name",
        "amount",
        "currency",
        "status",
        "date",
    ];
    for row in &frame.table_preview {
        assert!(row.keys().all(|k| allowed.contains(&k.as_str())), "{row:?}");
    }
    assert!(!leaks_email(&frame_json(&frame)));
    assert!(frame.handle.is_some());

    let small = f
        .kernel
        .get_token(
            &CapabilityRequest::new(LIST, "x").with_constraint("max_rows", json!(5)),
            &p,
            "",
        )
        .unwrap();
    let frame = f
        .kernel
        .invoke(&small, &p, list_args(), ResponseMode::Table)
        .await
        .unwrap();
    assert_eq!(frame.table_preview.len(), 5);
}

#[tokio::test]
async fn handle_only_mode_returns_only_the_handle() {
    let f = fixture();
    let p = reader();
    let token = list_token(&f.kernel, &p);
    let frame = f
        .kernel
        .invoke(&token, &p, list_args(), ResponseMode::HandleOnly)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::HandleOnly);
    assert!(frame.facts.is_empty() && frame.table_preview.is_empty() && frame.raw_data.is_none());
    assert_eq!(frame.handle.unwrap().total_rows, 30);
}

#[tokio::test]
async fn raw_mode_is_admin_only() {
    let f = fixture();
    let p = reader();
    let token = list_token(&f.kernel, &p);
    let frame = f
        .kernel
        .invoke(&token, &p, list_args(), ResponseMode::Raw)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Summary);
    assert!(frame.raw_data.is_none());
    assert!(
        frame
            .warnings
            .iter()
            .any(|w| w.contains("raw mode requires admin")),
        "{:?}",
        frame.warnings
    );
    assert!(
        frame.handle.is_some(),
        "a non-admin falling back to summary still gets a handle"
    );
    assert_eq!(
        f.kernel.explain(&frame.action_id).unwrap().requested_mode,
        ResponseMode::Raw
    );

    let a = admin();
    let token = list_token(&f.kernel, &a);
    let frame = f
        .kernel
        .invoke(&token, &a, list_args(), ResponseMode::Raw)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Raw);
    assert!(frame.handle.is_none(), "raw results are not stored");
    let raw = frame.raw_data.unwrap();
    assert_eq!(raw.as_array().unwrap().len(), 30);
    // an admin without pii_reader still gets only the allowed fields, redacted
    assert!(raw[0].get("email").is_none());
    assert!(!leaks_email(&raw));
    assert!(
        f.kernel
            .explain(&frame.action_id)
            .unwrap()
            .handle_id
            .is_none()
    );
}

#[test]
fn grant_denials_carry_categories() {
    let f = fixture();
    let k = &f.kernel;
    let deny = |cap: &str, p: &Principal, j: &str| -> &'static str {
        let err = k
            .get_token(&CapabilityRequest::new(cap, "g"), p, j)
            .unwrap_err();
        assert_eq!(err.kind(), "policy_denied");
        err.denial_category().unwrap().as_str()
    };
    assert_eq!(deny(UPDATE, &reader(), JUSTIFICATION), "missing_role");
    assert_eq!(
        deny(UPDATE, &writer(), "too short"),
        "insufficient_justification"
    );
    assert_eq!(deny(DELETE, &writer(), JUSTIFICATION), "missing_role");
    assert_eq!(deny(DELETE, &admin(), ""), "insufficient_justification");
    assert_eq!(
        deny(LIST, &Principal::new("x").with_roles(["reader"]), ""),
        "missing_tenant_attribute"
    );
    let update = k
        .get_token(
            &CapabilityRequest::new(UPDATE, "g"),
            &writer(),
            JUSTIFICATION,
        )
        .unwrap();
    assert_eq!(
        (update.capability_id.as_str(), update.principal_id.as_str()),
        (UPDATE, "writer-001")
    );
    let delete = k
        .get_token(
            &CapabilityRequest::new(DELETE, "g"),
            &admin(),
            JUSTIFICATION,
        )
        .unwrap();
    assert_eq!(
        (delete.capability_id.as_str(), delete.principal_id.as_str()),
        (DELETE, "admin-001")
    );
    let err = k
        .get_token(&CapabilityRequest::new("billing.nope", "g"), &reader(), "")
        .unwrap_err();
    assert_eq!(err.kind(), "capability_not_found");
    assert!(err.to_string().contains("billing.nope"));
}

#[tokio::test]
async fn token_failures_are_distinct_and_audited() {
    let f = fixture();
    let k = &f.kernel;
    let p = reader();
    let token = list_token(k, &p);

    // another principal (confused deputy)
    let mallory = Principal::new("mallory")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");
    let err = k
        .invoke(&token, &mallory, list_args(), ResponseMode::Summary)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "token_principal_mismatch");
    assert!(err.to_string().contains("mallory"));

    // tampered constraints: dropping allowed_fields breaks the signature
    let mut tampered = token.clone();
    tampered.constraints.allowed_fields = None;
    let err = k
        .invoke(&tampered, &p, list_args(), ResponseMode::Table)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "token_invalid");

    // signed by another kernel's secret
    let other = fixture_with(None, |b| b.secret("a-completely-different-secret-value"));
    let foreign = list_token(&other.kernel, &p);
    assert_eq!(
        k.invoke(&foreign, &p, list_args(), ResponseMode::Summary)
            .await
            .unwrap_err()
            .kind(),
        "token_invalid"
    );

    // transport round trip still verifies
    let wire = token.to_json().unwrap();
    let back = CapabilityToken::from_json(&wire).unwrap();
    assert_eq!(back, token);
    let frame = k
        .invoke(&back, &p, list_args(), ResponseMode::Summary)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Summary);
    assert_eq!(
        k.explain(&frame.action_id).unwrap().token_id,
        token.token_id
    );

    // revoked
    k.revoke_token(&token.token_id).unwrap();
    assert_eq!(
        k.invoke(&token, &p, list_args(), ResponseMode::Summary)
            .await
            .unwrap_err()
            .kind(),
        "token_revoked"
    );

    // expired after an hour
    let fresh = list_token(k, &p);
    f.clock.advance(Duration::from_secs(3600));
    let err = k
        .invoke(&fresh, &p, list_args(), ResponseMode::Summary)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "token_expired");
    assert!(err.to_string().contains(&fresh.token_id));

    // every refusal is audited beside the one success, as denied
    let all = k.traces().list_all();
    let outcomes: Vec<TraceOutcome> = all.iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        [
            TraceOutcome::Denied,
            TraceOutcome::Denied,
            TraceOutcome::Denied,
            TraceOutcome::Success,
            TraceOutcome::Denied,
            TraceOutcome::Denied,
        ]
    );
    let errors: Vec<&str> = all
        .iter()
        .filter_map(|t| t.error.as_deref())
        .map(|e| e.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(errors.len(), 5);
    assert!(
        all.iter()
            .all(|t| t.principal_id != "mallory" || t.token_id == token.token_id)
    );
}

#[tokio::test]
async fn revoke_all_counts_newly_revoked() {
    let f = fixture();
    let k = &f.kernel;
    let p = reader();
    let t1 = list_token(k, &p);
    let t2 = list_token(k, &p);
    let t3 = list_token(k, &p);
    let other = list_token(k, &admin());
    k.revoke_token(&t2.token_id).unwrap();
    k.revoke_token(&t2.token_id).unwrap(); // idempotent
    assert_eq!(k.revoke_all(&p.principal_id).unwrap(), 2);
    assert_eq!(k.revoke_all(&p.principal_id).unwrap(), 0);
    for t in [&t1, &t3] {
        assert_eq!(
            k.invoke(t, &p, list_args(), ResponseMode::Summary)
                .await
                .unwrap_err()
                .kind(),
            "token_revoked"
        );
    }
    let frame = k
        .invoke(&other, &admin(), list_args(), ResponseMode::Summary)
        .await
        .unwrap();
    assert_eq!(
        k.explain(&frame.action_id).unwrap().token_id,
        other.token_id
    );
    // tokens issued afterwards work
    f.clock.advance(Duration::from_millis(1));
    let t4 = list_token(k, &p);
    let frame = k
        .invoke(&t4, &p, list_args(), ResponseMode::Summary)
        .await
        .unwrap();
    assert_eq!(k.explain(&frame.action_id).unwrap().token_id, t4.token_id);
}

#[tokio::test]
async fn change_invoke_is_rate_limited_so_tokens_cannot_be_replayed() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    let policy = DefaultPolicyEngine::builder()
        .clock(clock.clone())
        .rate_limit(SafetyClass::Read, 3, minute())
        .build()
        .unwrap();
    let f = fixture_with(Some(policy), |b| b.clock(clock.clone()));
    let k = &f.kernel;
    let p = reader();
    let token = list_token(k, &p);
    for _ in 0..3 {
        k.invoke(&token, &p, list_args(), ResponseMode::Summary)
            .await
            .unwrap();
    }
    let err = k
        .invoke(&token, &p, list_args(), ResponseMode::Summary)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "policy_denied", "{err}");
    assert_eq!(err.denial_category(), Some(DenialCategory::RateLimited));
    // the denial is audited
    let last = k.traces().list_all().last().cloned().unwrap();
    assert_eq!(last.outcome, TraceOutcome::Denied);
    assert_eq!(last.denial_category, Some(DenialCategory::RateLimited));
    assert!(last.error.as_deref().unwrap().contains("rate limit"));
    clock.advance(minute());
    let frame = k
        .invoke(&token, &p, list_args(), ResponseMode::Summary)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Summary);
    assert_eq!(
        k.traces().list_all().last().unwrap().action_id,
        frame.action_id
    );
}

#[tokio::test]
async fn change_invoke_reevaluates_roles_and_signed_constraints() {
    let f = fixture();
    let k = &f.kernel;
    // granted while a pii_reader (no allowed_fields signed) …
    let before = reader().with_roles(["reader", "pii_reader"]);
    let token = list_token(k, &before);
    assert!(token.constraints.allowed_fields.is_none());
    let frame = k
        .invoke(&token, &before, list_args(), ResponseMode::Table)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Table);
    assert_eq!(frame.table_preview.len(), 30);
    assert_eq!(frame.table_preview[0]["email"], "[REDACTED]");
    // … then the role is withdrawn: the token no longer carries what the policy requires
    let after = reader();
    let err = k
        .invoke(&token, &after, list_args(), ResponseMode::Table)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "policy_denied", "{err}");
    assert_eq!(
        err.denial_category(),
        Some(DenialCategory::InvalidConstraint)
    );

    // a writer demoted after the grant
    let w = writer();
    let token = k
        .get_token(&CapabilityRequest::new(UPDATE, "fix"), &w, JUSTIFICATION)
        .unwrap();
    let frame = k
        .invoke(&token, &w, op("update_invoice"), ResponseMode::Summary)
        .await
        .unwrap();
    assert_eq!(frame.response_mode, ResponseMode::Summary);
    let trace = k.explain(&frame.action_id).unwrap();
    assert_eq!(
        (trace.capability_id.as_str(), trace.outcome),
        (UPDATE, TraceOutcome::Success)
    );
    let demoted = Principal {
        roles: vec!["reader".into()],
        ..w.clone()
    };
    let err = k
        .invoke(
            &token,
            &demoted,
            op("update_invoice"),
            ResponseMode::Summary,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "policy_denied", "{err}");
    assert_eq!(err.denial_category(), Some(DenialCategory::MissingRole));

    // tenant attribute removed
    let p = reader();
    let token = list_token(k, &p);
    let no_tenant = Principal::new(p.principal_id.clone()).with_roles(["reader"]);
    let err = k
        .invoke(&token, &no_tenant, list_args(), ResponseMode::Summary)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "policy_denied", "{err}");
    assert_eq!(
        err.denial_category(),
        Some(DenialCategory::MissingTenantAttribute)
    );
}

#[tokio::test]
async fn change_expand_is_principal_bound() {
    let f = fixture();
    let p = reader();
    let token = list_token(&f.kernel, &p);
    let frame = f
        .kernel
        .invoke(&token, &p, list_args(), ResponseMode::HandleOnly)
        .await
        .unwrap();
    let handle = frame.handle.unwrap();
    let mallory = Principal::new("mallory")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");
    let err = f
        .kernel
        .expand(&handle, &ExpandQuery::default(), &mallory)
        .unwrap_err();
    assert_eq!(err.kind(), "handle_access_denied");
    assert_eq!(
        err.denial_category(),
        Some(DenialCategory::HandlePrincipalMismatch)
    );
    let own = f
        .kernel
        .expand(&handle, &ExpandQuery::default(), &p)
        .unwrap();
    assert_eq!(own.provenance.action_id, frame.action_id);
    assert_eq!(own.table_preview.len(), 30);
}

#[tokio::test]
async fn change_expand_goes_through_the_firewall_with_the_tokens_constraints() {
    let f = fixture();
    // A reader: the token's allowed_fields apply to expansions too.
    let p = reader();
    let token = list_token(&f.kernel, &p);
    let frame = f
        .kernel
        .invoke(&token, &p, list_args(), ResponseMode::Summary)
        .await
        .unwrap();
    let handle = frame.handle.unwrap();
    let out = f
        .kernel
        .expand(&handle, &ExpandQuery::default(), &p)
        .unwrap();
    assert_eq!(out.table_preview.len(), 30);
    for row in &out.table_preview {
        assert!(
            row.get("email").is_none() && row.get("phone").is_none() && row.get("notes").is_none()
        );
    }
    assert!(!leaks_email(&frame_json(&out)));
    // asking for a field outside allowed_fields, or filtering on one, is refused
    for q in [
        json!({"fields": ["email"]}),
        json!({"filter": {"email": "alice.smith4@example.com"}}),
    ] {
        let err = f.kernel.expand(&handle, &query(q), &p).unwrap_err();
        assert_eq!(err.kind(), "policy_denied", "{err}");
        assert_eq!(
            err.denial_category(),
            Some(DenialCategory::InvalidConstraint)
        );
    }

    // A pii_reader sees all fields, but still redacted: field names and inline e-mails.
    let pii = reader().with_roles(["reader", "pii_reader"]);
    let token = list_token(&f.kernel, &pii);
    let frame = f
        .kernel
        .invoke(&token, &pii, list_args(), ResponseMode::Summary)
        .await
        .unwrap();
    let out = f
        .kernel
        .expand(
            frame.handle.as_ref().unwrap(),
            &ExpandQuery::default(),
            &pii,
        )
        .unwrap();
    let row = &out.table_preview[0];
    assert_eq!(row["email"], "[REDACTED]");
    assert!(row["notes"].as_str().unwrap().contains("[REDACTED]"));
    assert!(
        !leaks_email(&frame_json(&out)),
        "expansions must not hand out what invoke removed"
    );
    assert!(!out.warnings.is_empty(), "redactions are reported");

    // A filter compares against what the caller can see, never the raw value:
    // guessing a hidden e-mail address (as a field or inside text) matches nothing.
    let handle = frame.handle.clone().unwrap();
    for q in [
        json!({"filter": {"email": "alice.smith4@example.com"}}),
        json!({"filter": {"notes": "contact alice.smith4@example.com about this one"}}),
    ] {
        let out = f.kernel.expand(&handle, &query(q), &pii).unwrap();
        assert!(
            out.table_preview.is_empty(),
            "a filter on a redacted value must not act as an oracle"
        );
    }
    // ... while filters on visible values still work.
    let out = f
        .kernel
        .expand(&handle, &query(json!({"filter": {"id": "INV-0004"}})), &pii)
        .unwrap();
    assert_eq!(out.table_preview.len(), 1);
}

#[tokio::test]
async fn expand_filter_offset_limit_fields_and_row_cap() {
    let f = fixture();
    let p = reader();
    let token = f
        .kernel
        .get_token(
            &CapabilityRequest::new(LIST, "x").with_constraint("max_rows", json!(5)),
            &p,
            "",
        )
        .unwrap();
    let handle = f
        .kernel
        .invoke(&token, &p, list_args(), ResponseMode::HandleOnly)
        .await
        .unwrap()
        .handle
        .unwrap();
    let k = &f.kernel;

    let paid = k
        .expand(
            &handle,
            &query(json!({"filter": {"status": "paid"}, "limit": 3})),
            &p,
        )
        .unwrap();
    assert_eq!(paid.table_preview.len(), 3);
    assert!(paid.table_preview.iter().all(|r| r["status"] == "paid"));

    let two_filters = query(json!({"filter": {"status": "paid", "currency": "USD"}}));
    let both = k.expand(&handle, &two_filters, &p).unwrap();
    assert!(
        both.table_preview
            .iter()
            .all(|r| r["status"] == "paid" && r["currency"] == "USD")
    );
    assert!(!both.table_preview.is_empty());

    let page = k
        .expand(
            &handle,
            &query(json!({"offset": 10, "limit": 2, "fields": ["id", "amount"]})),
            &p,
        )
        .unwrap();
    assert_eq!(page.table_preview.len(), 2);
    assert_eq!(page.table_preview[0]["id"], "INV-0011");
    assert_eq!(page.table_preview[0].len(), 2);

    // the token's max_rows (5) caps what an expansion returns
    let capped = k
        .expand(&handle, &query(json!({"limit": 100})), &p)
        .unwrap();
    assert_eq!(capped.table_preview.len(), 5);
    assert!(
        capped.warnings.iter().any(|w| w.contains("max_rows")),
        "{:?}",
        capped.warnings
    );

    let past_end = k
        .expand(&handle, &query(json!({"offset": 1000})), &p)
        .unwrap();
    assert!(past_end.table_preview.is_empty());

    // The error names what is wrong, never the caller's value (an unknown
    // key is named, redacted).
    for (bad, named, value) in [
        (
            json!({"limit": "ten"}),
            "invalid type: string, expected usize",
            "ten",
        ),
        (json!({"unknown": 1}), "unknown field `unknown`", "\u{1}"),
    ] {
        let err = ExpandQuery::from_json(&bad).unwrap_err();
        assert_eq!(err.kind(), "invalid_argument", "{err}");
        assert!(err.to_string().contains(named), "{err}");
        assert!(!err.to_string().contains(value), "{err}");
    }
}

#[tokio::test]
async fn expand_errors_not_found_and_expired() {
    let f = fixture();
    let p = reader();
    let token = list_token(&f.kernel, &p);
    let handle = f
        .kernel
        .invoke(&token, &p, list_args(), ResponseMode::Summary)
        .await
        .unwrap()
        .handle
        .unwrap();
    // Well formed, but never issued.
    let unknown = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let bogus = Handle {
        handle_id: unknown.into(),
        ..handle.clone()
    };
    let err = f
        .kernel
        .expand(&bogus, &ExpandQuery::default(), &p)
        .unwrap_err();
    assert_eq!(err.kind(), "handle_not_found");
    assert!(err.to_string().contains(unknown));
    // Not an id this kernel could have issued.
    let forged = Handle {
        handle_id: "no-such-handle".into(),
        ..handle.clone()
    };
    let err = f
        .kernel
        .expand(&forged, &ExpandQuery::default(), &p)
        .unwrap_err();
    assert_eq!(err.kind(), "malformed_id");
    assert!(err.to_string().contains("no-such-handle"));
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        f.kernel
            .expand(&handle, &ExpandQuery::default(), &p)
            .unwrap_err()
            .kind(),
        "handle_expired"
    );
}

#[test]
fn explain_unknown_action_names_it() {
    let f = fixture();
    let unknown = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let err = f.kernel.explain(unknown).unwrap_err();
    assert_eq!(err.kind(), "trace_not_found");
    assert!(err.to_string().contains(unknown));
    let err = f.kernel.explain("act-404").unwrap_err();
    assert_eq!(err.kind(), "malformed_id");
    assert!(err.to_string().contains("act-404"));
}

#[derive(Debug)]
struct Failing(&'static str, &'static str);

#[async_trait]
impl Driver for Failing {
    fn driver_id(&self) -> &str {
        self.0
    }
    async fn execute(&self, _ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        Err(DriverError::new(self.0, self.1))
    }
}

#[tokio::test]
async fn drivers_are_tried_in_route_order_skipping_unregistered() {
    let router = router().with_route(SUMMARY, ["ghost", "flaky", "billing"]);
    let f = fixture_with(None, |b| {
        b.router(router)
            .driver(Failing("flaky", "temporarily down"))
    });
    let p = reader();
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(SUMMARY, "spend"), &p, "")
        .unwrap();
    let frame = f
        .kernel
        .invoke(&token, &p, op("summarize_spend"), ResponseMode::Summary)
        .await
        .unwrap();
    assert_eq!(
        f.kernel.explain(&frame.action_id).unwrap().driver_id,
        "billing"
    );
}

#[tokio::test]
async fn all_drivers_failing_is_a_driver_error_with_an_audited_redacted_message() {
    let router = router().with_route(SUMMARY, ["a", "b"]);
    let f = fixture_with(None, |b| {
        b.router(router)
            .driver(Failing("a", "first"))
            .driver(Failing("b", "lookup failed for bob@example.com"))
    });
    let p = reader();
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(SUMMARY, "spend"), &p, "")
        .unwrap();
    let err = f
        .kernel
        .invoke(&token, &p, op("summarize_spend"), ResponseMode::Summary)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "driver_error");
    let text = err.to_string();
    assert!(
        text.contains(SUMMARY) && text.contains("lookup failed"),
        "{text}"
    );
    assert!(
        !text.contains("bob@example.com"),
        "driver errors are redacted: {text}"
    );
    let trace = f.kernel.traces().list_all().pop().unwrap();
    assert_eq!(trace.outcome, TraceOutcome::DriverError);
    assert_eq!(trace.driver_id, "b");
    assert!(trace.error.as_deref().unwrap().contains("lookup failed"));
    assert!(trace.handle_id.is_none());
}

#[tokio::test]
async fn no_registered_driver_and_default_fallback_route() {
    // SUMMARY routed nowhere → falls back to ["memory"], which is not registered.
    let f = fixture_with(None, |b| {
        b.router(StaticRouter::new().with_route(LIST, ["billing"]))
    });
    let p = reader();
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(SUMMARY, "s"), &p, "")
        .unwrap();
    let err = f
        .kernel
        .invoke(&token, &p, op("summarize_spend"), ResponseMode::Summary)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "driver_error", "{err}");
    assert!(
        err.to_string()
            .contains("no registered driver on route [memory]"),
        "{err}"
    );
    // registering a "memory" driver at run time makes the fallback work
    f.kernel.register_driver(
        InMemoryDriver::new("memory")
            .with_handler("summarize_spend", |_c| Ok::<_, String>(json!({"n": 1}))),
    );
    let frame = f
        .kernel
        .invoke(&token, &p, op("summarize_spend"), ResponseMode::Summary)
        .await
        .unwrap();
    assert_eq!(
        f.kernel.explain(&frame.action_id).unwrap().driver_id,
        "memory"
    );
}

#[tokio::test]
async fn session_budget_escalates_modes_then_exhausts() {
    let budget = BudgetManager::with_config(BudgetConfig {
        total_budget: 1_000,
        default_request: 100,
        ..BudgetConfig::default()
    })
    .unwrap();
    let f = fixture_with(None, |b| b.budget_manager(budget));
    let k = &f.kernel;
    let p = reader().with_roles(["reader", "admin"]);
    let token = list_token(k, &p);
    let req = |mode| {
        InvokeRequest::new(&token, &p)
            .with_args(list_args())
            .with_mode(mode)
            .with_session("chat-1")
    };

    // A table of 30 rows costs well over half of 1 000 tokens.
    let first = k.invoke_with(req(ResponseMode::Table)).await.unwrap();
    assert_eq!(first.response_mode, ResponseMode::Table);
    let used = k.budget().usage("chat-1").unwrap().used;
    let expected = CharsOverFour.count(&FramePayload::Table(&first.table_preview));
    assert_eq!(used, expected.min(1_000));
    assert!(used > 500, "fixture should spend more than half: {used}");

    // Now ≤ 50 % remains: raw is downgraded (never relaxed), then stricter tiers follow.
    let second = k.invoke_with(req(ResponseMode::Raw)).await.unwrap();
    assert_ne!(second.response_mode, ResponseMode::Raw);
    assert!(
        second.warnings.iter().any(|w| w.contains("escalated")),
        "{:?}",
        second.warnings
    );
    let trace = k.explain(&second.action_id).unwrap();
    assert_eq!(trace.requested_mode, ResponseMode::Raw);
    assert_eq!(trace.session_id.as_deref(), Some("chat-1"));

    // Spend the rest with tables until the session is exhausted.
    let mut exhausted = None;
    for _ in 0..20 {
        match k.invoke_with(req(ResponseMode::Table)).await {
            Ok(frame) => {
                assert!(frame.response_mode.strictness() >= ResponseMode::Table.strictness())
            }
            Err(e) => {
                exhausted = Some(e);
                break;
            }
        }
        // handle_only frames cost nothing; top the usage up to reach exhaustion
        if let Ok(r) = k.budget().allocate("chat-1", Some(50)) {
            k.budget().record_usage(r, 50);
        }
    }
    let err = exhausted.expect("budget should run out");
    assert_eq!(err.kind(), "budget_exhausted");
    assert_eq!(err.denial_category(), Some(DenialCategory::BudgetExhausted));
    assert!(err.to_string().contains("chat-1"));
    assert_eq!(
        k.traces().list_all().last().unwrap().outcome,
        TraceOutcome::Denied
    );
    // other sessions are unaffected, and a call without a session is never charged
    let fresh = k
        .invoke_with(req(ResponseMode::Table).with_session("chat-2"))
        .await
        .unwrap();
    assert_eq!(fresh.response_mode, ResponseMode::Table);
    assert!(
        !fresh.warnings.iter().any(|w| w.contains("escalated")),
        "{:?}",
        fresh.warnings
    );
    let usage = |s: &str| k.budget().usage(s).map(|u| (u.used, u.reserved));
    let before = (usage("chat-1"), usage("chat-2"));
    let unsessioned = k
        .invoke(&token, &p, list_args(), ResponseMode::Table)
        .await
        .unwrap();
    assert_eq!(unsessioned.response_mode, ResponseMode::Table);
    assert_eq!((usage("chat-1"), usage("chat-2")), before);
    assert_eq!(k.explain(&unsessioned.action_id).unwrap().session_id, None);
}

#[tokio::test]
async fn failed_invocations_release_their_budget() {
    let router = router().with_route(SUMMARY, ["down"]);
    let f = fixture_with(None, |b| b.router(router).driver(Failing("down", "no")));
    let p = reader();
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(SUMMARY, "s"), &p, "")
        .unwrap();
    let req = InvokeRequest::new(&token, &p)
        .with_args(op("summarize_spend"))
        .with_session("s1");
    let err = f.kernel.invoke_with(req).await.unwrap_err();
    assert_eq!(err.kind(), "driver_error", "{err}");
    assert!(
        matches!(&err, KernelError::DriverError { capability_id, status: None, .. } if capability_id == SUMMARY),
        "{err:?}"
    );
    let u = f.kernel.budget().usage("s1").unwrap();
    assert_eq!((u.used, u.reserved), (0, 0));
}

#[derive(Debug)]
struct Slow;

#[async_trait]
impl Driver for Slow {
    fn driver_id(&self) -> &str {
        "slow"
    }
    async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(RawResult::new(ctx.capability_id, json!("late")))
    }
}

#[tokio::test]
async fn a_dropped_invocation_is_audited_once_as_cancelled_and_releases_budget() {
    let router = router().with_route(SUMMARY, ["slow"]);
    let f = fixture_with(None, |b| b.router(router).driver(Slow));
    let p = reader();
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(SUMMARY, "s"), &p, "")
        .unwrap();
    let req = InvokeRequest::new(&token, &p)
        .with_args(op("summarize_spend"))
        .with_session("s1");
    let res = tokio::time::timeout(Duration::from_millis(50), f.kernel.invoke_with(req)).await;
    let _elapsed: tokio::time::error::Elapsed =
        res.expect_err("the invocation should have been cut off");
    let traces = f.kernel.traces().list_all();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].outcome, TraceOutcome::Cancelled);
    assert!(traces[0].error.as_deref().unwrap().contains("cancelled"));
    assert_eq!(f.kernel.budget().usage("s1").unwrap().reserved, 0);
}

#[tokio::test]
async fn stores_are_bounded_by_configuration() {
    let f = fixture_with(None, |b| {
        b.trace_store(TraceStore::with_capacity(5).unwrap())
            .handle_store(HandleStore::with_limits(Duration::from_secs(3600), 3).unwrap())
    });
    let p = reader();
    let token = list_token(&f.kernel, &p);
    let mut frames = Vec::new();
    for _ in 0..8 {
        frames.push(
            f.kernel
                .invoke(&token, &p, list_args(), ResponseMode::HandleOnly)
                .await
                .unwrap(),
        );
    }
    assert_eq!(f.kernel.traces().len(), 5);
    assert_eq!(f.kernel.traces().evicted(), 3);
    assert_eq!(f.kernel.handles().len(), 3);
    assert_eq!(
        f.kernel.explain(&frames[0].action_id).unwrap_err().kind(),
        "trace_not_found"
    );
    let oldest = frames[0].handle.as_ref().unwrap();
    assert_eq!(
        f.kernel
            .expand(oldest, &ExpandQuery::default(), &p)
            .unwrap_err()
            .kind(),
        "handle_not_found"
    );
    let newest = frames[7].handle.as_ref().unwrap();
    let expanded = f
        .kernel
        .expand(newest, &ExpandQuery::default(), &p)
        .unwrap();
    assert_eq!(expanded.provenance.action_id, frames[7].action_id);
    assert_eq!(expanded.table_preview.len(), 30);
}

#[test]
fn kernel_is_send_sync_and_never_shows_its_secret() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Kernel>();
    assert_send_sync::<HmacTokenProvider>();
    let f = fixture();
    let dbg = format!("{:?}", f.kernel);
    assert!(!dbg.contains(SECRET), "{dbg}");
    assert!(dbg.contains("<redacted>"));
    let builder = Kernel::builder(registry()).secret(SECRET);
    assert!(!format!("{builder:?}").contains(SECRET));
    // an empty secret is refused
    assert_eq!(
        Kernel::builder(registry())
            .secret("")
            .build()
            .unwrap_err()
            .kind(),
        "invalid_config"
    );
}

#[tokio::test]
async fn invoke_future_is_send() {
    let f = fixture();
    let kernel = Arc::new(f.kernel);
    let p = reader();
    let token = list_token(&kernel, &p);
    let k2 = Arc::clone(&kernel);
    let handle = tokio::spawn(async move {
        k2.invoke(&token, &p, list_args(), ResponseMode::Table)
            .await
    });
    assert_eq!(
        handle.await.unwrap().unwrap().response_mode,
        ResponseMode::Table
    );
}

#[tokio::test]
async fn driver_receives_the_borrowed_context() {
    // What the driver saw, captured directly: the frame goes through redaction,
    // which may rewrite an id whose hex digits look like a phone number.
    /// (operation, principal id, action id, max_rows) as the driver saw them.
    type Seen = (String, String, String, Option<u64>);
    #[derive(Debug, Default)]
    struct Echo {
        seen: std::sync::Mutex<Option<Seen>>,
    }
    #[async_trait]
    impl Driver for Echo {
        fn driver_id(&self) -> &str {
            "echo"
        }
        async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
            *self.seen.lock().unwrap() = Some((
                ctx.operation().to_owned(),
                ctx.principal_id.to_owned(),
                ctx.action_id.to_owned(),
                ctx.constraints.max_rows,
            ));
            Ok(RawResult::new(ctx.capability_id, json!({"ok": true})))
        }
    }
    let echo = std::sync::Arc::new(Echo::default());
    let router = router().with_route(SUMMARY, ["echo"]);
    let f = fixture_with(None, |b| b.router(router));
    f.kernel.register_driver_arc(echo.clone());
    let p = reader();
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(SUMMARY, "s"), &p, "")
        .unwrap();
    let frame = f
        .kernel
        .invoke(&token, &p, op("custom_op"), ResponseMode::Table)
        .await
        .unwrap();
    let (operation, principal, action, max_rows) = echo.seen.lock().unwrap().clone().unwrap();
    // The capability's bound operation, whatever the arguments say.
    assert_eq!(operation, "summarize_spend");
    assert_eq!(principal, "analyst-001");
    assert_eq!(action, frame.action_id);
    assert_eq!(max_rows, Some(50));
}
