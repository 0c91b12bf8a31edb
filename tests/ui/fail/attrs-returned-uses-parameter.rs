use agent_kernel_otel::kernel_span;

#[kernel_span(name = "demo.filter", attrs(growth = |out: &usize| *out - rows))]
fn filter(rows: usize) -> usize {
    rows * 2
}

fn main() {}
