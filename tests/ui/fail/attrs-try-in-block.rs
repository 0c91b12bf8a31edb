// Checks: `?` is refused wherever it sits in an attribute expression (here
// inside a block), since it would return from the function before its body.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs(n = { input.parse::<u32>()? }))]
fn f(input: &str) -> Result<(), std::num::ParseIntError> { Ok(()) }

fn main() {}
