// Checks: metric names follow the OpenTelemetry instrument-name rules.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = "9 invocations")))]
fn f() {}

fn main() {}
