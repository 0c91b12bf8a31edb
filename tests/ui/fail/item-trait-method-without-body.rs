// Checks: a trait method without a body cannot be instrumented.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

trait Driver {
    #[kernel_span(name = "x")]
    fn execute(&self) -> u32;
}

fn main() {}
