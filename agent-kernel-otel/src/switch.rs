//! The run-time switch: telemetry is off until something turns it on.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether generated code records anything. Read with one relaxed load per span.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns telemetry on for the whole process and (re-)reads the OpenTelemetry
/// global providers at the next span.
///
/// Call it after installing the global tracer and meter providers (the `setup`
/// module does it for you; [`Telemetry::new`](crate::Telemetry) does it too).
/// Calling it again after replacing the global providers makes
/// [`Telemetry::global`](crate::Telemetry::global) bindings pick up the new ones;
/// a tracer fetched before a provider was installed never stays a no-op.
///
/// Without the `otel` feature this does nothing: there is nothing to record.
pub fn enable() {
    #[cfg(feature = "otel")]
    crate::telemetry::reload_globals();
    ENABLED.store(cfg!(feature = "otel"), Ordering::Release);
}

/// Turns telemetry off: `#[kernel_span]` functions then cost one relaxed
/// atomic load each and run their plain body. Spans already started still end
/// normally.
pub fn disable() {
    ENABLED.store(false, Ordering::Release);
}

/// Whether telemetry is currently enabled (always `false` without the `otel`
/// feature).
#[inline]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
