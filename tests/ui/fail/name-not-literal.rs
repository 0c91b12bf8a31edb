// Checks: the span name must be a string literal, not an expression.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

const NAME: &str = "agent_kernel.invoke";

#[kernel_span(name = NAME)]
fn f() {}

fn main() {}
