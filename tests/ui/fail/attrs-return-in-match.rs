// Checks: `return` is refused in an attribute expression (here in a match
// arm): it would return from the function before its body runs.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs(n = match x { 0 => return 0, k => k }))]
fn f(x: u32) -> u32 { x + 1 }

fn main() {}
