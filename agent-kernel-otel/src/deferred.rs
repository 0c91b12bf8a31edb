//! Deferred attributes: declared `key = deferred` in `attrs(...)`, recorded by
//! the body later with [`record`].

use crate::ToAttrValue;

/// Records a value for a key that the current `#[kernel_span]` declared as
/// `key = deferred`, from the body or from any function it calls (sync or
/// async, on any thread the OpenTelemetry `Context` is carried to).
///
/// `key` is the key as written in `attrs(...)`: `"safety_class"` for
/// `safety_class = deferred`, `"gen_ai.tool.name"` for
/// `"gen_ai.tool.name" = deferred`. The innermost kernel span that declared
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
    #[cfg(feature = "otel")]
    {
        if !crate::switch::is_enabled() {
            return false;
        }
        let slot = opentelemetry::Context::map_current(|cx| {
            cx.get::<crate::private::Scope>()
                .and_then(|s| s.slot.clone())
        });
        let mut current = slot.as_deref();
        while let Some(slot) = current {
            if let Some(i) = slot.keys.iter().position(|k| k.key == key) {
                let v = value
                    .to_attr_value()
                    .map(crate::AttrValue::into_otel_shared);
                let mut values = slot
                    .values
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(entry) = values.get_mut(i) {
                    *entry = v;
                }
                return true;
            }
            current = slot.parent.as_deref();
        }
        false
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = (key, value);
        false
    }
}
