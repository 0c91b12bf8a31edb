// Checks: labels name declared attributes; a value belongs in `attrs(...)`.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = "c", labels(capability_id = id))))]
fn f(id: &str) {}

fn main() {}
