// Checks: a constant key may not repeat another key (compared by value).
#![allow(unused)]
use agent_kernel_otel::kernel_span;

mod keys {
    pub const CAPABILITY_ID: &str = "agent_kernel.capability_id";
}

#[kernel_span(name = "x", attrs(capability_id, keys::CAPABILITY_ID = capability_id))]
fn f(capability_id: &str) {}

fn main() {}
