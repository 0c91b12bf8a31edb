// Checks: `#[async_trait]` below `#[kernel_span]` on the method (the wrong place) is refused with the fix.
#![allow(unused)]
use agent_kernel_otel::kernel_span;
use async_trait::async_trait;

struct Http;

impl Http {
    #[kernel_span(name = "x")]
    #[async_trait]
    async fn execute(&self) {}
}

fn main() {}
