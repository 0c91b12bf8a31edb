// Checks: `attrs` takes a parenthesized list.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs = principal_id)]
fn f(principal_id: &str) {}

fn main() {}
