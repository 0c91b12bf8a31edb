// Checks: a span name computed at run time may not leave the function.
#![allow(unused)]
use agent_kernel_otel::kernel_span;

#[kernel_span(name = tool.parse::<String>()?)]
fn f(tool: &str) -> Result<(), std::string::ParseError> {
    Ok(())
}

fn main() {}
