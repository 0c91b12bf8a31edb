// Checks: a plain sync function gets one span with its name, kind, scope, the
// shorthand / expression / literal attributes (namespaced or verbatim), and
// nothing else: parameters not named in `attrs` are never recorded.
#![deny(warnings)]
use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

struct Principal {
    principal_id: String,
}

#[kernel_span(
    name = "demo.sync",
    attrs(
        response_mode,
        principal_id = principal.principal_id,
        "gen_ai.operation.name" = "execute_tool",
        count = secret.len(),
    )
)]
fn work(principal: &Principal, response_mode: &'static str, secret: &str) -> usize {
    secret.len() + response_mode.len() + principal.principal_id.len()
}

fn main() {
    let cap = Capture::install_global();
    let p = Principal { principal_id: "alice".into() };
    assert_eq!(work(&p, "summary", "hunter2"), 7 + 7 + 5);
    if cfg!(feature = "otel") {
        let span = cap.span("demo.sync");
        assert_eq!(span.kind, "internal");
        assert!(span.is_root());
        assert_eq!(span.error, None);
        assert_eq!(span.scope.0, "agent_kernel");
        assert!(span.scope.1.is_some());
        assert_eq!(span.attr("agent_kernel.response_mode"), Some("summary"));
        assert_eq!(span.attr("agent_kernel.principal_id"), Some("alice"));
        assert_eq!(span.attr("gen_ai.operation.name"), Some("execute_tool"));
        assert_eq!(span.attr("agent_kernel.count"), Some("7"));
        assert_eq!(span.attrs.len(), 4, "only named attributes: {:?}", span.attrs);
        assert!(span.attrs.iter().all(|(_, v)| v != "hunter2"));
    }
}
