//! Starting and ending a kernel span.

use super::{Attrs, Outcome, ReturnedValue, Site};
use crate::Telemetry;

/// A started span that is not attached to the current thread (async bodies:
/// the [`Instrumented`](super::Instrumented) future attaches it on each poll).
///
/// Dropped without [`finish`](ActiveSpan::finish): ended as ERROR, as a panic
/// when the thread is panicking and as a cancellation otherwise.
pub struct ActiveSpan {
    inner: Option<imp::Live>,
}

/// A started span attached to the current thread for the length of a sync
/// body. Dropped without [`finish`](SyncSpan::finish): a normal return, or a
/// panic when the thread is panicking.
pub struct SyncSpan {
    // Field order matters: the context guard is dropped (detached) before the
    // span ends.
    guard: Option<opentelemetry::ContextGuard>,
    span: ActiveSpan,
}

impl std::fmt::Debug for ActiveSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActiveSpan")
    }
}

impl std::fmt::Debug for SyncSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncSpan")
    }
}

/// Starts a span for an async body (not attached).
pub fn start(site: &'static Site, binding: Option<Telemetry>, attrs: Attrs) -> ActiveSpan {
    ActiveSpan {
        inner: Some(imp::Live::start(
            site,
            binding,
            attrs,
            imp::OnDrop::Cancelled,
        )),
    }
}

/// Starts a span for a sync body and attaches it to the current thread.
pub fn enter(site: &'static Site, binding: Option<Telemetry>, attrs: Attrs) -> SyncSpan {
    let live = imp::Live::start(site, binding, attrs, imp::OnDrop::Success);
    let guard = live.cx.clone().attach();
    SyncSpan {
        guard: Some(guard),
        span: ActiveSpan { inner: Some(live) },
    }
}

impl ActiveSpan {
    /// Ends the span with the body's outcome.
    #[inline]
    pub fn finish(self, outcome: Outcome) {
        self.finish_with(outcome, &[]);
    }

    /// Ends the span with the body's outcome and the attributes computed
    /// from its return value (the site's `returned` keys, in order).
    #[inline]
    pub fn finish_with(mut self, outcome: Outcome, returned: &[ReturnedValue]) {
        if let Some(live) = self.inner.take() {
            live.end(imp::End::Returned(outcome), returned);
        }
    }

    /// Ends the span as a panic (the caller keeps unwinding).
    pub(crate) fn end_panicked(mut self) {
        if let Some(live) = self.inner.take() {
            live.end(imp::End::Panicked, &[]);
        }
    }

    /// Runs `f` with this span's context attached to the current thread.
    #[inline]
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.inner.as_ref().map(|live| live.cx.clone().attach());
        f()
    }
}

impl SyncSpan {
    /// Detaches the span from the thread and ends it with the body's outcome.
    #[inline]
    pub fn finish(self, outcome: Outcome) {
        self.finish_with(outcome, &[]);
    }

    /// Detaches the span from the thread and ends it with the body's outcome
    /// and the attributes computed from its return value.
    #[inline]
    pub fn finish_with(self, outcome: Outcome, returned: &[ReturnedValue]) {
        let SyncSpan { guard, span } = self;
        drop(guard);
        span.finish_with(outcome, returned);
    }
}

impl Drop for ActiveSpan {
    fn drop(&mut self) {
        if let Some(live) = self.inner.take() {
            let end = if std::thread::panicking() {
                imp::End::Panicked
            } else {
                match live.on_drop {
                    imp::OnDrop::Success => imp::End::Returned(Outcome::Success),
                    imp::OnDrop::Cancelled => imp::End::Cancelled,
                }
            };
            live.end(end, &[]);
        }
    }
}

pub(crate) use imp::SiteInstruments;

mod imp {
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Instant;

    use opentelemetry::metrics::{Counter, Histogram, Meter};
    use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt};
    use opentelemetry::{Context, Key, KeyValue, Value};

    use super::super::{
        Attrs, LabelSource, MetricDesc, MetricKind, Outcome, ReturnedValue, Site, Status as Label,
    };
    use crate::Telemetry;
    use crate::context::{DeferredValues, Inherited};
    use crate::telemetry::Binding;

    /// The instruments of one call site for one binding.
    pub(crate) struct SiteInstruments {
        list: Vec<Instrument>,
    }

    enum Instrument {
        Counter(Counter<u64>),
        Histogram(Histogram<f64>),
    }

    impl Site {
        /// This site's instruments for `binding`: the site keeps those of the
        /// binding it last saw (one per process in practice); another binding
        /// builds its own (the SDK returns the instruments it already has for
        /// the same names, so alternating bindings cost a rebuild, never data).
        fn instruments(&'static self, binding: &Binding) -> Arc<SiteInstruments> {
            if let Ok(cache) = self.cache.read() {
                if let Some((id, inst)) = &*cache {
                    if *id == binding.id {
                        return Arc::clone(inst);
                    }
                }
            }
            let inst = Arc::new(self.build(&binding.meter));
            if let Ok(mut cache) = self.cache.write() {
                *cache = Some((binding.id, Arc::clone(&inst)));
            }
            inst
        }

        fn build(&self, meter: &Meter) -> SiteInstruments {
            let list = self
                .desc
                .metrics
                .iter()
                .map(|m| match m.kind {
                    MetricKind::Counter => {
                        let mut b = meter.u64_counter(m.name);
                        if !m.unit.is_empty() {
                            b = b.with_unit(m.unit);
                        }
                        if !m.description.is_empty() {
                            b = b.with_description(m.description);
                        }
                        Instrument::Counter(b.build())
                    }
                    MetricKind::Histogram(_) => {
                        let mut b = meter.f64_histogram(m.name);
                        if !m.unit.is_empty() {
                            b = b.with_unit(m.unit);
                        }
                        if !m.description.is_empty() {
                            b = b.with_description(m.description);
                        }
                        if !m.buckets.is_empty() {
                            b = b.with_boundaries(m.buckets.to_vec());
                        }
                        Instrument::Histogram(b.build())
                    }
                })
                .collect();
            SiteInstruments { list }
        }
    }

    #[derive(Clone, Copy)]
    pub(super) enum OnDrop {
        Success,
        Cancelled,
    }

    pub(super) enum End {
        Returned(Outcome),
        Panicked,
        Cancelled,
    }

    /// The state of a started span.
    pub(super) struct Live {
        pub(super) cx: Context,
        site: &'static Site,
        pub(super) on_drop: OnDrop,
        /// Present when the site has metrics.
        metrics: Option<(Arc<Binding>, Instant)>,
        labels: Vec<Option<Value>>,
        deferred: Option<Arc<DeferredValues>>,
    }

    fn kind(k: crate::SpanKind) -> SpanKind {
        match k {
            crate::SpanKind::Internal => SpanKind::Internal,
            crate::SpanKind::Client => SpanKind::Client,
            crate::SpanKind::Server => SpanKind::Server,
            crate::SpanKind::Producer => SpanKind::Producer,
            crate::SpanKind::Consumer => SpanKind::Consumer,
        }
    }

    impl Live {
        pub(super) fn start(
            site: &'static Site,
            binding: Option<Telemetry>,
            attrs: Attrs,
            on_drop: OnDrop,
        ) -> Live {
            let desc = &site.desc;
            let Attrs {
                attrs,
                labels,
                name,
                kind: run_time_kind,
            } = attrs;
            // Everything happens inside a borrow of the current context (no
            // clone of the parent), as `SpanBuilder::start` does.
            let (cx, telemetry, deferred) = Context::map_current(|parent| {
                let inherited = parent.get::<Inherited>();
                let (telemetry, push_binding) = match binding {
                    Some(t) => {
                        let same = match inherited {
                            Some(s) => s.telemetry.same_binding(&t),
                            None => t.is_global(),
                        };
                        (t, !same)
                    }
                    None => (
                        inherited.map_or_else(Telemetry::global, |s| s.telemetry.clone()),
                        false,
                    ),
                };
                let inherited_values = inherited.and_then(|s| s.deferred.clone());

                let name = name.unwrap_or(std::borrow::Cow::Borrowed(desc.name));
                let mut builder = SpanBuilder::from_name(name)
                    .with_kind(kind(run_time_kind.unwrap_or(desc.kind)));
                if !attrs.is_empty() {
                    builder.attributes = Some(attrs);
                }
                let mut cx = telemetry.start_span(builder, parent);

                let deferred = (!desc.deferred.is_empty()).then(|| {
                    Arc::new(DeferredValues {
                        keys: desc.deferred,
                        values: Mutex::new(vec![None; desc.deferred.len()]),
                        parent: inherited_values.clone(),
                    })
                });
                if push_binding || deferred.is_some() {
                    cx = cx.with_value(Inherited {
                        telemetry: telemetry.clone(),
                        deferred: deferred.clone().or(inherited_values),
                    });
                }
                (cx, telemetry, deferred)
            });
            // Instruments are only needed by sites with metrics.
            let metrics = (!desc.metrics.is_empty()).then(|| (telemetry.resolve(), Instant::now()));
            Live {
                cx,
                site,
                on_drop,
                metrics,
                labels,
                deferred,
            }
        }

        pub(super) fn end(self, end: End, returned: &[ReturnedValue]) {
            let span = self.cx.span();
            let deferred: Vec<Option<Value>> = match &self.deferred {
                Some(recorded) => std::mem::take(
                    &mut *recorded
                        .values
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner),
                ),
                None => Vec::new(),
            };
            if !deferred.is_empty() || !returned.is_empty() {
                // One lock of the span for all of them.
                let deferred_keys = self.deferred.as_ref().map_or(&[][..], |s| s.keys);
                let deferred_attrs = deferred_keys.iter().zip(&deferred).filter_map(|(k, v)| {
                    v.as_ref()
                        .map(|v| KeyValue::new(Key::from_static_str(k.span_key), v.clone()))
                });
                let returned_attrs =
                    self.site
                        .desc
                        .returned
                        .iter()
                        .zip(returned)
                        .filter_map(|(k, v)| {
                            v.value
                                .as_ref()
                                .map(|v| KeyValue::new(Key::from_static_str(k.span_key), v.clone()))
                        });
                span.set_attributes(deferred_attrs.chain(returned_attrs));
            }
            let status = match &end {
                End::Returned(Outcome::Success) => Label::Success,
                End::Returned(Outcome::Failure {
                    error_type,
                    message,
                    denied,
                }) => {
                    fail(&span, error_type.clone(), message.clone());
                    if *denied { Label::Denied } else { Label::Error }
                }
                End::Panicked => {
                    fail(&span, "panic".into(), "panicked".into());
                    Label::Error
                }
                End::Cancelled => {
                    span.set_attribute(KeyValue::new("agent_kernel.cancelled", true));
                    fail(
                        &span,
                        "cancelled".into(),
                        "cancelled: the future was dropped before completion".into(),
                    );
                    Label::Error
                }
            };
            span.end();

            let Some((bound, started)) = &self.metrics else {
                return;
            };
            let elapsed = started.elapsed();
            let instruments = self.site.instruments(bound);
            let mut labels: Vec<KeyValue> = Vec::new();
            for (desc, inst) in self.site.desc.metrics.iter().zip(&instruments.list) {
                if !desc.when.matches(status) {
                    continue;
                }
                self.metric_labels(desc, status, &deferred, returned, &mut labels);
                match (inst, desc.kind) {
                    (Instrument::Counter(c), _) => c.add(1, &labels),
                    (Instrument::Histogram(h), kind) => {
                        h.record(histogram_value(kind, elapsed), &labels)
                    }
                }
            }
        }

        /// The label set of one metric for this call, into `out`.
        fn metric_labels(
            &self,
            desc: &MetricDesc,
            status: Label,
            deferred: &[Option<Value>],
            returned: &[ReturnedValue],
            out: &mut Vec<KeyValue>,
        ) {
            out.clear();
            for label in desc.labels {
                let value = match label.source {
                    LabelSource::Status => Some(Value::from(status.as_str())),
                    LabelSource::Attr(i) => self.labels.get(i).cloned().flatten(),
                    LabelSource::Deferred(i) => deferred.get(i).cloned().flatten(),
                    LabelSource::Returned(i) => returned.get(i).and_then(|r| r.value.clone()),
                };
                if let Some(value) = value {
                    out.push(KeyValue::new(Key::from_static_str(label.key), value));
                }
            }
        }
    }

    /// What a histogram records for a call that took `elapsed`.
    fn histogram_value(kind: MetricKind, elapsed: std::time::Duration) -> f64 {
        match kind {
            MetricKind::Histogram(unit) => unit.of(elapsed),
            MetricKind::Counter => elapsed.as_secs_f64(),
        }
    }

    fn fail(
        span: &opentelemetry::trace::SpanRef<'_>,
        error_type: std::borrow::Cow<'static, str>,
        message: std::borrow::Cow<'static, str>,
    ) {
        span.set_attribute(KeyValue::new("error.type", error_type.clone()));
        span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", error_type),
                KeyValue::new("exception.message", message.clone()),
            ],
        );
        span.set_status(Status::error(message));
    }
}
