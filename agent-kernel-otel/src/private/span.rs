//! Starting and ending a kernel span.

use super::{Attrs, Outcome, ReturnedValue, Site};
use crate::Telemetry;

/// A started span that is not attached to the current thread (async bodies:
/// the [`Instrumented`](super::Instrumented) future attaches it on each poll).
///
/// Dropped without [`finish`](ActiveSpan::finish): ended as ERROR, as a panic
/// when the thread is panicking and as a cancellation otherwise.
pub struct ActiveSpan {
    #[cfg(feature = "otel")]
    inner: Option<imp::Live>,
}

/// A started span attached to the current thread for the length of a sync
/// body. Dropped without [`finish`](SyncSpan::finish): a normal return, or a
/// panic when the thread is panicking.
pub struct SyncSpan {
    // Field order matters: the context guard is dropped (detached) before the
    // span ends.
    #[cfg(feature = "otel")]
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
    #[cfg(feature = "otel")]
    {
        ActiveSpan {
            inner: Some(imp::Live::start(
                site,
                binding,
                attrs,
                imp::OnDrop::Cancelled,
            )),
        }
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = (site, binding, attrs);
        ActiveSpan {}
    }
}

/// Starts a span for a sync body and attaches it to the current thread.
pub fn enter(site: &'static Site, binding: Option<Telemetry>, attrs: Attrs) -> SyncSpan {
    #[cfg(feature = "otel")]
    {
        let live = imp::Live::start(site, binding, attrs, imp::OnDrop::Success);
        let guard = live.cx.clone().attach();
        SyncSpan {
            guard: Some(guard),
            span: ActiveSpan { inner: Some(live) },
        }
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = (site, binding, attrs);
        SyncSpan {
            span: ActiveSpan {},
        }
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
    pub fn finish_with(self, outcome: Outcome, returned: &[ReturnedValue]) {
        #[cfg(feature = "otel")]
        {
            let mut this = self;
            if let Some(live) = this.inner.take() {
                live.end(imp::End::Returned(outcome), returned);
            }
        }
        #[cfg(not(feature = "otel"))]
        let _ = (self, outcome, returned);
    }

    /// Ends the span as a panic (the caller keeps unwinding).
    pub(crate) fn end_panicked(self) {
        #[cfg(feature = "otel")]
        {
            let mut this = self;
            if let Some(live) = this.inner.take() {
                live.end(imp::End::Panicked, &[]);
            }
        }
    }

    /// Runs `f` with this span's context attached to the current thread.
    #[inline]
    pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "otel")]
        {
            let _guard = self.inner.as_ref().map(|live| live.cx.clone().attach());
            f()
        }
        #[cfg(not(feature = "otel"))]
        {
            f()
        }
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
        #[cfg(feature = "otel")]
        {
            let SyncSpan { guard, span } = self;
            drop(guard);
            span.finish_with(outcome, returned);
        }
        #[cfg(not(feature = "otel"))]
        self.span.finish_with(outcome, returned);
    }
}

#[cfg(feature = "otel")]
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

#[cfg(feature = "otel")]
pub(crate) use imp::{Scope, SiteInstruments};

#[cfg(feature = "otel")]
mod imp {
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Instant;

    use opentelemetry::metrics::{Counter, Histogram, Meter};
    use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt};
    use opentelemetry::{Context, Key, KeyValue, Value};

    use super::super::{
        Attrs, DeferredKey, Kind, LabelSource, MetricDesc, MetricKind, Outcome, ReturnedValue,
        Site, Status as Label,
    };
    use crate::Telemetry;
    use crate::telemetry::Bound;

    /// What the OpenTelemetry `Context` carries for kernel spans: the binding
    /// for spans below, and the innermost deferred-attribute slot.
    #[derive(Clone)]
    pub(crate) struct Scope {
        pub(crate) telemetry: Telemetry,
        pub(crate) slot: Option<Arc<Slot>>,
    }

    /// Values recorded for a span's deferred keys.
    pub(crate) struct Slot {
        pub(crate) keys: &'static [DeferredKey],
        pub(crate) values: Mutex<Vec<Option<Value>>>,
        /// The enclosing kernel span's slot: keys this span did not declare go there.
        pub(crate) parent: Option<Arc<Slot>>,
    }

    /// The instruments of one call site for one binding.
    pub(crate) struct SiteInstruments {
        list: Vec<Instrument>,
        /// The instruments pre-bound per combination of label values.
        #[cfg(feature = "bound-instruments")]
        bound: crate::private::bound::Cache,
    }

    enum Instrument {
        Counter(Counter<u64>),
        Histogram(Histogram<f64>),
    }

    impl Site {
        /// This site's instruments for `bound`: the site's one-entry cache,
        /// else the binding's per-site map (created on first use).
        fn instruments(&'static self, bound: &Bound) -> Arc<SiteInstruments> {
            if let Ok(cache) = self.cache.read() {
                if let Some((id, inst)) = &*cache {
                    if *id == bound.id {
                        return Arc::clone(inst);
                    }
                }
            }
            let inst = {
                let mut sites = bound.sites.lock().unwrap_or_else(PoisonError::into_inner);
                let key = std::ptr::from_ref(self) as usize;
                Arc::clone(
                    sites
                        .entry(key)
                        .or_insert_with(|| Arc::new(self.build(&bound.meter))),
                )
            };
            if let Ok(mut cache) = self.cache.write() {
                *cache = Some((bound.id, Arc::clone(&inst)));
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
            SiteInstruments {
                list,
                #[cfg(feature = "bound-instruments")]
                bound: crate::private::bound::Cache::new(),
            }
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
        metrics: Option<(Arc<Bound>, Instant)>,
        labels: Vec<Option<Value>>,
        slot: Option<Arc<Slot>>,
    }

    fn kind(k: Kind) -> SpanKind {
        match k {
            Kind::Internal => SpanKind::Internal,
            Kind::Client => SpanKind::Client,
            Kind::Server => SpanKind::Server,
            Kind::Producer => SpanKind::Producer,
            Kind::Consumer => SpanKind::Consumer,
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
            let Attrs { attrs, labels } = attrs;
            // Everything happens inside a borrow of the current context (no
            // clone of the parent), as `SpanBuilder::start` does.
            let (cx, telemetry, slot) = Context::map_current(|parent| {
                let inherited = parent.get::<Scope>();
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
                let inherited_slot = inherited.and_then(|s| s.slot.clone());

                let mut builder = SpanBuilder::from_name(desc.name).with_kind(kind(desc.kind));
                if !attrs.is_empty() {
                    builder.attributes = Some(attrs);
                }
                let mut cx = telemetry.start_span(builder, parent);

                let slot = (!desc.deferred.is_empty()).then(|| {
                    Arc::new(Slot {
                        keys: desc.deferred,
                        values: Mutex::new(vec![None; desc.deferred.len()]),
                        parent: inherited_slot.clone(),
                    })
                });
                if push_binding || slot.is_some() {
                    cx = cx.with_value(Scope {
                        telemetry: telemetry.clone(),
                        slot: slot.clone().or(inherited_slot),
                    });
                }
                (cx, telemetry, slot)
            });
            // Instruments are only needed by sites with metrics.
            let metrics = (!desc.metrics.is_empty()).then(|| (telemetry.resolve(), Instant::now()));
            Live {
                cx,
                site,
                on_drop,
                metrics,
                labels,
                slot,
            }
        }

        pub(super) fn end(self, end: End, returned: &[ReturnedValue]) {
            let span = self.cx.span();
            let deferred: Vec<Option<Value>> = match &self.slot {
                Some(slot) => {
                    std::mem::take(&mut *slot.values.lock().unwrap_or_else(PoisonError::into_inner))
                }
                None => Vec::new(),
            };
            if !deferred.is_empty() || !returned.is_empty() {
                // One lock of the span for all of them.
                let slot_keys = self.slot.as_ref().map_or(&[][..], |s| s.keys);
                let deferred_attrs = slot_keys.iter().zip(&deferred).filter_map(|(k, v)| {
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
            #[cfg(feature = "bound-instruments")]
            if self.record_bound(&instruments, status, &deferred, returned, elapsed) {
                return;
            }
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

        /// Records the site's metrics through handles bound to this call's
        /// label values; `false` when they cannot be bound (record unbound).
        #[cfg(feature = "bound-instruments")]
        fn record_bound(
            &self,
            instruments: &SiteInstruments,
            status: Label,
            deferred: &[Option<Value>],
            returned: &[ReturnedValue],
            elapsed: std::time::Duration,
        ) -> bool {
            use crate::private::bound::{Handle, MAX_VALUES};
            // The key: the value of every label source the site's metrics
            // use, each once (the status travels separately).
            let mut sources = [LabelSource::Status; MAX_VALUES];
            let mut values: [Option<&Value>; MAX_VALUES] = [None; MAX_VALUES];
            let mut n = 0;
            for label in self.site.desc.metrics.iter().flat_map(|m| m.labels) {
                let value = match label.source {
                    LabelSource::Status => continue,
                    LabelSource::Attr(i) => self.labels.get(i).and_then(Option::as_ref),
                    LabelSource::Deferred(i) => deferred.get(i).and_then(Option::as_ref),
                    LabelSource::Returned(i) => returned.get(i).and_then(|r| r.value.as_ref()),
                };
                if sources
                    .get(..n)
                    .is_some_and(|seen| seen.contains(&label.source))
                {
                    continue;
                }
                let (Some(source), Some(slot)) = (sources.get_mut(n), values.get_mut(n)) else {
                    return false;
                };
                *source = label.source;
                *slot = value;
                n += 1;
            }
            let metrics = self.site.desc.metrics;
            let bind = || {
                let mut labels = Vec::new();
                metrics
                    .iter()
                    .zip(&instruments.list)
                    .map(|(desc, inst)| {
                        if !desc.when.matches(status) {
                            return None;
                        }
                        self.metric_labels(desc, status, deferred, returned, &mut labels);
                        Some(match inst {
                            Instrument::Counter(c) => Handle::Counter(c.bind(&labels)),
                            Instrument::Histogram(h) => Handle::Histogram(h.bind(&labels)),
                        })
                    })
                    .collect()
            };
            let Some(set) =
                instruments
                    .bound
                    .get_or_bind(status, values.get(..n).unwrap_or(&[]), bind)
            else {
                return false;
            };
            for (desc, handle) in metrics.iter().zip(set.handles.iter()) {
                match handle {
                    Some(Handle::Counter(c)) => c.add(1),
                    Some(Handle::Histogram(h)) => h.record(histogram_value(desc.kind, elapsed)),
                    None => {}
                }
            }
            true
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

    #[cfg(all(test, feature = "bound-instruments"))]
    mod tests {
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
        use opentelemetry_sdk::metrics::{
            InMemoryMetricExporter, PeriodicReader, SdkMeterProvider,
        };
        use opentelemetry_sdk::trace::SdkTracerProvider;

        use super::super::super::{
            Attrs, Kind, Label as LabelDesc, LabelSource, MetricDesc, MetricKind, Outcome, Site,
            SiteDesc, TimeUnit, When, enter,
        };
        use crate::Telemetry;

        const LABELS: &[LabelDesc] = &[
            LabelDesc {
                key: "k",
                source: LabelSource::Attr(0),
            },
            LabelDesc {
                key: "status",
                source: LabelSource::Status,
            },
        ];
        static SITE: Site = Site::new(SiteDesc {
            name: "test.bound",
            kind: Kind::Internal,
            deferred: &[],
            returned: &[],
            metrics: &[
                MetricDesc {
                    name: "test.calls",
                    kind: MetricKind::Counter,
                    unit: "",
                    description: "",
                    buckets: &[],
                    labels: LABELS,
                    when: When::Always,
                },
                MetricDesc {
                    name: "test.duration",
                    kind: MetricKind::Histogram(TimeUnit::Millis),
                    unit: "ms",
                    description: "",
                    buckets: &[],
                    labels: LABELS,
                    when: When::Always,
                },
                MetricDesc {
                    name: "test.denials",
                    kind: MetricKind::Counter,
                    unit: "",
                    description: "",
                    buckets: &[],
                    labels: LABELS,
                    when: When::Denied,
                },
            ],
        });

        fn call(telemetry: &Telemetry, k: &str, outcome: Outcome) {
            let mut attrs = Attrs::new(1, 1);
            attrs.label_attr("k", k);
            enter(&SITE, Some(telemetry.clone()), attrs).finish(outcome);
        }

        /// (name, sorted labels) → count, for every exported data point.
        fn points(
            mp: &SdkMeterProvider,
            exporter: &InMemoryMetricExporter,
        ) -> Vec<(String, String, u64)> {
            exporter.reset();
            mp.force_flush().ok();
            let exported = exporter.get_finished_metrics().unwrap_or_default();
            let mut out = Vec::new();
            for rm in exported.last().into_iter() {
                for scope in rm.scope_metrics() {
                    for m in scope.metrics() {
                        let label = |attrs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                            let mut l: Vec<String> =
                                attrs.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
                            l.sort();
                            l.join(",")
                        };
                        match m.data() {
                            AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                                for p in sum.data_points() {
                                    out.push((
                                        m.name().to_owned(),
                                        label(&mut p.attributes()),
                                        p.value(),
                                    ));
                                }
                            }
                            AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                                for p in h.data_points() {
                                    out.push((
                                        m.name().to_owned(),
                                        label(&mut p.attributes()),
                                        p.count(),
                                    ));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            out.sort();
            out
        }

        fn bound_sets() -> usize {
            let cache = SITE
                .cache
                .read()
                .ok()
                .and_then(|c| c.as_ref().map(|(_, i)| std::sync::Arc::clone(i)));
            cache.map_or(0, |i| i.bound.len())
        }

        #[test]
        fn metrics_go_through_bound_handles_and_stay_exact() {
            let exporter = InMemoryMetricExporter::default();
            let mp = SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(exporter.clone()).build())
                .build();
            let tp = SdkTracerProvider::builder().build();
            let telemetry = Telemetry::new(&tp, &mp);
            for _ in 0..10 {
                call(&telemetry, "a", Outcome::Success);
            }
            call(&telemetry, "b", Outcome::Success);
            let denied = || Outcome::Failure {
                error_type: "denied".into(),
                message: "denied".into(),
                denied: true,
            };
            call(&telemetry, "a", denied());
            call(&telemetry, "a", denied());
            // One bound set per (status, label values) seen.
            assert_eq!(bound_sets(), 3);
            let ok_a = "k=a,status=success".to_owned();
            let ok_b = "k=b,status=success".to_owned();
            let no_a = "k=a,status=denied".to_owned();
            assert_eq!(
                points(&mp, &exporter),
                vec![
                    ("test.calls".to_owned(), no_a.clone(), 2),
                    ("test.calls".to_owned(), ok_a.clone(), 10),
                    ("test.calls".to_owned(), ok_b.clone(), 1),
                    // `when = denied`: no empty series for the successes.
                    ("test.denials".to_owned(), no_a.clone(), 2),
                    ("test.duration".to_owned(), no_a, 2),
                    ("test.duration".to_owned(), ok_a, 10),
                    ("test.duration".to_owned(), ok_b, 1),
                ]
            );
        }
    }
}
