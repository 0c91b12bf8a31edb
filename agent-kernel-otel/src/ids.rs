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

/// `bytes` as lowercase hex: a table look-up per nibble into a stack buffer,
/// then one allocation (`to_string()` on the ids goes through `core::fmt`,
/// several times slower, on every invoke). `None` if `bytes` is longer than
/// a trace id.
#[cfg(feature = "otel")]
fn lower_hex(bytes: &[u8]) -> Option<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    let out = buf.get_mut(..bytes.len() * 2)?;
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    std::str::from_utf8(out).ok().map(str::to_owned)
}

#[cfg(all(test, feature = "otel"))]
mod tests {
    use super::lower_hex;

    #[test]
    fn lower_hex_matches_the_w3c_form() {
        use opentelemetry::trace::{SpanId, TraceId};
        let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").ok();
        let span = SpanId::from_hex("00f067aa0ba902b7").ok();
        let (Some(trace), Some(span)) = (trace, span) else {
            panic!("valid ids");
        };
        assert_eq!(
            lower_hex(&trace.to_bytes()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            lower_hex(&span.to_bytes()).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(lower_hex(&[]).as_deref(), Some(""));
        assert_eq!(lower_hex(&[0x00, 0xff, 0x0a]).as_deref(), Some("00ff0a"));
    }
}
