// Checks: `result` on a function that returns nothing is refused.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", result)]
fn f() {}

fn main() {}
