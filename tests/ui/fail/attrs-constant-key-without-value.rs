// Checks: a constant key names no parameter: it needs a value.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

mod keys {
    pub const ID: &str = "agent_kernel.id";
}

#[kernel_span(name = "x", attrs(keys::ID))]
fn f(id: &str) {}

fn main() {}
