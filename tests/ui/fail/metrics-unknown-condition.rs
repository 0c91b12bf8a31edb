// Checks: `when` takes one of the listed outcomes.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", metrics(counter(name = "c", when = denid)))]
fn f() -> Result<(), ()> { Ok(()) }

fn main() {}
