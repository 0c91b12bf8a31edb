// Checks: an attribute expression must start from a parameter (or `self`).
#![allow(unused)]
use agent_kernel_otel::kernel_span;

struct Token { capability_id: String }

#[kernel_span(name = "agent_kernel.invoke", attrs(capability_id = tokn.capability_id))]
fn invoke(token: &Token) {}

fn main() {}
