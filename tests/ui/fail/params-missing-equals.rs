// Checks: `name` without `= "..."` says what to write.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name)]
fn f() {}

fn main() {}
