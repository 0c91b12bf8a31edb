// Checks: a histogram constant records durations: its unit is s, ms, us or ns.
#![allow(unused)]
use agent_kernel_otel::{kernel_span, HistogramSpec};

const LATENCY: HistogramSpec = HistogramSpec::new("agent_kernel.latency", "min", "", &[]);

#[kernel_span(name = "x", metrics(histogram(LATENCY)))]
fn f() {}

fn main() {}
