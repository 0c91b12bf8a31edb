// Checks: a metric needs a name.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(unit = "{invocation}")))]
fn f() {}

fn main() {}
