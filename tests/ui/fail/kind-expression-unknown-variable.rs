// Checks: a parenthesised kind is a run-time expression over the parameters.
#![allow(unused)]
use agent_kernel_otel::{kernel_span, SpanKind};

#[kernel_span(name = "x", kind = (knd))]
fn f(kind: SpanKind) {}

fn main() {}
