// Checks: the binding expression must start from a parameter.
#![allow(unused)]
use agent_kernel_otel::{kernel_span, Telemetry};

#[kernel_span(name = "x", telemetry = telemetr)]
fn f(telemetry: &Telemetry) {}

fn main() {}
