// Checks: an `attrs` shorthand must name a parameter; the nearest one is suggested.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "agent_kernel.invoke", attrs(principl_id))]
fn invoke(principal_id: &str, capability_id: &str) {}

fn main() {}
