// Checks: `result` and `no_result` together are refused.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", result, no_result)]
fn f() -> Result<(), ()> { Ok(()) }

fn main() {}
