// Checks: the grammar expresses the telemetry contract's metrics: the
// invocations counter and duration histogram (explicit buckets 0.01 ms to
// 10 s) labelled capability_id, safety_class, status, and the denials counter
// recorded only on denial with a deferred reason_category; exact counts.
#![deny(warnings)]
use std::borrow::Cow;

use agent_kernel_otel::{kernel_span, record, SpanError, Telemetry};
use agent_kernel_tests::Capture;

#[derive(Debug)]
enum KernelError {
    Denied,
    Driver,
}

impl SpanError for KernelError {
    fn error_type(&self) -> &'static str {
        match self {
            KernelError::Denied => "policy_denied",
            KernelError::Driver => "driver_error",
        }
    }
    fn is_denial(&self) -> bool {
        matches!(self, KernelError::Denied)
    }
    fn redacted_message(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.error_type())
    }
}

struct Kernel {
    telemetry: Telemetry,
}

impl Kernel {
    #[kernel_span(
        name = "agent_kernel.invoke",
        telemetry = self.telemetry,
        attrs(capability_id, safety_class = deferred, reason_category = deferred),
        metrics(
            counter(name = "agent_kernel.invocations", unit = "{invocation}",
                    description = "Capability invocations",
                    labels(capability_id, safety_class, status)),
            histogram(name = "agent_kernel.invocation_duration", unit = "ms",
                      buckets = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000],
                      labels(capability_id, safety_class, status)),
            counter(name = "agent_kernel.policy_denials", unit = "{denial}",
                    labels(capability_id, reason_category), when = denied),
        ),
    )]
    fn invoke(&self, capability_id: &str, outcome: u8) -> Result<(), KernelError> {
        record("safety_class", if capability_id.contains("list") { "read" } else { "write" });
        match outcome {
            0 => Ok(()),
            1 => {
                record("reason_category", "missing_token");
                Err(KernelError::Denied)
            }
            _ => Err(KernelError::Driver),
        }
    }
}

fn main() {
    let cap = Capture::new();
    let k = Kernel { telemetry: cap.telemetry() };
    for outcome in [0, 0, 0, 1, 1, 2] {
        let _ = k.invoke("billing.list", outcome);
    }
    if cfg!(feature = "otel") {
        let l = |status| [("capability_id", "billing.list"), ("safety_class", "read"), ("status", status)];
        assert_eq!(cap.count("agent_kernel.invocations", &l("success")), 3);
        assert_eq!(cap.count("agent_kernel.invocations", &l("denied")), 2);
        assert_eq!(cap.count("agent_kernel.invocations", &l("error")), 1);
        assert_eq!(cap.count("agent_kernel.invocation_duration", &l("success")), 3);
        assert_eq!(
            cap.count("agent_kernel.policy_denials", &[("capability_id", "billing.list"), ("reason_category", "missing_token")]),
            2
        );
        let points = cap.points();
        let hist = points.iter().find(|p| p.name == "agent_kernel.invocation_duration").unwrap();
        assert_eq!(hist.unit, "ms");
        assert_eq!(hist.bounds.first(), Some(&0.01));
        assert_eq!(hist.bounds.last(), Some(&10000.0));
        assert_eq!(points.iter().filter(|p| p.name == "agent_kernel.policy_denials").count(), 1);
        let denied = cap.spans().into_iter().find(|s| s.attr("error.type") == Some("policy_denied")).unwrap();
        assert_eq!(denied.error.as_deref(), Some("policy_denied"));
    }
}
