// Checks: a histogram records a duration and needs a time unit.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(histogram(name = "agent_kernel.invocation_duration")))]
fn f() {}

fn main() {}
