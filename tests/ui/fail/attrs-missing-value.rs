// Checks: `key =` with nothing after it says what may follow.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs(safety_class = ))]
fn f() {}

fn main() {}
