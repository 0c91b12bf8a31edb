//! What `#[kernel_span]` expands to calls into (feature `otel` only: without
//! it the macro returns the function unchanged). Not a public API: the macro
//! and this module change together (the macro crate is pinned with `=`), its
//! name carries the version, and nothing here is covered by semver.

mod future;
mod site;
mod span;

use std::borrow::Cow;

pub use crate::spec::SpanKind;
pub use future::{Instrumented, instrument};
pub use site::{
    DeclaredKey, DeferredKey, Label, LabelSource, MetricDesc, MetricKind, Place, SiteDesc, Status,
    TimeUnit, When, check_buckets, check_counter, check_distinct, check_histogram,
    check_metric_name, check_span_name, count_labelled, labelled, labels,
};
pub(crate) use span::SiteInstruments;
pub use span::{ActiveSpan, SyncSpan, enter, start};

use crate::{SpanError, Telemetry, ToAttrValue};

/// The run-time switch, read with one relaxed atomic load.
#[inline(always)]
pub fn enabled() -> bool {
    crate::switch::is_enabled()
}

/// `telemetry = <expr>`: accepts `Telemetry` or `&Telemetry` (anything that
/// borrows as one).
#[inline]
pub fn binding_of<B: std::borrow::Borrow<Telemetry>>(binding: &B) -> Telemetry {
    binding.borrow().clone()
}

/// Forces a closure to be `FnOnce`, so the body may move out of captured
/// `&mut` references (and return reborrows of them).
#[inline(always)]
pub fn call_once<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}

/// One call site: its descriptor and its per-binding instrument cache.
pub struct Site {
    pub(crate) desc: SiteDesc,
    /// The instruments of the binding last used here (binding id, instruments).
    pub(crate) cache: std::sync::RwLock<Option<(u64, std::sync::Arc<SiteInstruments>)>>,
}

impl Site {
    /// A call site (a `static` in the generated code).
    pub const fn new(desc: SiteDesc) -> Site {
        Site {
            desc,
            cache: std::sync::RwLock::new(None),
        }
    }
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("desc", &self.desc)
            .finish_non_exhaustive()
    }
}

/// What is known when a span starts: its attributes, the values of those
/// that are also metric labels, and a name or kind computed at run time.
pub struct Attrs {
    pub(crate) attrs: Vec<opentelemetry::KeyValue>,
    pub(crate) labels: Vec<Option<opentelemetry::Value>>,
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) kind: Option<SpanKind>,
}

impl Attrs {
    /// Room for `attrs` attributes of which `labels` are labels.
    #[inline]
    pub fn new(attrs: usize, labels: usize) -> Attrs {
        Attrs {
            attrs: Vec::with_capacity(attrs),
            labels: Vec::with_capacity(labels),
            name: None,
            kind: None,
        }
    }

    /// The span name, computed at run time (`name = <expr>`).
    #[inline]
    pub fn set_name(&mut self, name: impl Into<Cow<'static, str>>) {
        self.name = Some(name.into());
    }

    /// The span kind, computed at run time (`kind = <expr>`).
    #[inline]
    pub fn set_kind(&mut self, kind: SpanKind) {
        self.kind = Some(kind);
    }

    /// An attribute (left out when the value converts to `None`); with
    /// `label`, also the next metric label value. `label` is a constant in
    /// the generated code, so the branch folds away.
    #[inline]
    pub fn push<V: ToAttrValue + ?Sized>(&mut self, key: &'static str, value: &V, label: bool) {
        if label {
            let v = value
                .to_attr_value()
                .map(crate::AttrValue::into_otel_shared);
            if let Some(v) = &v {
                self.attrs.push(opentelemetry::KeyValue::new(
                    opentelemetry::Key::from_static_str(key),
                    v.clone(),
                ));
            }
            self.labels.push(v);
        } else if let Some(v) = value.to_attr_value() {
            self.attrs.push(opentelemetry::KeyValue::new(
                opentelemetry::Key::from_static_str(key),
                v.into_otel(),
            ));
        }
    }

    /// An attribute with a `&'static str` value (no allocation); with
    /// `label`, also the next metric label value.
    #[inline]
    pub fn push_static(&mut self, key: &'static str, value: &'static str, label: bool) {
        self.attrs.push(opentelemetry::KeyValue::new(
            opentelemetry::Key::from_static_str(key),
            value,
        ));
        if label {
            self.labels.push(Some(opentelemetry::Value::from(value)));
        }
    }
}

/// How a call ended, as the generated code classifies its return value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Returned normally (`Ok`, or not a `Result`).
    Success,
    /// Returned `Err`.
    Failure {
        /// `error.type`.
        error_type: Cow<'static, str>,
        /// Redacted span-status description.
        message: Cow<'static, str>,
        /// Whether the metrics' `status` label is `denied` rather than `error`.
        denied: bool,
    },
}

/// One attribute value computed from the return value (`KEY = |out| expr`).
pub struct ReturnedValue {
    pub(crate) value: Option<opentelemetry::Value>,
}

/// `f` applied to the return value, as a span attribute value. The closure's
/// parameter type is deduced from `out`; the value may borrow from it.
#[inline]
pub fn returned<'a, R: ?Sized, T: ToAttrValue + 'a>(
    out: &'a R,
    f: impl FnOnce(&'a R) -> T,
) -> ReturnedValue {
    ReturnedValue {
        value: f(out)
            .to_attr_value()
            .map(crate::AttrValue::into_otel_shared),
    }
}

/// Wraps an error for the `SpanError`-or-fallback method lookup
/// (`(&ErrRef(e)).__ak_outcome()` picks [`ViaSpanError`] when the error type
/// implements [`SpanError`], [`ViaFallback`] otherwise).
pub struct ErrRef<'a, E: ?Sized>(pub &'a E);

/// Chosen when the error type implements [`SpanError`].
pub trait ViaSpanError {
    /// The failure outcome.
    fn __ak_outcome(&self) -> Outcome;
}

impl<E: SpanError + ?Sized> ViaSpanError for ErrRef<'_, E> {
    fn __ak_outcome(&self) -> Outcome {
        let e = self.0;
        Outcome::Failure {
            error_type: Cow::Borrowed(e.error_type()),
            message: Cow::Owned(e.redacted_message().into_owned()),
            denied: e.is_denial(),
        }
    }
}

/// Chosen for error types that do not implement [`SpanError`]: their type
/// name, never their `Display` text.
pub trait ViaFallback {
    /// The failure outcome.
    fn __ak_outcome(&self) -> Outcome;
}

impl<E: ?Sized> ViaFallback for &ErrRef<'_, E> {
    fn __ak_outcome(&self) -> Outcome {
        let name = std::any::type_name::<E>();
        Outcome::Failure {
            error_type: Cow::Borrowed(name),
            message: Cow::Borrowed(name),
            denied: false,
        }
    }
}
