// Checks: two `#[kernel_span]` on one function are refused at the second.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "a")]
#[kernel_span(name = "b")]
fn f() {}

fn main() {}
