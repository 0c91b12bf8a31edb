// Checks: several argument errors are reported in one pass, each at its own token.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs(missing, also_missing = nope.field))]
fn f(present: u8) {}

fn main() {}
