// Checks: `buckets` applies to histograms only.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = "c", buckets = [1, 2])))]
fn f() {}

fn main() {}
