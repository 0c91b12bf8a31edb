// Checks: control flow that stays inside an attribute expression is
// accepted: `break`/`continue` to a loop or labeled block of the expression,
// `return` and `?` inside a closure, `.await`, `return` and `?` inside an
// async block; and the function's result is always its body's.
#![deny(warnings)]
use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

#[kernel_span(
    name = "demo.scopes",
    attrs(
        first_even = {
            let mut found = None;
            for v in values {
                if v % 2 == 1 {
                    continue;
                }
                found = Some(*v);
                break;
            }
            found
        },
        over_ten = 'search: {
            for v in values {
                if *v > 10 {
                    break 'search true;
                }
            }
            false
        },
        count = loop { break values.len() },
        head = (|| {
            if values.is_empty() {
                return 0;
            }
            values[0]
        })(),
        parsed = (|| -> Result<u32, std::num::ParseIntError> { Ok(input.parse::<u32>()? + 1) })().ok(),
        future_size = std::mem::size_of_val(&async {
            let n: u32 = input.parse().ok()?;
            if n == 0 {
                return None;
            }
            Some(ready(n).await)
        }),
    )
)]
fn scopes(values: &[u32], input: &str) -> usize {
    values.len() + input.len()
}

async fn ready(n: u32) -> u32 {
    n
}

fn main() {
    let cap = Capture::install_global();
    assert_eq!(scopes(&[3, 4, 12], "41"), 5);
    if cfg!(feature = "otel") {
        let s = cap.span("demo.scopes");
        assert_eq!(s.attr("agent_kernel.first_even"), Some("4"));
        assert_eq!(s.attr("agent_kernel.over_ten"), Some("true"));
        assert_eq!(s.attr("agent_kernel.count"), Some("3"));
        assert_eq!(s.attr("agent_kernel.head"), Some("3"));
        assert_eq!(s.attr("agent_kernel.parsed"), Some("42"));
        assert!(s.attr("agent_kernel.future_size").is_some());
    }
}
