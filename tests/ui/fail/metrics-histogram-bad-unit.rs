// Checks: a histogram unit must be one of s, ms, us, ns.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(histogram(name = "d", unit = "{invocation}")))]
fn f() {}

fn main() {}
