// Checks: the same metric declared twice on one function is refused.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = "c"), counter(name = "c")))]
fn f() {}

fn main() {}
