// Checks: `?` is refused in an attribute expression (telemetry never changes a result).
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs(n = input.parse::<u32>()?))]
fn f(input: &str) -> Result<(), std::num::ParseIntError> { Ok(()) }

fn main() {}
