// Checks: a span name is required.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(kind = internal)]
fn f() {}

fn main() {}
