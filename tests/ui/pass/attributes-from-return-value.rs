// Checks: `key = |out| expr` attributes computed from the return value, for a
// plain sync function, a sync `Result` function (the closure sees the
// `Result`), an async function and a function returning a future; the value
// may borrow from the return value; `None` leaves the attribute out; such a
// key can be a metric label; nothing is set when the future is dropped early.
#![deny(warnings)]
use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

struct Output {
    rows: usize,
    mode: &'static str,
    note: Option<String>,
}

#[kernel_span(
    name = "demo.filter",
    attrs(
        rows_out = |out: &Output| out.rows,
        effective_mode = |out| out.mode,
        note = |out| out.note.as_deref(),
    ),
)]
fn filter(rows: &[u32]) -> Output {
    Output { rows: rows.len(), mode: "table", note: None }
}

#[kernel_span(
    name = "demo.decide",
    attrs(decision = |r| if r.is_ok() { "allow" } else { "deny" }),
    metrics(counter(name = "demo.decisions", labels(decision, status))),
)]
fn decide(allow: bool) -> Result<u8, std::io::Error> {
    if allow {
        Ok(1)
    } else {
        Err(std::io::Error::other("no"))
    }
}

#[kernel_span(name = "demo.fetch", attrs(bytes = |body: &Vec<u8>| body.len()))]
async fn fetch(n: usize) -> Vec<u8> {
    tokio::task::yield_now().await;
    vec![0; n]
}

#[kernel_span(name = "demo.pending", attrs(bytes = |body: &Vec<u8>| body.len()))]
async fn never_finishes() -> Vec<u8> {
    std::future::pending::<()>().await;
    Vec::new()
}

#[kernel_span(name = "demo.later", attrs(len = |s: &String| s.len()))]
fn later(s: &str) -> impl std::future::Future<Output = String> + '_ {
    async move { s.to_uppercase() }
}

fn main() {
    let cap = Capture::install_global();
    assert_eq!(filter(&[1, 2, 3]).rows, 3);
    assert!(decide(true).is_ok());
    assert!(decide(false).is_err());
    assert!(decide(false).is_err());
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    assert_eq!(rt.block_on(fetch(4)).len(), 4);
    assert_eq!(rt.block_on(later("ab")), "AB");
    let dropped = rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_millis(5), never_finishes()).await
    });
    assert!(dropped.is_err());
    if cfg!(feature = "otel") {
        let f = cap.span("demo.filter");
        assert_eq!(f.attr("agent_kernel.rows_out"), Some("3"));
        assert_eq!(f.attr("agent_kernel.effective_mode"), Some("table"));
        assert_eq!(f.attr("agent_kernel.note"), None);
        assert_eq!(cap.span("demo.fetch").attr("agent_kernel.bytes"), Some("4"));
        assert_eq!(cap.span("demo.later").attr("agent_kernel.len"), Some("2"));
        assert_eq!(cap.span("demo.pending").attr("agent_kernel.bytes"), None);
        assert_eq!(cap.count("demo.decisions", &[("decision", "allow"), ("status", "success")]), 1);
        assert_eq!(cap.count("demo.decisions", &[("decision", "deny"), ("status", "error")]), 2);
    }
}
