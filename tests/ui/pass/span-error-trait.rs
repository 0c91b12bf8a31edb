// Checks: an error type implementing `SpanError` supplies `error.type`, the
// redacted status description and the exception event; one that does not
// falls back to its type name; a panic ends the span as ERROR and keeps
// unwinding.
#![deny(warnings)]
use std::borrow::Cow;

use agent_kernel_otel::{kernel_span, SpanError};
use agent_kernel_tests::Capture;

#[derive(Debug)]
struct DriverError {
    body: String,
}

impl SpanError for DriverError {
    fn error_type(&self) -> &'static str {
        "driver_http_500"
    }
    fn redacted_message(&self) -> Cow<'_, str> {
        Cow::Owned(format!("upstream failed ({} bytes)", self.body.len()))
    }
}

#[kernel_span(name = "demo.classified")]
fn classified() -> Result<(), DriverError> {
    Err(DriverError { body: "token=abc".into() })
}

#[kernel_span(name = "demo.unclassified")]
fn unclassified() -> Result<(), std::num::ParseIntError> {
    "x".parse::<u8>().map(|_| ())
}

#[kernel_span(name = "demo.panics")]
fn panics() {
    panic!("boom");
}

fn main() {
    let cap = Capture::install_global();
    assert!(classified().is_err());
    assert!(unclassified().is_err());
    std::panic::set_hook(Box::new(|_| {}));
    assert!(std::panic::catch_unwind(panics).is_err());
    if cfg!(feature = "otel") {
        let c = cap.span("demo.classified");
        assert_eq!(c.attr("error.type"), Some("driver_http_500"));
        assert_eq!(c.error.as_deref(), Some("upstream failed (9 bytes)"));
        let ev = c.event("exception").unwrap();
        assert!(ev.contains(&("exception.type".to_owned(), "driver_http_500".to_owned())));
        let u = cap.span("demo.unclassified");
        assert_eq!(u.attr("error.type"), Some("core::num::error::ParseIntError"));
        let p = cap.span("demo.panics");
        assert_eq!(p.attr("error.type"), Some("panic"));
        assert!(p.error.is_some());
    }
}
