// Checks: a counter constant cannot be used as a histogram.
#![allow(unused)]
use agent_kernel_otel::{kernel_span, CounterSpec};

const CALLS: CounterSpec = CounterSpec::new("agent_kernel.calls", "", "", &[]);

#[kernel_span(name = "x", metrics(histogram(CALLS)))]
fn f() {}

fn main() {}
