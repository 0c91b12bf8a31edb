// Checks: a non-async function returning `impl Future` whose last expression
// is an `async move` block, and one returning `Pin<Box<dyn Future>>` via
// `Box::pin(async move { .. })`: the future is instrumented (attributes are
// computed when the function is called), and dropping it before completion
// ends the span as cancelled (ERROR).
#![deny(warnings)]
use std::future::Future;
use std::pin::Pin;

use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

#[kernel_span(name = "demo.future", attrs(n))]
fn later(n: u32) -> impl Future<Output = Result<u32, std::io::Error>> {
    async move {
        tokio::task::yield_now().await;
        Ok(n)
    }
}

#[kernel_span(name = "demo.boxed")]
fn boxed() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        std::future::pending::<()>().await;
    })
}

fn main() {
    let cap = Capture::install_global();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(rt.block_on(later(3)).unwrap(), 3);
    rt.block_on(async {
        let r = tokio::time::timeout(std::time::Duration::from_millis(5), boxed()).await;
        assert!(r.is_err());
    });
    if cfg!(feature = "otel") {
        assert_eq!(cap.span("demo.future").attr("agent_kernel.n"), Some("3"));
        let b = cap.span("demo.boxed");
        assert_eq!(b.attr("agent_kernel.cancelled"), Some("true"));
        assert_eq!(b.attr("error.type"), Some("cancelled"));
        assert!(b.error.is_some());
    }
}
