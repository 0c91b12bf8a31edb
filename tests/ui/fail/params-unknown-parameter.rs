// Checks: an unknown top-level parameter names the nearest valid one and lists them all.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(nmae = "agent_kernel.invoke")]
fn f() {}

fn main() {}
