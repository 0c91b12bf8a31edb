// Checks: a string-literal key needs a value.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = "x", attrs("gen_ai.tool.name"))]
fn f(tool: &str) {}

fn main() {}
