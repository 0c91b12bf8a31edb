//! W3C trace-context propagation across process boundaries: what an HTTP
//! driver puts on the wire, and what a tool server reads back.

/// Writes the current span's W3C `traceparent` (and `tracestate`, when
/// non-empty) through `set(name, value)`, then lets the globally installed
/// OpenTelemetry propagator add its own headers (baggage, vendor formats).
///
/// `traceparent` is always written from the current span context, whatever
/// propagator the application installed (the default global one is a no-op),
/// so a remote tool joins the trace as soon as the caller records spans.
/// Nothing is written without the `otel` feature, while telemetry is
/// disabled, or outside a valid span.
///
/// ```
/// let mut headers = Vec::new();
/// agent_kernel_otel::inject_context(|name, value| headers.push((name.to_owned(), value)));
/// assert!(headers.is_empty()); // no span is current here
/// ```
pub fn inject_context(mut set: impl FnMut(&str, String)) {
    #[cfg(feature = "otel")]
    {
        use opentelemetry::propagation::Injector;
        use opentelemetry::trace::TraceContextExt;

        struct Sink<'a, F: FnMut(&str, String)>(&'a mut F);
        impl<F: FnMut(&str, String)> Injector for Sink<'_, F> {
            fn set(&mut self, key: &str, value: String) {
                // traceparent/tracestate are ours; never let a second writer
                // emit a conflicting copy.
                if key != TRACEPARENT && key != TRACESTATE {
                    (self.0)(key, value);
                }
            }
        }

        if !crate::is_enabled() {
            return;
        }
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        set(
            TRACEPARENT,
            format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            ),
        );
        let state = sc.trace_state().header();
        if !state.is_empty() {
            set(TRACESTATE, state);
        }
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut Sink(&mut set));
        });
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = &mut set;
    }
}

/// The W3C trace-context header that carries the trace and parent span ids.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C trace-context header that carries vendor state.
pub const TRACESTATE: &str = "tracestate";
