// Checks: `&self`, `&mut self` and `self` methods, the root binding taken from
// `telemetry = <expr>` (a `Telemetry` or `&Telemetry`), and a `&mut self`
// method returning a reborrow through `Result`.
#![deny(warnings)]
use agent_kernel_otel::{kernel_span, Telemetry};
use agent_kernel_tests::Capture;

struct Kernel {
    telemetry: Telemetry,
    id: String,
    hits: u32,
}

impl Kernel {
    #[kernel_span(name = "demo.ref", telemetry = self.telemetry, attrs(id = self.id))]
    fn by_ref(&self) -> &str {
        &self.id
    }

    #[kernel_span(name = "demo.mut", telemetry = &self.telemetry, attrs(hits = self.hits))]
    fn by_mut(&mut self) -> Result<&mut u32, String> {
        self.hits += 1;
        Ok(&mut self.hits)
    }

    #[kernel_span(name = "demo.owned", telemetry = self.telemetry.clone())]
    fn into_id(self) -> String {
        self.id
    }
}

fn main() {
    let cap = Capture::new();
    let mut k = Kernel { telemetry: cap.telemetry(), id: "k1".into(), hits: 0 };
    assert_eq!(k.by_ref(), "k1");
    *k.by_mut().unwrap() += 10;
    assert_eq!(k.hits, 11);
    assert_eq!(k.into_id(), "k1");
    if cfg!(feature = "otel") {
        assert_eq!(cap.span("demo.ref").attr("agent_kernel.id"), Some("k1"));
        assert_eq!(cap.span("demo.mut").attr("agent_kernel.hits"), Some("0"));
        assert_eq!(cap.span("demo.mut").error, None);
        assert_eq!(cap.span("demo.owned").attrs.len(), 0);
    }
}
