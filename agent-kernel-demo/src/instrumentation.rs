//! Binding the kernel to OpenTelemetry.
//!
//! With the `otel` feature of `agent-kernel`, `instrument_kernel(&kernel)`
//! binds the kernel to the OpenTelemetry globals that
//! `agent_kernel_otel::setup::init` installed and registers the
//! `agent_kernel.budget_consumed` gauge; from then on every invoke emits the
//! span tree and the metrics of the telemetry contract, and `HttpDriver`
//! sends the W3C `traceparent` with its requests. The returned handle
//! unhooks the kernel when dropped, so the demo keeps it for the whole run.

use agent_kernel::Kernel;

pub use agent_kernel::otel::Instrumentation;

/// Binds `kernel` to the OpenTelemetry globals (see the [module docs](self)).
///
/// Call it after `agent_kernel_otel::setup::init`, before the first invoke.
pub fn instrument(kernel: &Kernel) -> Instrumentation {
    agent_kernel::otel::instrument_kernel(kernel)
}

/// Whether [`instrument`] is wired to the kernel's real instrumentation in
/// this build (printed by the demo so a reader knows why no span appears).
pub const WIRED: bool = true;
