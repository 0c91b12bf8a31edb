use agent_kernel_otel::kernel_span;

#[kernel_span(name = "demo.filter", attrs(rows = |out, extra| out + extra))]
fn filter(rows: usize) -> usize {
    rows
}

fn main() {}
