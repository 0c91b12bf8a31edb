// Checks: the kind is an identifier, not a string.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", kind = "client")]
fn f() {}

fn main() {}
