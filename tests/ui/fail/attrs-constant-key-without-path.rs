// Checks: a SCREAMING_CASE identifier key would be namespaced; a constant key
// is written as a path.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

const CAPABILITY_ID: &str = "agent_kernel.capability_id";

#[kernel_span(name = "x", attrs(CAPABILITY_ID = id))]
fn f(id: &str) {}

fn main() {}
