// Checks: early `return` and `?` end the span on every path; `Ok` leaves the
// status unset; `Err` sets ERROR, `error.type` and an `exception` event, and
// the error's Display text (which may hold secrets) is never recorded.
#![deny(warnings)]
use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

#[derive(Debug)]
struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret input {}", self.0)
    }
}

fn parse(s: &str) -> Result<u32, ParseError> {
    s.parse().map_err(|_| ParseError(s.to_owned()))
}

#[kernel_span(name = "demo.early")]
fn sum(a: &str, b: &str) -> Result<u32, ParseError> {
    if a.is_empty() {
        return Ok(0);
    }
    let x = parse(a)?;
    let y = parse(b)?;
    Ok(x + y)
}

fn main() {
    let cap = Capture::install_global();
    assert_eq!(sum("", "x").unwrap(), 0);
    assert_eq!(sum("1", "2").unwrap(), 3);
    assert!(sum("1", "hunter2").is_err());
    if cfg!(feature = "otel") {
        let spans: Vec<_> = cap.spans().into_iter().filter(|s| s.name == "demo.early").collect();
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].error, None);
        assert_eq!(spans[1].error, None);
        let err = &spans[2];
        let desc = err.error.clone().unwrap();
        assert!(desc.ends_with("ParseError"), "{desc}");
        assert!(!desc.contains("hunter2"));
        assert!(err.attr("error.type").unwrap().ends_with("ParseError"));
        let event = err.event("exception").expect("exception event");
        assert!(event.iter().all(|(_, v)| !v.contains("hunter2")));
    }
}
