//! Correlation with the audit record.

/// The W3C trace id (32 lowercase hex digits) and span id (16) of the current
/// span, when there is a valid one in the current OpenTelemetry `Context`.
///
/// The kernel stores these on each `ActionTrace` so that the audit record and
/// the exported spans point at each other. `None` without the `otel` feature,
/// outside any span, or when the current span is a no-op.
pub fn current_trace_ids() -> Option<(String, String)> {
    #[cfg(feature = "otel")]
    {
        use opentelemetry::trace::TraceContextExt;
        opentelemetry::Context::map_current(|cx| {
            let span = cx.span();
            let sc = span.span_context();
            sc.is_valid()
                .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
        })
    }
    #[cfg(not(feature = "otel"))]
    {
        None
    }
}
