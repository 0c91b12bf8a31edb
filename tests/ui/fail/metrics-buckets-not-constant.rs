// Checks: buckets are a list of numbers or a constant.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(histogram(name = "agent_kernel.latency", unit = "ms", buckets = bounds)))]
fn f(bounds: &[f64]) {}

fn main() {}
