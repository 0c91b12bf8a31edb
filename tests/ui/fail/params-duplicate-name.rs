// Checks: a parameter given twice is refused at the second one.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "a", name = "b")]
fn f() {}

fn main() {}
