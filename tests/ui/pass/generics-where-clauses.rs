// Checks: generic functions with lifetimes, type parameters, `impl Trait`
// arguments and where clauses; one call site, several instantiations.
#![deny(warnings)]
use std::fmt::Display;

use agent_kernel_otel::kernel_span;
use agent_kernel_tests::Capture;

#[kernel_span(name = "demo.generic", attrs(label))]
fn describe<'a, T, U: Clone>(label: &'a str, value: T, extra: impl AsRef<[U]>) -> String
where
    T: Display + Send + 'a,
{
    format!("{label}={value}:{}", extra.as_ref().len())
}

struct Wrapper<T>(T);

impl<T: Display> Wrapper<T> {
    #[kernel_span(name = "demo.generic.method")]
    fn show<'s>(&'s self) -> impl Display + 's
    where
        T: 's,
    {
        &self.0
    }
}

fn main() {
    let cap = Capture::install_global();
    assert_eq!(describe("a", 1u8, vec![1, 2]), "a=1:2");
    assert_eq!(describe("b", "x", [0u8; 3]), "b=x:3");
    assert_eq!(Wrapper(5).show().to_string(), "5");
    if cfg!(feature = "otel") {
        let spans: Vec<_> = cap.spans().into_iter().filter(|s| s.name == "demo.generic").collect();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].attr("agent_kernel.label"), Some("b"));
        cap.span("demo.generic.method");
    }
}
