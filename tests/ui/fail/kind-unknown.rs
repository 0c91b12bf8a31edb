// Checks: an unknown span kind names the nearest valid one and lists them.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", kind = internl)]
fn f() {}

fn main() {}
