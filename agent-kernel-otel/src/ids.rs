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
            if !sc.is_valid() {
                return None;
            }
            Some((
                lower_hex(&sc.trace_id().to_bytes())?,
                lower_hex(&sc.span_id().to_bytes())?,
            ))
        })
    }
    #[cfg(not(feature = "otel"))]
    {
        None
    }
}

/// `bytes` as lowercase hex (a table look-up per byte; `to_string()` on the ids
/// goes through `core::fmt`, several times slower on every invoke).
#[cfg(feature = "otel")]
fn lower_hex(bytes: &[u8]) -> Option<String> {
    let mut out = vec![0; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut out).ok()?;
    String::from_utf8(out).ok()
}
