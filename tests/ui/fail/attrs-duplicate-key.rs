// Checks: two attributes with the same span key (one namespaced, one verbatim) are refused.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs(capability_id, "agent_kernel.capability_id" = capability_id))]
fn f(capability_id: &str) {}

fn main() {}
