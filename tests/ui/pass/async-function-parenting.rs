// Checks: an async fn's span travels with its future across `.await` points
// (children started after an await are still its children), and sibling
// futures polled concurrently keep their own parents.
#![deny(warnings)]
use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

#[kernel_span(name = "demo.child", attrs(step))]
async fn child(step: u32) -> u32 {
    tokio::task::yield_now().await;
    step * 2
}

#[kernel_span(name = "demo.parent")]
async fn parent() -> u32 {
    let a = child(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    let (b, c) = tokio::join!(child(2), child(3));
    a + b + c
}

fn main() {
    let cap = Capture::install_global();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    assert_eq!(rt.block_on(parent()), 12);
    if cfg!(feature = "otel") {
        let parent = cap.span("demo.parent");
        let children: Vec<_> = cap.spans().into_iter().filter(|s| s.name == "demo.child").collect();
        assert_eq!(children.len(), 3);
        for c in &children {
            assert!(parent.is_parent_of(c), "{c:?} should be a child of {parent:?}");
        }
        assert!(parent.is_root());
    }
}
