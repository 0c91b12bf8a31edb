// Checks: the attribute on an impl block is refused, pointing to the methods.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

struct Kernel;

#[kernel_span(name = "x")]
impl Kernel {
    fn invoke(&self) {}
}

fn main() {}
