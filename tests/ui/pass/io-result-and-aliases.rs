// Checks: `Result` detected by type through `io::Result<T>` and a qualified
// path; a type alias with another name needs `result`; `no_result` turns
// detection off for a `Result` that should not set the status.
#![deny(warnings)]
use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

type KernelResult<T> = Result<T, std::io::Error>;

#[kernel_span(name = "demo.io")]
fn read(missing: bool) -> std::io::Result<u8> {
    if missing {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "/etc/secret"));
    }
    Ok(1)
}

#[kernel_span(name = "demo.alias", result)]
fn alias(fail: bool) -> KernelResult<()> {
    if fail { Err(std::io::ErrorKind::PermissionDenied.into()) } else { Ok(()) }
}

#[kernel_span(name = "demo.qualified")]
fn qualified() -> core::result::Result<(), std::fmt::Error> {
    Err(std::fmt::Error)
}

#[kernel_span(name = "demo.no_result", no_result)]
fn probe() -> Result<(), ()> {
    Err(())
}

fn main() {
    let cap = Capture::install_global();
    assert!(read(true).is_err());
    assert!(read(false).is_ok());
    assert!(alias(true).is_err());
    assert!(qualified().is_err());
    assert!(probe().is_err());
    if cfg!(feature = "otel") {
        let io: Vec<_> = cap.spans().into_iter().filter(|s| s.name == "demo.io").collect();
        assert_eq!(io[0].attr("error.type"), Some("not_found"));
        assert_eq!(io[0].error.as_deref(), Some("not_found"));
        assert_eq!(io[1].error, None);
        assert_eq!(cap.span("demo.alias").attr("error.type"), Some("permission_denied"));
        assert!(cap.span("demo.qualified").error.is_some());
        assert_eq!(cap.span("demo.no_result").error, None);
    }
}
