// Checks: `.await` is refused in an attribute expression, wherever it sits:
// attribute values are computed synchronously, before the body runs.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

async fn lookup(id: u32) -> u32 { id }

#[kernel_span(name = "x", attrs(n = (lookup(id).await + 1) * 2))]
async fn f(id: u32) -> u32 { id }

fn main() {}
