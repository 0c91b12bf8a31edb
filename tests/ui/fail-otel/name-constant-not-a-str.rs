// Checks: a span name given as a constant must be a `&'static str` (its type
// is checked where the generated code reads it).
#![allow(unused)]
use agent_kernel_otel::kernel_span;

const NAME: u32 = 7;

#[kernel_span(name = NAME)]
fn f() {}

fn main() {}
