// Checks: `self` cannot be recorded whole.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

struct K;

impl K {
    #[kernel_span(name = "x", attrs(self))]
    fn f(&self) {}
}

fn main() {}
