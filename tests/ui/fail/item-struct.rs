// Checks: the attribute on a struct is refused at `struct`.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x")]
struct Kernel;

fn main() {}
