//! What `#[kernel_span]` expands to calls into. Not a public API: the macro and
//! this module change together, and nothing here is covered by semver.
//!
//! Every item exists with the same signature with and without the `otel`
//! feature; without it they are inert, and [`enabled`] is always `false`.

#[cfg(feature = "bound-instruments")]
mod bound;
mod future;
mod span;

use std::borrow::Cow;

pub use future::{Instrumented, instrument};
pub use span::{ActiveSpan, SyncSpan, enter, start};
#[cfg(feature = "otel")]
pub(crate) use span::{Scope, SiteInstruments};

use crate::{SpanError, Telemetry, ToAttrValue};

/// The run-time switch, read with one relaxed atomic load.
#[inline(always)]
pub fn enabled() -> bool {
    crate::switch::is_enabled()
}

/// `telemetry = <expr>`: accepts `Telemetry` or `&Telemetry` (anything that
/// borrows as one).
#[inline]
pub fn bind<B: std::borrow::Borrow<Telemetry>>(binding: &B) -> Telemetry {
    binding.borrow().clone()
}

/// Forces a closure to be `FnOnce`, so the body may move out of captured
/// `&mut` references (and return reborrows of them).
#[inline(always)]
pub fn call_once<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}

/// Span kinds, mirrored so the descriptor exists without the `otel` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SpanKind::Internal`
    Internal,
    /// `SpanKind::Client`
    Client,
    /// `SpanKind::Server`
    Server,
    /// `SpanKind::Producer`
    Producer,
    /// `SpanKind::Consumer`
    Consumer,
}

/// Which outcomes a metric records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Every call.
    Always,
    /// `status = success` only.
    Success,
    /// `status = error` only.
    Error,
    /// `status = denied` only.
    Denied,
    /// `status = error` or `denied`.
    Failure,
}

impl When {
    /// Whether a call that ended with `status` is counted.
    pub fn matches(self, status: Status) -> bool {
        match self {
            When::Always => true,
            When::Success => status == Status::Success,
            When::Error => status == Status::Error,
            When::Denied => status == Status::Denied,
            When::Failure => status != Status::Success,
        }
    }
}

/// The built-in `status` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `success`
    Success,
    /// `error`
    Error,
    /// `denied`
    Denied,
}

impl Status {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Denied => "denied",
        }
    }
}

/// The unit a duration histogram records in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// `s`
    Seconds,
    /// `ms`
    Millis,
    /// `us`
    Micros,
    /// `ns`
    Nanos,
}

impl TimeUnit {
    /// A duration in this unit.
    pub fn of(self, d: std::time::Duration) -> f64 {
        let s = d.as_secs_f64();
        match self {
            TimeUnit::Seconds => s,
            TimeUnit::Millis => s * 1e3,
            TimeUnit::Micros => s * 1e6,
            TimeUnit::Nanos => s * 1e9,
        }
    }
}

/// Counter or duration histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricKind {
    /// Adds 1 per recorded call (`u64` counter).
    Counter,
    /// Records the span's duration (`f64` histogram).
    Histogram(TimeUnit),
}

/// Where a label's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// The n-th attribute pushed with `label_attr`/`static_label_attr`.
    Attr(usize),
    /// The n-th deferred key of the site.
    Deferred(usize),
    /// The n-th key computed from the return value.
    Returned(usize),
    /// The built-in outcome label.
    Status,
}

/// One metric label.
#[derive(Debug, Clone, Copy)]
pub struct Label {
    /// The bare label key.
    pub key: &'static str,
    /// Its value.
    pub source: LabelSource,
}

/// One metric declared in `metrics(...)`.
#[derive(Debug, Clone, Copy)]
pub struct MetricDesc {
    /// Instrument name.
    pub name: &'static str,
    /// Counter or histogram.
    pub kind: MetricKind,
    /// UCUM unit (empty: none).
    pub unit: &'static str,
    /// Description (empty: none).
    pub description: &'static str,
    /// Explicit histogram bucket boundaries (empty: SDK default).
    pub buckets: &'static [f64],
    /// Labels.
    pub labels: &'static [Label],
    /// Outcome filter.
    pub when: When,
}

/// A key declared `= deferred`.
#[derive(Debug, Clone, Copy)]
pub struct DeferredKey {
    /// The key as written (what `record` is called with).
    pub key: &'static str,
    /// The span attribute key.
    pub span_key: &'static str,
}

/// Everything static about one call site.
#[derive(Debug, Clone, Copy)]
pub struct SiteDesc {
    /// Span name.
    pub name: &'static str,
    /// Span kind.
    pub kind: Kind,
    /// Deferred keys.
    pub deferred: &'static [DeferredKey],
    /// Keys computed from the return value (`KEY = |out| expr`).
    pub returned: &'static [DeferredKey],
    /// Metrics.
    pub metrics: &'static [MetricDesc],
}

/// One call site: its descriptor and its per-binding instrument cache.
pub struct Site {
    pub(crate) desc: SiteDesc,
    /// The instruments of the binding last used here (binding id, instruments).
    #[cfg(feature = "otel")]
    pub(crate) cache: std::sync::RwLock<Option<(u64, std::sync::Arc<SiteInstruments>)>>,
}

impl Site {
    /// A call site (a `static` in the generated code).
    pub const fn new(desc: SiteDesc) -> Site {
        Site {
            desc,
            #[cfg(feature = "otel")]
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

/// The attributes of a span being started, and the values of those that are
/// also metric labels.
pub struct Attrs {
    #[cfg(feature = "otel")]
    pub(crate) attrs: Vec<opentelemetry::KeyValue>,
    #[cfg(feature = "otel")]
    pub(crate) labels: Vec<Option<opentelemetry::Value>>,
}

impl Attrs {
    /// Room for `attrs` attributes of which `labels` are labels.
    #[inline]
    pub fn new(attrs: usize, labels: usize) -> Attrs {
        #[cfg(feature = "otel")]
        {
            Attrs {
                attrs: Vec::with_capacity(attrs),
                labels: Vec::with_capacity(labels),
            }
        }
        #[cfg(not(feature = "otel"))]
        {
            let _ = (attrs, labels);
            Attrs {}
        }
    }

    /// An attribute (left out when the value converts to `None`).
    #[inline]
    pub fn attr<V: ToAttrValue + ?Sized>(&mut self, key: &'static str, value: &V) {
        #[cfg(feature = "otel")]
        if let Some(v) = value.to_attr_value() {
            self.attrs.push(opentelemetry::KeyValue::new(
                opentelemetry::Key::from_static_str(key),
                v.into_otel(),
            ));
        }
        #[cfg(not(feature = "otel"))]
        let _ = (key, value);
    }

    /// An attribute with a `&'static str` value (no allocation).
    #[inline]
    pub fn static_attr(&mut self, key: &'static str, value: &'static str) {
        #[cfg(feature = "otel")]
        self.attrs.push(opentelemetry::KeyValue::new(
            opentelemetry::Key::from_static_str(key),
            value,
        ));
        #[cfg(not(feature = "otel"))]
        let _ = (key, value);
    }

    /// An attribute that is also the next metric label value.
    #[inline]
    pub fn label_attr<V: ToAttrValue + ?Sized>(&mut self, key: &'static str, value: &V) {
        #[cfg(feature = "otel")]
        {
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
        }
        #[cfg(not(feature = "otel"))]
        let _ = (key, value);
    }

    /// A `&'static str` attribute that is also the next metric label value.
    #[inline]
    pub fn static_label_attr(&mut self, key: &'static str, value: &'static str) {
        #[cfg(feature = "otel")]
        {
            self.static_attr(key, value);
            self.labels.push(Some(opentelemetry::Value::from(value)));
        }
        #[cfg(not(feature = "otel"))]
        let _ = (key, value);
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
    #[cfg(feature = "otel")]
    pub(crate) value: Option<opentelemetry::Value>,
}

/// `f` applied to the return value, as a span attribute value. The closure's
/// parameter type is deduced from `out`; the value may borrow from it.
#[inline]
pub fn returned<'a, R: ?Sized, T: ToAttrValue + 'a>(
    out: &'a R,
    f: impl FnOnce(&'a R) -> T,
) -> ReturnedValue {
    #[cfg(feature = "otel")]
    {
        ReturnedValue {
            value: f(out)
                .to_attr_value()
                .map(crate::AttrValue::into_otel_shared),
        }
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = (out, f);
        ReturnedValue {}
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
