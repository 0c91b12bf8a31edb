// Checks: a `break` whose loop is outside the attribute expression is
// refused (a `break` inside a loop of the expression itself is fine), and
// so is a labeled `break` to a label the expression does not define.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs(
    n = if values.is_empty() { break } else { values.len() },
    m = 'inner: loop { if values.is_empty() { break 'outer 0 } break 'inner 1 },
))]
fn f(values: &[u32]) -> usize { values.len() }

fn main() {}
