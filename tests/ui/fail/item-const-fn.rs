// Checks: a `const fn` is refused at `const`.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x")]
const fn f() -> u32 { 1 }

fn main() {}
