// Checks: a span name computed at run time starts from the parameters.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = tol.to_string())]
fn f(tool: &str) {}

fn main() {}
