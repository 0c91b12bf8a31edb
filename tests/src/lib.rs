//! Test support for the workspace's UI and integration suites: a [`Capture`]
//! that records spans and metrics in memory through explicit providers (or
//! installs them as the globals), summarised into plain owned values so test
//! code reads the same with and without the `otel` feature (without it every
//! list is empty).
#![forbid(unsafe_code)]

use agent_kernel_otel::Telemetry;

/// One finished span, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// Span name.
    pub name: String,
    /// Trace id (hex).
    pub trace_id: String,
    /// Span id (hex).
    pub span_id: String,
    /// Parent span id (hex; all zeros for a root).
    pub parent_span_id: String,
    /// `internal`, `client`, `server`, `producer` or `consumer`.
    pub kind: String,
    /// `None` when unset, `Some(description)` for ERROR, `Some("ok")` for OK.
    pub error: Option<String>,
    /// Attributes as (key, value rendered as a string).
    pub attrs: Vec<(String, String)>,
    /// Events as (name, attributes).
    pub events: Vec<(String, Vec<(String, String)>)>,
    /// Instrumentation scope name and version.
    pub scope: (String, Option<String>),
}

impl SpanRecord {
    /// The value of an attribute.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this span is the parent of `child`.
    pub fn is_parent_of(&self, child: &SpanRecord) -> bool {
        self.span_id == child.parent_span_id && self.trace_id == child.trace_id
    }

    /// Whether the span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.chars().all(|c| c == '0')
    }

    /// The attributes of the first event with this name.
    pub fn event(&self, name: &str) -> Option<&[(String, String)]> {
        self.events
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.as_slice())
    }
}

/// One metric data point, summarised: counters and histograms alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Instrument name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Labels, sorted by key.
    pub labels: Vec<(String, String)>,
    /// Counter: the sum. Histogram: the number of recordings.
    pub count: u64,
    /// Histogram: the sum of the recorded values (0 for counters).
    pub sum: f64,
    /// Histogram: the bucket boundaries (empty for counters).
    pub bounds: Vec<f64>,
}

/// In-memory spans and metrics from explicit providers.
pub struct Capture {
    telemetry: Telemetry,
    #[cfg(feature = "otel")]
    inner: imp::Inner,
}

impl Default for Capture {
    fn default() -> Self {
        Capture::new()
    }
}

impl Capture {
    /// Explicit providers with in-memory exporters, bound as a [`Telemetry`]
    /// (which also enables telemetry).
    pub fn new() -> Capture {
        #[cfg(feature = "otel")]
        {
            let inner = imp::Inner::new();
            let telemetry = Telemetry::new(&inner.tracer_provider, &inner.meter_provider);
            Capture { telemetry, inner }
        }
        #[cfg(not(feature = "otel"))]
        {
            Capture {
                telemetry: Telemetry::global(),
            }
        }
    }

    /// Like [`new`](Capture::new), and also installs the providers as the
    /// OpenTelemetry globals and calls `agent_kernel_otel::enable()` (for
    /// tests that run in their own process, such as trybuild pass cases).
    pub fn install_global() -> Capture {
        let capture = Capture::new();
        #[cfg(feature = "otel")]
        {
            opentelemetry::global::set_tracer_provider(capture.inner.tracer_provider.clone());
            opentelemetry::global::set_meter_provider(capture.inner.meter_provider.clone());
        }
        agent_kernel_otel::enable();
        capture
    }

    /// The tracer provider whose spans this capture holds (for spans made
    /// outside the kernel, such as the audit bridge's).
    #[cfg(feature = "otel")]
    pub fn tracer_provider(&self) -> &opentelemetry_sdk::trace::SdkTracerProvider {
        &self.inner.tracer_provider
    }

    /// The binding to these providers.
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry.clone()
    }

    /// All finished spans so far, in end order.
    pub fn spans(&self) -> Vec<SpanRecord> {
        #[cfg(feature = "otel")]
        {
            self.inner.spans()
        }
        #[cfg(not(feature = "otel"))]
        {
            Vec::new()
        }
    }

    /// The one finished span with this name.
    ///
    /// # Panics
    /// When there is not exactly one (this is test support).
    #[allow(clippy::panic)]
    pub fn span(&self, name: &str) -> SpanRecord {
        let all = self.spans();
        let found: Vec<&SpanRecord> = all.iter().filter(|s| s.name == name).collect();
        match found.as_slice() {
            [one] => (*one).clone(),
            _ => panic!(
                "expected exactly one span named {name:?}, found {}; spans: {:?}",
                found.len(),
                all.iter().map(|s| &s.name).collect::<Vec<_>>()
            ),
        }
    }

    /// Current metric points (cumulative since the capture started).
    pub fn points(&self) -> Vec<Point> {
        #[cfg(feature = "otel")]
        {
            self.inner.points()
        }
        #[cfg(not(feature = "otel"))]
        {
            Vec::new()
        }
    }

    /// The count of the point with this name and exactly these labels (0 if
    /// absent): a counter's sum or a histogram's number of recordings.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        self.points()
            .iter()
            .filter(|p| p.name == name && p.labels == want)
            .map(|p| p.count)
            .sum()
    }
}

#[cfg(feature = "otel")]
mod imp {
    use opentelemetry::trace::Status;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    use super::{Point, SpanRecord};

    pub(super) struct Inner {
        pub(super) tracer_provider: SdkTracerProvider,
        pub(super) meter_provider: SdkMeterProvider,
        spans: InMemorySpanExporter,
        metrics: InMemoryMetricExporter,
    }

    impl Inner {
        pub(super) fn new() -> Inner {
            let spans = InMemorySpanExporter::default();
            let metrics = InMemoryMetricExporter::default();
            let tracer_provider = SdkTracerProvider::builder()
                .with_simple_exporter(spans.clone())
                .build();
            let meter_provider = SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(metrics.clone()).build())
                .build();
            Inner {
                tracer_provider,
                meter_provider,
                spans,
                metrics,
            }
        }

        pub(super) fn spans(&self) -> Vec<SpanRecord> {
            let _ = self.tracer_provider.force_flush();
            self.spans
                .get_finished_spans()
                .unwrap_or_default()
                .into_iter()
                .map(|s| SpanRecord {
                    name: s.name.to_string(),
                    trace_id: s.span_context.trace_id().to_string(),
                    span_id: s.span_context.span_id().to_string(),
                    parent_span_id: s.parent_span_id.to_string(),
                    kind: format!("{:?}", s.span_kind).to_lowercase(),
                    error: match &s.status {
                        Status::Unset => None,
                        Status::Error { description } => Some(description.to_string()),
                        Status::Ok => Some("ok".to_owned()),
                    },
                    attrs: s
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                        .collect(),
                    events: s
                        .events
                        .events
                        .iter()
                        .map(|e| {
                            (
                                e.name.to_string(),
                                e.attributes
                                    .iter()
                                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                                    .collect(),
                            )
                        })
                        .collect(),
                    scope: (
                        s.instrumentation_scope.name().to_owned(),
                        s.instrumentation_scope.version().map(str::to_owned),
                    ),
                })
                .collect()
        }

        pub(super) fn points(&self) -> Vec<Point> {
            self.metrics.reset();
            let _ = self.meter_provider.force_flush();
            let exported = self.metrics.get_finished_metrics().unwrap_or_default();
            let Some(last) = exported.last() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for scope in last.scope_metrics() {
                for metric in scope.metrics() {
                    let name = metric.name().to_owned();
                    let unit = metric.unit().to_owned();
                    let labels = |attrs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                        let mut l: Vec<(String, String)> = attrs
                            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                            .collect();
                        l.sort();
                        l
                    };
                    match metric.data() {
                        AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                            for p in sum.data_points() {
                                out.push(Point {
                                    name: name.clone(),
                                    unit: unit.clone(),
                                    labels: labels(&mut p.attributes()),
                                    count: p.value(),
                                    sum: 0.0,
                                    bounds: Vec::new(),
                                });
                            }
                        }
                        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                            for p in h.data_points() {
                                out.push(Point {
                                    name: name.clone(),
                                    unit: unit.clone(),
                                    labels: labels(&mut p.attributes()),
                                    count: p.count(),
                                    sum: p.sum(),
                                    bounds: p.bounds().collect(),
                                });
                            }
                        }
                        AggregatedMetrics::U64(MetricData::Gauge(g)) => {
                            for p in g.data_points() {
                                out.push(Point {
                                    name: name.clone(),
                                    unit: unit.clone(),
                                    labels: labels(&mut p.attributes()),
                                    count: p.value(),
                                    sum: 0.0,
                                    bounds: Vec::new(),
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
            out
        }
    }
}
