// Checks: a `continue` whose loop is outside the attribute expression is
// refused (here in the iterator of a `for`, which is evaluated before that
// loop starts).
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs(n = { let mut n = 0; for v in { if values.is_empty() { continue; } values } { n += v; } n }))]
fn f(values: &[u32]) -> usize { values.len() }

fn main() {}
