// Checks: a label must be a declared attribute key or `status`; the nearest is suggested.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(
    name = "x",
    attrs(capability_id),
    metrics(counter(name = "agent_kernel.invocations", labels(capabilty_id, status))),
)]
fn f(capability_id: &str) {}

fn main() {}
