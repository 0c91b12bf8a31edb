// Checks: a label listed twice is refused.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = "c", labels(status, status))))]
fn f() {}

fn main() {}
