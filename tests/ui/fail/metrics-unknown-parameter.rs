// Checks: an unknown metric parameter names the nearest valid one.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = "c", lables(status))))]
fn f() {}

fn main() {}
