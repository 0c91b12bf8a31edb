// Checks: buckets given as a constant must increase.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

const BUCKETS: [f64; 3] = [0.1, 1.0, 0.5];

#[kernel_span(name = "x", metrics(histogram(name = "agent_kernel.latency", unit = "ms", buckets = BUCKETS)))]
fn f() {}

fn main() {}
