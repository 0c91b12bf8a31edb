//! `expand` is an invocation of the handle: the creating token must still
//! verify, the policy is evaluated again, the session is charged, every
//! expansion is audited, and queries see only the redacted view.

use std::sync::Arc;
use std::time::Duration;

use agent_kernel::*;
use serde_json::json;

const LIST: &str = "crm.list_customers";
const SECRET: &str = "adversarial-expand-secret-0123456789";

struct World {
    kernel: Kernel,
    clock: Arc<ManualClock>,
}

fn world(read_per_minute: u64) -> World {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let mut registry = CapabilityRegistry::new();
    registry
        .register(
            Capability::new(LIST, "List", "List customers", SafetyClass::Read)
                .with_sensitivity(SensitivityTag::Pii),
        )
        .unwrap();
    let rows: Arc<serde_json::Value> = Arc::new(json!(
        (0..100)
            .map(|i| json!({"id": i, "status": "open", "bob@corp.com": "owner", "note": "x"}))
            .collect::<Vec<_>>()
    ));
    let policy = DefaultPolicyEngine::builder()
        .clock(Arc::clone(&dyn_clock))
        .rate_limit(SafetyClass::Read, read_per_minute, Duration::from_secs(60))
        .build()
        .unwrap();
    let kernel = Kernel::builder(registry)
        .secret(SECRET)
        .clock(dyn_clock)
        .policy(policy)
        .router(StaticRouter::new().with_route(LIST, ["mem"]))
        .driver(
            InMemoryDriver::new("mem")
                .with_handler(LIST, move |_ctx| Ok::<_, String>(Arc::clone(&rows))),
        )
        .build()
        .unwrap();
    World { kernel, clock }
}

fn analyst() -> Principal {
    Principal::new("analyst-7")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme")
}

/// A token and a handle from one table invocation (in `session`, if any).
async fn handle_of(w: &World, p: &Principal, session: Option<&str>) -> (CapabilityToken, Handle) {
    let token = w
        .kernel
        .get_token(&CapabilityRequest::new(LIST, "list"), p, "")
        .unwrap();
    let mut req = InvokeRequest::new(&token, p).with_mode(ResponseMode::Table);
    if let Some(s) = session {
        req = req.with_session(s);
    }
    let frame = w.kernel.invoke_with(req).await.unwrap();
    (token, frame.handle.unwrap())
}

fn expand_err(w: &World, h: &Handle, q: serde_json::Value, p: &Principal) -> KernelError {
    w.kernel
        .expand(h, &ExpandQuery::from_json(&q).unwrap(), p)
        .unwrap_err()
}

#[tokio::test]
async fn a_revoked_token_no_longer_expands_its_handles() {
    let w = world(1_000);
    let p = analyst();
    let (token, handle) = handle_of(&w, &p, None).await;
    w.kernel.revoke_token(&token.token_id).unwrap();
    assert_eq!(
        expand_err(&w, &handle, json!({}), &p).kind(),
        "token_revoked"
    );
}

#[tokio::test]
async fn revoke_all_stops_every_handle_of_the_principal() {
    let w = world(1_000);
    let p = analyst();
    let (_, handle) = handle_of(&w, &p, None).await;
    w.clock.advance(Duration::from_millis(5));
    w.kernel.revoke_all(&p.principal_id).unwrap();
    assert_eq!(
        expand_err(&w, &handle, json!({}), &p).kind(),
        "token_revoked"
    );
}

#[tokio::test]
async fn an_expired_token_no_longer_expands_its_handles() {
    let w = world(1_000);
    let p = analyst();
    let short = {
        let (token, _) = handle_of(&w, &p, None).await;
        token
    };
    // A handle made under a token that expires before the handle does.
    let brief = w.kernel.token_provider().issue(
        LIST,
        &p.principal_id,
        short.constraints.clone(),
        Some(Duration::from_secs(10)),
        "audit-brief",
    );
    let frame = w
        .kernel
        .invoke_with(InvokeRequest::new(&brief, &p).with_mode(ResponseMode::Table))
        .await
        .unwrap();
    w.clock.advance(Duration::from_secs(11));
    assert_eq!(
        expand_err(&w, frame.handle.as_ref().unwrap(), json!({}), &p).kind(),
        "token_expired"
    );
}

#[tokio::test]
async fn a_principal_stripped_of_roles_and_tenant_cannot_expand() {
    let w = world(1_000);
    let p = analyst();
    let (_, handle) = handle_of(&w, &p, None).await;
    let stripped = Principal::new(&p.principal_id);
    let err = expand_err(&w, &handle, json!({}), &stripped);
    assert_eq!(err.kind(), "policy_denied", "{err}");
}

#[tokio::test]
async fn a_principal_without_a_tenant_cannot_expand_pii() {
    let w = world(1_000);
    let p = analyst();
    let (_, handle) = handle_of(&w, &p, None).await;
    let no_tenant = Principal::new(&p.principal_id).with_roles(["reader"]);
    let err = expand_err(&w, &handle, json!({}), &no_tenant);
    assert_eq!(
        err.denial_category(),
        Some(DenialCategory::MissingTenantAttribute),
        "{err}"
    );
}

#[tokio::test]
async fn expansions_are_rate_limited_like_invocations() {
    let w = world(2);
    let p = analyst();
    let (_, handle) = handle_of(&w, &p, None).await;
    w.kernel
        .expand(&handle, &ExpandQuery::default(), &p)
        .unwrap();
    let err = expand_err(&w, &handle, json!({}), &p);
    assert_eq!(
        err.denial_category(),
        Some(DenialCategory::RateLimited),
        "{err}"
    );
}

#[tokio::test]
async fn a_demoted_service_cannot_keep_its_row_cap() {
    let w = world(1_000);
    let service = analyst().with_roles(["reader", "service"]);
    let token = w
        .kernel
        .get_token(
            &CapabilityRequest::new(LIST, "list").with_constraint("max_rows", json!(100)),
            &service,
            "",
        )
        .unwrap();
    let frame = w
        .kernel
        .invoke_with(InvokeRequest::new(&token, &service).with_mode(ResponseMode::HandleOnly))
        .await
        .unwrap();
    let handle = frame.handle.unwrap();
    let rows = w
        .kernel
        .expand(&handle, &ExpandQuery::default(), &service)
        .unwrap()
        .table_preview
        .len();
    assert!(rows > 50, "the service's cap: {rows}");
    let demoted = Principal::new(&service.principal_id)
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");
    let err = expand_err(&w, &handle, json!({}), &demoted);
    assert_eq!(
        err.denial_category(),
        Some(DenialCategory::InvalidConstraint),
        "{err}"
    );
}

#[tokio::test]
async fn expansions_are_charged_to_the_session() {
    let w = world(1_000);
    let p = analyst();
    let (_, handle) = handle_of(&w, &p, Some("chat-9")).await;
    let before = w.kernel.budget().usage("chat-9").unwrap().used;
    w.kernel
        .expand(&handle, &ExpandQuery::default(), &p)
        .unwrap();
    let after = w.kernel.budget().usage("chat-9").unwrap().used;
    assert!(after > before, "{before} → {after}");
}

#[tokio::test]
async fn every_expansion_is_audited_refused_ones_included() {
    let w = world(1_000);
    let p = analyst();
    let (_, handle) = handle_of(&w, &p, None).await;
    let audited = || w.kernel.traces().len();
    let before = audited();
    let frame = w
        .kernel
        .expand(&handle, &ExpandQuery::default(), &p)
        .unwrap();
    let mallory = Principal::new("mallory").with_roles(["reader"]);
    assert_eq!(
        expand_err(&w, &handle, json!({}), &mallory).kind(),
        "handle_access_denied"
    );
    assert_eq!(audited(), before + 2);
    let ok = w.kernel.explain(&frame.action_id).unwrap();
    assert_eq!(ok.outcome, TraceOutcome::Success);
    assert_eq!(ok.principal_id, p.principal_id);
    let refused = w.kernel.traces().list_all().pop().unwrap();
    assert_eq!(refused.principal_id, "mallory");
    assert_eq!(refused.outcome, TraceOutcome::Denied);
    assert_eq!(
        refused.denial_category,
        Some(DenialCategory::HandlePrincipalMismatch)
    );
}

#[tokio::test]
async fn a_filter_on_a_redacted_key_is_no_oracle() {
    let w = world(1_000);
    let p = analyst();
    let (_, handle) = handle_of(&w, &p, None).await;
    // The table shows the key as `[REDACTED]`: naming it must not select it,
    // whether or not a row has it.
    for query in [
        json!({"filter": {"bob@corp.com": "owner"}}),
        json!({"filter": {"alice@corp.com": "owner"}}),
        json!({"fields": ["bob@corp.com"]}),
        json!({"fields": ["id", "alice@corp.com"]}),
    ] {
        let err = expand_err(&w, &handle, query.clone(), &p);
        assert_eq!(
            err.denial_category(),
            Some(DenialCategory::InvalidConstraint),
            "{query}"
        );
        assert!(!err.to_string().contains("@corp.com"), "{err}");
    }
}

#[tokio::test]
async fn a_filter_cannot_confirm_a_card_held_as_a_number() {
    let mut registry = CapabilityRegistry::new();
    registry
        .register(Capability::new(
            LIST,
            "List",
            "List cards",
            SafetyClass::Read,
        ))
        .unwrap();
    let rows = Arc::new(
        json!([{"id": 1, "card": 4_111_111_111_111_111_u64, "code": 4_111_111_111_111_111_u64}]),
    );
    let kernel = Kernel::builder(registry)
        .secret(SECRET)
        .router(StaticRouter::new().with_route(LIST, ["mem"]))
        .driver(
            InMemoryDriver::new("mem")
                .with_handler(LIST, move |_ctx| Ok::<_, String>(Arc::clone(&rows))),
        )
        .build()
        .unwrap();
    let p = Principal::new("r").with_roles(["reader"]);
    let token = kernel
        .get_token(&CapabilityRequest::new(LIST, "list"), &p, "")
        .unwrap();
    let handle = kernel
        .invoke_with(InvokeRequest::new(&token, &p).with_mode(ResponseMode::HandleOnly))
        .await
        .unwrap()
        .handle
        .unwrap();
    let rows = |filter: serde_json::Value| {
        kernel
            .expand(
                &handle,
                &ExpandQuery::from_json(&json!({"filter": filter})).unwrap(),
                &p,
            )
            .unwrap()
            .table_preview
            .len()
    };
    // A right guess and a wrong one look the same; only what is shown matches.
    assert_eq!(rows(json!({"code": 4_111_111_111_111_111_u64})), 0);
    assert_eq!(rows(json!({"code": 4_111_111_111_111_112_u64})), 0);
    assert_eq!(rows(json!({"code": "[REDACTED]"})), 1);
}
