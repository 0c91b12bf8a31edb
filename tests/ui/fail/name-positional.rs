// Checks: a bare string is refused with the `name = "..."` fix.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span("agent_kernel.invoke")]
fn f() {}

fn main() {}
