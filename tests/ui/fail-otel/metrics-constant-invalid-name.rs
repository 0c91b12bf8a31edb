// Checks: a metric constant's name follows the OpenTelemetry instrument-name rules.
#![allow(unused)]
use agent_kernel_otel::{kernel_span, CounterSpec};

const CALLS: CounterSpec = CounterSpec::new("9 calls", "", "", &[]);

#[kernel_span(name = "x", metrics(counter(CALLS)))]
fn f() {}

fn main() {}
