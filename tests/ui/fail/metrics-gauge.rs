// Checks: gauges are not declared in `metrics(...)`; the run-time API is named.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(gauge(name = "agent_kernel.budget_consumed")))]
fn f() {}

fn main() {}
