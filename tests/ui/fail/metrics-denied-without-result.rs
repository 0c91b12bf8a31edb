// Checks: `when = denied` needs a function returning a Result.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = "c", when = denied)))]
fn f() -> u32 { 1 }

fn main() {}
