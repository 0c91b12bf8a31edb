// Checks: an `extern "C"` function is refused at `extern`.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x")]
extern "C" fn f() {}

fn main() {}
