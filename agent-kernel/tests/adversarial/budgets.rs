//! Session budgets bound what reaches the model: every frame and expansion
//! page is charged its size, no frame costs more than what remains, and a
//! session at its limit is refused.

use std::sync::Arc;

use agent_kernel::*;
use serde_json::json;

const LIST: &str = "crm.list_customers";

fn kernel(total_budget: u64) -> Kernel {
    let mut registry = CapabilityRegistry::new();
    registry
        .register(Capability::new(
            LIST,
            "List",
            "List customers",
            SafetyClass::Read,
        ))
        .unwrap();
    let rows: Arc<serde_json::Value> = Arc::new(json!(
        (0..200)
            .map(|i| json!({"id": i, "name": format!("customer number {i}"), "status": "open"}))
            .collect::<Vec<_>>()
    ));
    let policy = DefaultPolicyEngine::builder()
        .rate_limit(
            SafetyClass::Read,
            1_000_000,
            std::time::Duration::from_secs(60),
        )
        .build()
        .unwrap();
    Kernel::builder(registry)
        .secret("adversarial-budgets-secret-0123456789")
        .policy(policy)
        .budget_manager(
            BudgetManager::with_config(BudgetConfig {
                total_budget,
                default_request: total_budget,
                max_sessions: 16,
            })
            .unwrap(),
        )
        .router(StaticRouter::new().with_route(LIST, ["mem"]))
        .driver(
            InMemoryDriver::new("mem")
                .with_handler(LIST, move |_ctx| Ok::<_, String>(Arc::clone(&rows))),
        )
        .build()
        .unwrap()
}

fn reader() -> Principal {
    Principal::new("reader-3").with_roles(["reader"])
}

fn token(k: &Kernel, p: &Principal) -> CapabilityToken {
    k.get_token(&CapabilityRequest::new(LIST, "list"), p, "")
        .unwrap()
}

/// Characters of everything the model was handed: facts, rows, raw data and
/// handles.
fn handed_out(frame: &Frame) -> usize {
    FramePayload::of(frame).serialized_chars()
}

#[tokio::test]
async fn handle_only_frames_are_charged_so_a_session_runs_out() {
    let k = kernel(200);
    let p = reader();
    let t = token(&k, &p);
    let mut frames = 0;
    let err = loop {
        match k
            .invoke_with(
                InvokeRequest::new(&t, &p)
                    .with_mode(ResponseMode::HandleOnly)
                    .with_session("s"),
            )
            .await
        {
            Ok(_) => frames += 1,
            Err(e) => break e,
        }
        assert!(frames < 100, "200 tokens bought 100 handle-only frames");
    };
    assert_eq!(err.kind(), "budget_exhausted");
    assert!(k.budget().usage("s").unwrap().used <= 200);
}

#[tokio::test]
async fn expansion_pages_are_charged_and_the_session_ends() {
    let k = kernel(2_000);
    let p = reader();
    let t = token(&k, &p);
    let frame = k
        .invoke_with(
            InvokeRequest::new(&t, &p)
                .with_mode(ResponseMode::HandleOnly)
                .with_session("s"),
        )
        .await
        .unwrap();
    let handle = frame.handle.unwrap();
    let mut chars = 0;
    let mut pages = 0;
    let err = loop {
        let q = ExpandQuery::from_json(&json!({"offset": pages * 10, "limit": 10})).unwrap();
        match k.expand(&handle, &q, &p) {
            Ok(page) => {
                chars += handed_out(&page);
                pages += 1;
            }
            Err(e) => break e,
        }
        assert!(pages < 20, "2 000 tokens bought every page");
    };
    assert_eq!(err.kind(), "budget_exhausted");
    // What was handed out is what was charged: about four characters a token.
    let used = k.budget().usage("s").unwrap().used;
    assert!(used <= 2_000, "{used}");
    assert!(chars / 4 <= 2_000, "{chars} characters for 2 000 tokens");
}

#[tokio::test]
async fn no_frame_costs_more_than_what_the_session_has_left() {
    let k = kernel(200);
    let p = reader();
    let t = token(&k, &p);
    // A 50-row table is far over 200 tokens: refused, nothing charged.
    let err = k
        .invoke_with(
            InvokeRequest::new(&t, &p)
                .with_mode(ResponseMode::Table)
                .with_session("s"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "budget_exhausted");
    assert_eq!(k.budget().usage("s").unwrap().used, 0);
    // Asking for less fits, and is charged exactly its size.
    let frame = k
        .invoke_with(
            InvokeRequest::new(&t, &p)
                .with_mode(ResponseMode::HandleOnly)
                .with_session("s"),
        )
        .await
        .unwrap();
    let used = k.budget().usage("s").unwrap().used;
    assert_eq!(used, CharsOverFour.count(&FramePayload::of(&frame)));
    assert!(used > 0 && used <= 200);
    // The refusal is audited.
    assert!(
        k.traces()
            .list_all()
            .iter()
            .any(|t| t.denial_category == Some(DenialCategory::BudgetExhausted))
    );
}

#[tokio::test]
async fn an_expansion_page_larger_than_what_remains_is_refused() {
    let k = kernel(300);
    let p = reader();
    let t = token(&k, &p);
    let frame = k
        .invoke_with(
            InvokeRequest::new(&t, &p)
                .with_mode(ResponseMode::HandleOnly)
                .with_session("s"),
        )
        .await
        .unwrap();
    let before = k.budget().usage("s").unwrap().used;
    let err = k
        .expand(frame.handle.as_ref().unwrap(), &ExpandQuery::default(), &p)
        .unwrap_err();
    assert_eq!(err.kind(), "budget_exhausted");
    assert_eq!(
        k.budget().usage("s").unwrap().used,
        before,
        "nothing charged"
    );
}

#[tokio::test]
async fn a_session_at_its_limit_is_refused() {
    let k = kernel(100);
    let p = reader();
    let t = token(&k, &p);
    let req = || {
        InvokeRequest::new(&t, &p)
            .with_mode(ResponseMode::HandleOnly)
            .with_session("s")
    };
    let mut calls = 0;
    while k.invoke_with(req()).await.is_ok() {
        calls += 1;
        assert!(calls < 100, "100 tokens never ran out");
    }
    for _ in 0..3 {
        assert_eq!(
            k.invoke_with(req()).await.unwrap_err().kind(),
            "budget_exhausted"
        );
    }
}
