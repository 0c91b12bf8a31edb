// Checks: `#[kernel_span]` on methods of an `#[async_trait]` impl (the
// attribute sees the `Box::pin(async move { .. })` that async-trait produces
// and instruments that future), including a default method of the trait and
// `Send` futures spawned on a multi-thread runtime.
#![deny(warnings)]
use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;
use async_trait::async_trait;

#[async_trait]
trait Driver: Send + Sync {
    async fn execute(&self, attempt: u32) -> Result<String, std::io::Error>;

    #[kernel_span(name = "demo.driver.default")]
    async fn ping(&self) -> u8 {
        1
    }
}

struct Http {
    id: &'static str,
}

#[async_trait]
impl Driver for Http {
    #[kernel_span(name = "demo.driver.execute", kind = client, attrs(driver_id = self.id, attempt))]
    async fn execute(&self, attempt: u32) -> Result<String, std::io::Error> {
        tokio::task::yield_now().await;
        if attempt == 0 {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        Ok(format!("{}#{attempt}", self.id))
    }
}

#[kernel_span(name = "demo.invoke")]
async fn invoke(driver: &dyn Driver) -> String {
    let _ = driver.execute(0).await;
    driver.ping().await;
    driver.execute(1).await.unwrap()
}

fn main() {
    let cap = Capture::install_global();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let out = rt.block_on(async {
        tokio::spawn(async { invoke(&Http { id: "http" }).await }).await.unwrap()
    });
    assert_eq!(out, "http#1");
    if cfg!(feature = "otel") {
        let root = cap.span("demo.invoke");
        let attempts: Vec<_> = cap.spans().into_iter().filter(|s| s.name == "demo.driver.execute").collect();
        assert_eq!(attempts.len(), 2);
        assert!(attempts.iter().all(|a| root.is_parent_of(a) && a.kind == "client"));
        assert_eq!(attempts[0].attr("error.type"), Some("timed_out"));
        assert_eq!(attempts[1].attr("agent_kernel.attempt"), Some("1"));
        assert_eq!(attempts[1].attr("agent_kernel.driver_id"), Some("http"));
        assert!(root.is_parent_of(&cap.span("demo.driver.default")));
    }
}
