//! What a kernel span leaves in the OpenTelemetry `Context` for the code it
//! runs: the binding that spans below report to, and the values recorded for
//! deferred keys (feature `otel`).

use std::sync::{Arc, Mutex};

use opentelemetry::Value;

use crate::Telemetry;
use crate::private::DeferredKey;

/// The context value of a kernel span: set only when it differs from what
/// the parent context already implies (another binding, or deferred keys).
#[derive(Clone)]
pub(crate) struct Inherited {
    /// The binding of the spans below.
    pub(crate) telemetry: Telemetry,
    /// The innermost kernel span's deferred values.
    pub(crate) deferred: Option<Arc<DeferredValues>>,
}

/// The values recorded for one span's deferred keys.
pub(crate) struct DeferredValues {
    pub(crate) keys: &'static [DeferredKey],
    pub(crate) values: Mutex<Vec<Option<Value>>>,
    /// The enclosing kernel span's values: keys this span did not declare go there.
    pub(crate) parent: Option<Arc<DeferredValues>>,
}

/// The innermost deferred values of the current context.
pub(crate) fn current_deferred() -> Option<Arc<DeferredValues>> {
    opentelemetry::Context::map_current(|cx| cx.get::<Inherited>().and_then(|s| s.deferred.clone()))
}
