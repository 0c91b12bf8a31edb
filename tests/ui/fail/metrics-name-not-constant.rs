// Checks: a metric name is a string literal or a constant, never a run-time value.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = metric_name)))]
fn f(metric_name: &str) {}

fn main() {}
