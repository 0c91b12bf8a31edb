//! Telemetry never changes a result (issue 13), for the control flow the
//! macro's check cannot see: a `return` hidden in a macro call inside an
//! attribute expression (or the `telemetry` expression). The generated code
//! evaluates each such expression in a closure of its own, so the hidden
//! `return` ends that closure (the attribute is left out) and the function
//! returns what its body returns. Hidden control flow that cannot end a
//! closure returning `()` (`?`, `break`, `continue`, `.await`, a `return`
//! with a value of another type) fails to compile with `otel` instead; it
//! never leaves the function either.
//!
//! The tests run in both feature states: without `otel` the functions are
//! unchanged and no attribute expression is evaluated, so only the results
//! are checked there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agent_kernel_otel::{Telemetry, kernel_span};
use agent_kernel_tests::Capture;

/// `Some(v)` gives `v`; `None` returns `Default::default()` from whatever
/// function or closure the expansion sits in. The macro cannot look inside.
macro_rules! or_default {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Default::default(),
        }
    };
}

#[kernel_span(
    name = "test.hidden_return.sync",
    telemetry = telemetry,
    attrs(first = or_default!(values.first().copied()))
)]
fn total(telemetry: &Telemetry, values: &[u32]) -> u32 {
    values.iter().sum::<u32>() + 100
}

#[kernel_span(
    name = "test.hidden_return.returned",
    telemetry = telemetry,
    attrs(first = or_default!(values.first().copied()), found = |out| out.is_some())
)]
fn count(telemetry: &Telemetry, values: &[u32]) -> Option<usize> {
    Some(values.len())
}

#[kernel_span(
    name = "test.hidden_return.async",
    telemetry = telemetry,
    attrs(first = or_default!(values.first().copied()))
)]
async fn total_async(telemetry: &Telemetry, values: &[u32]) -> u32 {
    tokio::task::yield_now().await;
    values.iter().sum::<u32>() + 100
}

#[kernel_span(name = "test.hidden_return.telemetry", telemetry = or_default!(binding))]
fn bound(binding: Option<&Telemetry>, n: u32) -> u32 {
    n + 1
}

#[test]
fn a_hidden_return_in_an_attribute_leaves_the_result_to_the_body() {
    let cap = Capture::new();
    let t = cap.telemetry();
    assert_eq!(total(&t, &[]), 100);
    assert_eq!(total(&t, &[5, 6]), 111);
    assert_eq!(count(&t, &[]), Some(0));
    assert_eq!(count(&t, &[7]), Some(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(total_async(&t, &[])), 100);
    assert_eq!(rt.block_on(total_async(&t, &[1])), 101);
    if cfg!(feature = "otel") {
        let spans = cap.spans();
        for name in [
            "test.hidden_return.sync",
            "test.hidden_return.returned",
            "test.hidden_return.async",
        ] {
            let firsts: Vec<Option<&str>> = spans
                .iter()
                .filter(|s| s.name == name)
                .map(|s| s.attr("agent_kernel.first"))
                .collect();
            // The call on the empty slice still has its span, without the
            // attribute the hidden `return` skipped.
            assert_eq!(firsts.len(), 2, "{name}: {spans:?}");
            assert_eq!(firsts[0], None, "{name}");
            assert!(firsts[1].is_some(), "{name}");
        }
        let found: Vec<Option<&str>> = spans
            .iter()
            .filter(|s| s.name == "test.hidden_return.returned")
            .map(|s| s.attr("agent_kernel.found"))
            .collect();
        assert_eq!(found, [Some("true"), Some("true")]);
    }
}

#[test]
fn a_hidden_return_in_the_telemetry_expression_leaves_the_result_to_the_body() {
    let cap = Capture::new();
    let t = cap.telemetry();
    // `None`: the hidden `return` gives the closure a default binding.
    assert_eq!(bound(None, 1), 2);
    assert_eq!(bound(Some(&t), 2), 3);
    if cfg!(feature = "otel") {
        assert_eq!(
            cap.span("test.hidden_return.telemetry").name,
            "test.hidden_return.telemetry"
        );
    }
}
