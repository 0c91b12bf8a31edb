// Checks: bucket boundaries must increase; the offending literal is pointed at.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(histogram(name = "d", unit = "ms", buckets = [0.01, 1, 0.5])))]
fn f() {}

fn main() {}
