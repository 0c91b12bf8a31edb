// Checks: `key = deferred` attributes recorded later with `record`, from the
// body and from nested sync and async calls; a key the inner span did not
// declare reaches the enclosing span; unknown keys are refused (`false`).
#![deny(warnings)]
use agent_kernel_otel::{kernel_span, record};
use agent_kernel_tests::Capture;

fn classify() {
    assert_eq!(record("safety_class", "read") , cfg!(feature = "otel"));
}

#[kernel_span(name = "demo.inner", attrs(decision = deferred))]
async fn evaluate() {
    tokio::task::yield_now().await;
    record("decision", "deny");
    // not declared here: goes to the enclosing kernel span
    record("reason_category", "rate_limited");
    assert!(!record("nobody_declared_this", 1));
}

#[kernel_span(name = "demo.outer", attrs(safety_class = deferred, reason_category = deferred, "gen_ai.tool.call.id" = deferred))]
async fn invoke() {
    classify();
    evaluate().await;
    record("gen_ai.tool.call.id", String::from("a-1"));
}

fn main() {
    let cap = Capture::install_global();
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(invoke());
    assert!(!record("safety_class", "outside any span"));
    if cfg!(feature = "otel") {
        let outer = cap.span("demo.outer");
        assert_eq!(outer.attr("agent_kernel.safety_class"), Some("read"));
        assert_eq!(outer.attr("agent_kernel.reason_category"), Some("rate_limited"));
        assert_eq!(outer.attr("gen_ai.tool.call.id"), Some("a-1"));
        let inner = cap.span("demo.inner");
        assert_eq!(inner.attr("agent_kernel.decision"), Some("deny"));
        assert_eq!(inner.attr("agent_kernel.reason_category"), None);
    }
}
