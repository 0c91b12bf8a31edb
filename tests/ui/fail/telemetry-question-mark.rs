// Checks: the `telemetry` expression is held to the same rule as attribute
// expressions: no `?` that would return from the function.
#![allow(unused)]
use agent_kernel_otel::{kernel_span, Telemetry};

#[kernel_span(name = "x", telemetry = binding.ok_or(Missing)?)]
fn f(binding: Option<Telemetry>) -> Result<(), Missing> { Ok(()) }

#[derive(Debug)]
struct Missing;

fn main() {}
