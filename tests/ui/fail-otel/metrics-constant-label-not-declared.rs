// Checks: every label of a metric constant must be a key of the function's
// `attrs(...)` or `status` (a `const` assertion, at the metric).
#![allow(unused)]
use agent_kernel_otel::{kernel_span, CounterSpec};

const DENIALS: CounterSpec = CounterSpec::new("agent_kernel.policy_denials", "{denial}", "", &["capabilty_id", "status"]);

#[kernel_span(name = "x", attrs(capability_id), metrics(counter(DENIALS)))]
fn f(capability_id: &str) {}

fn main() {}
