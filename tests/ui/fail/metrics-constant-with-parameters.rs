// Checks: beside a metric constant only `when` may be given; the rest is in the constant.
#![allow(unused)]
use agent_kernel_otel::{kernel_span, CounterSpec};

const CALLS: CounterSpec = CounterSpec::new("agent_kernel.calls", "", "", &[]);

#[kernel_span(name = "x", metrics(counter(CALLS, when = success, labels(status))))]
fn f() {}

fn main() {}
