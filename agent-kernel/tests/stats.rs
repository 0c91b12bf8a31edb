//! `Kernel::stats()`: counted where the audit guard records, so the counters
//! agree with the audit trail, with or without the `otel` feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agent_kernel::*;
use common::*;

fn list_token(k: &Kernel, p: &Principal) -> CapabilityToken {
    k.get_token(&CapabilityRequest::new(LIST, "list invoices"), p, "")
        .unwrap()
}

#[tokio::test]
async fn counters_follow_every_outcome() {
    let f = fixture_with(None, |b| {
        b.router(router().with_route(LIST, ["missing", "broken", "billing"]))
            .driver(InMemoryDriver::new("broken"))
            .budget_manager(
                BudgetManager::with_config(BudgetConfig {
                    total_budget: 900,
                    default_request: 100,
                    max_sessions: 4,
                })
                .unwrap(),
            )
    });
    let k = &f.kernel;
    let p = reader();
    assert_eq!(k.stats(), KernelStats::default());

    // Served after one fallback (an unregistered id on the route is skipped,
    // not attempted); the rows hold e-mail addresses, so the firewall redacts.
    let token = list_token(k, &p);
    let frame = k
        .invoke(&token, &p, list_args(), ResponseMode::Table)
        .await
        .unwrap();
    assert!(!leaks_email(&frame_json(&frame)));
    let after_one = k.stats();
    assert_eq!(after_one.invocations[&(LIST.to_owned(), "success")], 1);
    assert_eq!(after_one.driver_fallbacks, 1);
    assert!(after_one.redactions > 0, "{after_one:?}");

    // Refused: another principal presents the token.
    let other = Principal::new("mallory").with_roles(["reader"]);
    let err = k
        .invoke(&token, &other, list_args(), ResponseMode::Summary)
        .await
        .unwrap_err();
    // A token error is no policy denial: counted as a denied invocation,
    // with no denial category.
    assert_eq!(err.denial_category(), None);
    // A refused grant (a reader asks for a WRITE capability) counts by category.
    let grant_err = k
        .get_token(&CapabilityRequest::new(UPDATE, "update"), &p, JUSTIFICATION)
        .unwrap_err();
    let category = grant_err.denial_category().expect("a policy denial");

    // A session: budget escalation, then exhaustion.
    let mut exhausted = None;
    for _ in 0..20 {
        match k
            .invoke_with(
                InvokeRequest::new(&token, &p)
                    .with_args(list_args())
                    .with_mode(ResponseMode::Table)
                    .with_session("s-1"),
            )
            .await
        {
            Ok(_) => {}
            Err(err) => {
                exhausted = Some(err);
                break;
            }
        }
    }
    let exhausted = exhausted.expect("the session ran out");
    assert_eq!(
        exhausted.denial_category(),
        Some(DenialCategory::BudgetExhausted)
    );

    let stats = k.stats();
    let traces = k.traces().list_all();
    let invocations = traces.iter().filter(|t| !t.token_id.is_empty()).count() as u64;
    assert_eq!(stats.invocations.values().sum::<u64>(), invocations);
    assert_eq!(stats.invocations[&(LIST.to_owned(), "denied")], 2);
    assert_eq!(stats.denials[&category], 1);
    assert_eq!(stats.denials[&DenialCategory::BudgetExhausted], 1);
    // Escalated calls, served or then refused: the audit shows the mode change.
    let escalated = traces
        .iter()
        .filter(|t| t.session_id.is_some() && t.requested_mode != t.response_mode)
        .count() as u64;
    assert!(
        escalated > 0,
        "the budget escalated a mode before running out"
    );
    assert_eq!(stats.budget_escalations, escalated);
    // Every served or budget-refused call went through the fallback.
    let reached_driver = traces.iter().filter(|t| t.driver_id == "billing").count() as u64;
    assert_eq!(stats.driver_fallbacks, reached_driver);
}
