// Checks: a field path in `attrs` needs a key; the fix is spelled out.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

struct Token { capability_id: String }

#[kernel_span(name = "x", attrs(token.capability_id))]
fn f(token: &Token) {}

fn main() {}
