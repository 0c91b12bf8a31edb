// Checks: `impl Trait` in return position, bare and inside a `Result`, sync
// and async.
#![deny(warnings)]
use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

#[kernel_span(name = "demo.iter")]
fn evens(n: u32) -> impl Iterator<Item = u32> {
    (0..n).filter(|x| x % 2 == 0)
}

#[kernel_span(name = "demo.iter.result")]
fn checked(n: u32) -> Result<impl Iterator<Item = u32>, String> {
    if n == 0 {
        return Err("empty".to_owned());
    }
    Ok(0..n)
}

#[kernel_span(name = "demo.iter.async")]
async fn later(n: u32) -> Result<impl std::fmt::Debug, std::num::ParseIntError> {
    let parsed: u32 = "7".parse()?;
    Ok(vec![parsed; n as usize])
}

fn main() {
    let cap = Capture::install_global();
    assert_eq!(evens(5).count(), 3);
    assert_eq!(checked(3).unwrap().count(), 3);
    assert!(checked(0).is_err());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(format!("{:?}", rt.block_on(later(2)).unwrap()), "[7, 7]");
    if cfg!(feature = "otel") {
        cap.span("demo.iter");
        cap.span("demo.iter.async");
        let results: Vec<_> = cap.spans().into_iter().filter(|s| s.name == "demo.iter.result").collect();
        assert_eq!(results[0].error, None);
        assert!(results[1].error.is_some());
    }
}
