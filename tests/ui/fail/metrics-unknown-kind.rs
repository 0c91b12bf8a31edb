// Checks: an unknown metric kind suggests `counter`.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(conter(name = "agent_kernel.invocations")))]
fn f() {}

fn main() {}
