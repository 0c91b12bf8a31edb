// Checks: the span name must not be empty (or blank).
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "  ")]
fn f() {}

fn main() {}
