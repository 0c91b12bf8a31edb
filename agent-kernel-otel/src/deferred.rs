//! Deferred attributes: declared `key = deferred` in `attrs(...)`, recorded by
//! the body later with [`record`].

use crate::ToAttrValue;

/// Records a value for a key that the current `#[kernel_span]` declared as
/// `key = deferred`, from the body or from any function it calls (sync or
/// async, on any thread the OpenTelemetry `Context` is carried to).
///
/// `key` is the key as written in `attrs(...)` (`"safety_class"` for
/// `safety_class = deferred`, `"gen_ai.tool.name"` for
/// `"gen_ai.tool.name" = deferred`) or the span attribute key
/// (`"agent_kernel.safety_class"`): a key declared as a constant
/// (`keys::SAFETY_CLASS = deferred`) is recorded with that constant. The innermost kernel span that declared
/// the key receives it (a span that did not declare it passes it to its
/// parent). The value is set on the span when it ends and is available as a
/// metric label of that span's metrics; the last value recorded wins, and a
/// `None` value clears it.
///
/// Returns whether some enclosing span declared the key (always `false` while
/// telemetry is disabled, or without the `otel` feature).
///
/// ```
/// use agent_kernel_otel::{kernel_span, record};
///
/// #[kernel_span(name = "demo.classify", attrs(safety_class = deferred))]
/// fn classify(input: &str) -> usize {
///     let class = if input.len() > 10 { "write" } else { "read" };
///     record("safety_class", class);
///     input.len()
/// }
/// # assert_eq!(classify("abc"), 3);
/// ```
pub fn record<V: ToAttrValue>(key: &str, value: V) -> bool {
    record_all(&[(key, &value)]) == 1
}

/// Records several deferred values at once: the same as calling [`record`]
/// for each pair in order, with one look-up of the current context for all
/// of them (the kernel records five values at the end of the firewall).
///
/// Returns how many of the keys some enclosing span declared (always 0 while
/// telemetry is disabled, or without the `otel` feature).
///
/// ```
/// use agent_kernel_otel::{kernel_span, record_all};
///
/// #[kernel_span(name = "demo.count", attrs(rows = deferred, chars = deferred))]
/// fn count(rows: &[&str]) -> usize {
///     let chars: usize = rows.iter().map(|r| r.len()).sum();
///     record_all(&[("rows", &rows.len()), ("chars", &chars)]);
///     chars
/// }
/// # assert_eq!(count(&["ab", "c"]), 3);
/// ```
pub fn record_all(values: &[(&str, &dyn ToAttrValue)]) -> usize {
    #[cfg(feature = "otel")]
    {
        if !crate::switch::is_enabled() {
            return 0;
        }
        // The values are taken out of the context before any value is
        // converted: a conversion is user code and must not run inside the
        // borrow of the thread's context stack.
        let Some(innermost) = crate::context::current_deferred() else {
            return 0;
        };
        let mut recorded = 0;
        for (key, value) in values {
            let mut current = Some(&*innermost);
            while let Some(span_values) = current {
                if let Some(i) = span_values
                    .keys
                    .iter()
                    .position(|k| k.key == *key || k.span_key == *key)
                {
                    let v = value
                        .to_attr_value()
                        .map(crate::AttrValue::into_otel_shared);
                    let mut values = span_values
                        .values
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(entry) = values.get_mut(i) {
                        *entry = v;
                    }
                    recorded += 1;
                    break;
                }
                current = span_values.parent.as_deref();
            }
        }
        recorded
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = values;
        0
    }
}
