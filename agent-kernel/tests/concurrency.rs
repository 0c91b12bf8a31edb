//! 1 000 concurrent invocations on a multi-thread runtime: every trace recorded
//! exactly once, no handle or trace lost, rate limits counted exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use agent_kernel::*;
use common::*;

const N: usize = 1_000;

async fn run_all(
    kernel: Arc<Kernel>,
    token: CapabilityToken,
    p: Principal,
    mode: ResponseMode,
) -> Vec<Result<Frame>> {
    let token = Arc::new(token);
    let p = Arc::new(p);
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (k, t, p) = (Arc::clone(&kernel), Arc::clone(&token), Arc::clone(&p));
            tokio::spawn(async move {
                let session = format!("s{}", i % 10);
                k.invoke_with(
                    InvokeRequest::new(&t, &p)
                        .with_args(list_args())
                        .with_mode(mode)
                        .with_session(&session),
                )
                .await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(N);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_invokes_every_trace_and_handle_accounted_for() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    let policy = DefaultPolicyEngine::builder()
        .clock(clock.clone())
        .rate_limit(SafetyClass::Read, 1_000_000, minute())
        .build()
        .unwrap();
    let budget = BudgetManager::with_config(BudgetConfig {
        total_budget: u64::MAX / 2,
        ..BudgetConfig::default()
    })
    .unwrap();
    let f = fixture_with(Some(policy), |b| {
        b.clock(clock.clone()).budget_manager(budget)
    });
    let kernel = Arc::new(f.kernel);
    let p = reader();
    let token = kernel
        .get_token(&CapabilityRequest::new(LIST, "l"), &p, "")
        .unwrap();
    let results = run_all(Arc::clone(&kernel), token, p.clone(), ResponseMode::Table).await;

    let frames: Vec<Frame> = results.into_iter().map(|r| r.unwrap()).collect();
    let ids: HashSet<&str> = frames.iter().map(|f| f.action_id.as_str()).collect();
    assert_eq!(ids.len(), N, "action ids are unique");
    assert_eq!(kernel.traces().len(), N);
    assert_eq!(
        kernel.traces().recorded(),
        N as u64,
        "each trace recorded exactly once"
    );
    let traced: HashSet<String> = kernel
        .traces()
        .list_all()
        .iter()
        .map(|t| t.action_id.clone())
        .collect();
    assert_eq!(traced.len(), N);
    assert!(frames.iter().all(|f| traced.contains(&f.action_id)));
    assert_eq!(kernel.handles().len(), N, "no handle lost");
    for f in &frames {
        let h = f.handle.as_ref().unwrap();
        assert_eq!(
            kernel.explain(&f.action_id).unwrap().handle_id.as_deref(),
            Some(h.handle_id.as_str())
        );
        assert_eq!(f.table_preview.len(), 30);
    }
    // every session was charged exactly for what its frames cost
    let per_frame = kernel
        .budget()
        .count_tokens(&FramePayload::Table(&frames[0].table_preview));
    for s in kernel.budget().sessions() {
        assert_eq!(s.used, per_frame * (N as u64 / 10), "{}", s.session_id);
        assert_eq!(s.reserved, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_are_counted_exactly_under_contention() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    // 600 invocations allowed in the window (READ limit 60 × 10 for role service).
    let policy = DefaultPolicyEngine::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    let f = fixture_with(Some(policy), |b| b.clock(clock.clone()));
    let kernel = Arc::new(f.kernel);
    let svc = reader().with_roles(["reader", "service"]);
    let token = kernel
        .get_token(&CapabilityRequest::new(LIST, "l"), &svc, "")
        .unwrap();
    let results = run_all(Arc::clone(&kernel), token, svc, ResponseMode::HandleOnly).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let limited = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.denial_category() == Some(DenialCategory::RateLimited)))
        .count();
    assert_eq!(ok, 600);
    assert_eq!(limited, 400);
    let traces = kernel.traces().list_all();
    assert_eq!(traces.len(), N);
    assert_eq!(
        traces
            .iter()
            .filter(|t| t.outcome == TraceOutcome::Success)
            .count(),
        600
    );
    assert_eq!(
        traces
            .iter()
            .filter(|t| t.outcome == TraceOutcome::Denied)
            .count(),
        400
    );
    assert_eq!(kernel.handles().len(), 600);
}

/// A kernel whose list driver returns `rows` invoices.
fn kernel_with_rows(rows: usize) -> Kernel {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    let policy = DefaultPolicyEngine::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    Kernel::builder(registry())
        .secret(SECRET)
        .router(router())
        .policy(policy)
        .clock(clock)
        .driver(billing_driver(Arc::new(invoices(rows))))
        .build()
        .unwrap()
}

/// Invokes and expands on `runtime`: (summary facts, table rows, expanded rows).
fn frames_on(runtime: &tokio::runtime::Runtime, kernel: &Kernel) -> (Frame, Frame, Frame) {
    let p = reader();
    let token = kernel
        .get_token(&CapabilityRequest::new(LIST, "l"), &p, "")
        .unwrap();
    runtime.block_on(async {
        // On a worker thread, as a spawned task would run.
        let summary = kernel
            .invoke(&token, &p, list_args(), ResponseMode::Summary)
            .await
            .unwrap();
        let table = kernel
            .invoke(&token, &p, list_args(), ResponseMode::Table)
            .await
            .unwrap();
        let handle = table.handle.clone().unwrap();
        let expanded = kernel
            .expand(
                &handle,
                &ExpandQuery {
                    limit: Some(5),
                    ..ExpandQuery::default()
                },
                &p,
            )
            .unwrap();
        (summary, table, expanded)
    })
}

/// A result above `OFFLOAD_WEIGHT` is firewalled off the worker's task
/// queue on a multi-threaded runtime (`block_in_place`) and inline on a
/// current-thread one (where blocking in place is not allowed): the frames
/// are the same either way.
#[test]
fn large_results_leave_the_worker_with_the_same_frames() {
    let kernel = kernel_with_rows(4_000);
    let data = invoices(4_000);
    assert!(firewall::weighs_more_than(&data, 3, OFFLOAD_WEIGHT));
    assert!(!firewall::weighs_more_than(
        &invoices(30),
        3,
        OFFLOAD_WEIGHT
    ));
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let single = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (s1, t1, e1) = frames_on(&multi, &kernel);
    let (s2, t2, e2) = frames_on(&single, &kernel);
    assert_eq!(s1.facts, s2.facts);
    assert!(
        s1.facts.iter().any(|f| f == "Total rows: 4000"),
        "{:?}",
        s1.facts
    );
    assert_eq!(t1.table_preview, t2.table_preview);
    assert_eq!(e1.table_preview, e2.table_preview);
    assert_eq!(e1.table_preview.len(), 5);
    assert!(!leaks_email(
        &serde_json::to_value(&t1.table_preview).unwrap()
    ));
}
