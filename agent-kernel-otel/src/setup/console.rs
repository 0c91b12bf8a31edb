//! [`ConsoleSpanExporter`]: each finished trace as an indented tree.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry::{Array, Value};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::config::{SharedWriter, defaults};

/// Longest attribute value printed; longer ones are cut with `…`.
const MAX_VALUE_CHARS: usize = 96;
/// Most spans held for one trace; later ones are dropped and counted.
const MAX_SPANS_PER_TRACE: usize = 1024;

/// A [`SpanExporter`] that prints each trace as an indented tree once its
/// local root span ends, with durations, statuses and attributes.
///
/// ```text
/// agent_kernel.invoke 1.84 ms  trace=4bf92f3577b34da6a3ce929d0e0e4736  capability_id=billing.read
/// ├─ agent_kernel.policy.evaluate 0.12 ms  decision=allow
/// ├─ agent_kernel.driver.execute 1.20 ms  ERROR: connection refused  attempt=1
/// └─ agent_kernel.firewall.apply 0.07 ms  rows_out=3
/// ```
///
/// Spans are held per trace until the local root (a span without a parent, or
/// whose parent is remote) is exported; memory is bounded: at most
/// `max_pending_traces` traces wait at once (the oldest is dropped first) and
/// at most 1024 spans per trace. Dropped spans are counted in
/// [`dropped_spans`](Self::dropped_spans). Traces still waiting at shutdown
/// are printed, marked incomplete.
///
/// Attributes are printed as recorded: the telemetry contract keeps secrets
/// and argument values out of span attributes, so nothing here filters them.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use agent_kernel_otel::setup::ConsoleSpanExporter;
/// use opentelemetry::trace::{Tracer, TracerProvider as _};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// let out = Arc::new(Mutex::new(Vec::<u8>::new()));
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(ConsoleSpanExporter::with_writer(out.clone()))
///     .build();
/// let tracer = provider.tracer("example");
/// tracer.in_span("parent", |_| tracer.in_span("child", |_| {}));
/// let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
/// assert!(text.starts_with("parent "));
/// assert!(text.contains("└─ child "));
/// ```
#[derive(Debug)]
pub struct ConsoleSpanExporter {
    out: Output,
    state: Mutex<Pending>,
    max_pending_traces: usize,
    dropped: AtomicU64,
}

#[derive(Clone)]
enum Output {
    Stdout,
    Writer(SharedWriter),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stdout => "Stdout",
            Self::Writer(_) => "Writer",
        })
    }
}

#[derive(Debug, Default)]
struct Pending {
    traces: HashMap<TraceId, Vec<SpanData>>,
    /// Arrival order of the traces in `traces`, oldest first.
    order: VecDeque<TraceId>,
}

impl ConsoleSpanExporter {
    /// Prints to stdout.
    #[must_use]
    pub fn stdout() -> Self {
        Self::new(Output::Stdout)
    }

    /// Prints to `writer`.
    #[must_use]
    pub fn with_writer(writer: SharedWriter) -> Self {
        Self::new(Output::Writer(writer))
    }

    fn new(out: Output) -> Self {
        Self {
            out,
            state: Mutex::new(Pending::default()),
            max_pending_traces: defaults::CONSOLE_MAX_PENDING_TRACES,
            dropped: AtomicU64::new(0),
        }
    }

    /// Caps the traces held while waiting for their root (at least 1).
    #[must_use]
    pub fn with_max_pending_traces(mut self, max: usize) -> Self {
        self.max_pending_traces = max.max(1);
        self
    }

    /// Spans dropped so far to keep memory bounded.
    #[must_use]
    pub fn dropped_spans(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Files the spans; returns the text of every trace completed by them.
    fn accept(&self, batch: Vec<SpanData>) -> String {
        let mut text = String::new();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for span in batch {
            let trace_id = span.span_context.trace_id();
            let is_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
            if is_root {
                let mut spans = state.remove(trace_id);
                spans.push(span);
                render_trace(&mut text, spans, false);
                continue;
            }
            if !state.traces.contains_key(&trace_id) {
                while state.order.len() >= self.max_pending_traces {
                    let evicted = state.pop_oldest();
                    self.count_dropped(evicted);
                }
                state.order.push_back(trace_id);
            }
            let spans = state.traces.entry(trace_id).or_default();
            if spans.len() >= MAX_SPANS_PER_TRACE {
                self.count_dropped(1);
            } else {
                spans.push(span);
            }
        }
        text
    }

    fn count_dropped(&self, n: usize) {
        self.dropped
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Prints every trace still waiting for its root, marked incomplete.
    fn drain(&self) -> OTelSdkResult {
        let mut text = String::new();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            while !state.order.is_empty() {
                let spans = state.pop_oldest_spans();
                render_trace(&mut text, spans, true);
            }
        }
        self.write(&text)
    }

    fn write(&self, text: &str) -> OTelSdkResult {
        if text.is_empty() {
            return Ok(());
        }
        let result = match &self.out {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
            Output::Writer(writer) => {
                let mut out = writer.lock().unwrap_or_else(PoisonError::into_inner);
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
        };
        result.map_err(|e| OTelSdkError::InternalFailure(format!("console exporter: {e}")))
    }
}

impl Pending {
    fn remove(&mut self, trace_id: TraceId) -> Vec<SpanData> {
        match self.traces.remove(&trace_id) {
            Some(spans) => {
                self.order.retain(|t| *t != trace_id);
                spans
            }
            None => Vec::new(),
        }
    }

    fn pop_oldest_spans(&mut self) -> Vec<SpanData> {
        self.order
            .pop_front()
            .and_then(|t| self.traces.remove(&t))
            .unwrap_or_default()
    }

    /// Drops the oldest pending trace; returns how many spans it held.
    fn pop_oldest(&mut self) -> usize {
        self.pop_oldest_spans().len()
    }
}

impl SpanExporter for ConsoleSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let text = self.accept(batch);
        self.write(&text)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.drain()
    }
}

/// Appends the tree of `spans` (one trace) to `out`.
fn render_trace(out: &mut String, mut spans: Vec<SpanData>, incomplete: bool) {
    spans.sort_by_key(|s| s.start_time);
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    // Tops: spans whose parent is not in this set (the root, or orphans whose
    // parent was dropped or has not ended).
    let tops: Vec<usize> = (0..spans.len())
        .filter(|&i| {
            !ids.contains(&spans[i].parent_span_id) || spans[i].parent_span_id == SpanId::INVALID
        })
        .collect();
    let mut first = true;
    for top in tops {
        let mut line = String::new();
        span_line(&mut line, &spans[top]);
        if first {
            let _ = write!(line, "  trace={}", spans[top].span_context.trace_id());
            if incomplete {
                line.push_str("  (incomplete: root span not ended)");
            }
            first = false;
        }
        out.push_str(&line);
        out.push('\n');
        children(out, &spans, top, "", 0);
    }
}

fn children(out: &mut String, spans: &[SpanData], parent: usize, prefix: &str, depth: usize) {
    let parent_id = spans[parent].span_context.span_id();
    let kids: Vec<usize> = (0..spans.len())
        .filter(|&i| i != parent && spans[i].parent_span_id == parent_id)
        .collect();
    for (n, &kid) in kids.iter().enumerate() {
        let last = n + 1 == kids.len();
        out.push_str(prefix);
        out.push_str(if last { "└─ " } else { "├─ " });
        span_line(out, &spans[kid]);
        out.push('\n');
        // Depth bound: a malformed parent chain cannot recurse for ever.
        if depth < 64 {
            let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
            children(out, spans, kid, &deeper, depth + 1);
        }
    }
}

fn span_line(out: &mut String, span: &SpanData) {
    let elapsed = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or(Duration::ZERO);
    let _ = write!(out, "{} {}", span.name, format_duration(elapsed));
    if let Status::Error { description } = &span.status {
        if description.is_empty() {
            out.push_str("  ERROR");
        } else {
            let _ = write!(out, "  ERROR: {}", truncate(description));
        }
    }
    for kv in &span.attributes {
        let _ = write!(out, "  {}={}", kv.key, format_value(&kv.value));
    }
}

fn format_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => truncate(s.as_str()),
        Value::Array(Array::String(items)) => truncate(
            &items
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => truncate(&other.to_string()),
    }
}

fn truncate(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(MAX_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// The console exporter wrapped for use by [`init`](super::init).
pub(crate) fn exporter(writer: Option<SharedWriter>, max_pending: usize) -> ConsoleSpanExporter {
    match writer {
        Some(w) => ConsoleSpanExporter::with_writer(w),
        None => ConsoleSpanExporter::stdout(),
    }
    .with_max_pending_traces(max_pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::sync::Arc;

    fn capture() -> (SharedWriter, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        (buf.clone(), buf)
    }

    fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
        String::from_utf8(buf.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn prints_the_tree_when_the_root_ends() {
        let (writer, buf) = capture();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(ConsoleSpanExporter::with_writer(writer))
            .build();
        let tracer = provider.tracer("t");
        tracer.in_span("root", |cx| {
            cx.span()
                .set_attribute(KeyValue::new("capability_id", "billing.read"));
            tracer.in_span("first", |_| tracer.in_span("inner", |_| {}));
            assert_eq!(text(&buf), "", "nothing printed before the root ends");
            tracer.in_span("second", |cx| {
                cx.span().set_status(Status::error("driver failed"));
            });
        });
        let out = text(&buf);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("root ") && lines[0].contains("capability_id=billing.read"));
        assert!(lines[0].contains("trace="));
        assert!(lines[1].starts_with("├─ first "), "{out}");
        assert!(lines[2].starts_with("│  └─ inner "), "{out}");
        assert!(
            lines[3].starts_with("└─ second ") && lines[3].contains("ERROR: driver failed"),
            "{out}"
        );
        let _ = provider.shutdown();
    }

    #[test]
    fn pending_traces_are_bounded_and_drops_counted() {
        let (writer, buf) = capture();
        let exporter =
            Arc::new(ConsoleSpanExporter::with_writer(writer).with_max_pending_traces(2));
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(SharedExporter(exporter.clone()))
            .build();
        let tracer = provider.tracer("t");
        // Three traces whose roots never end: only two may wait.
        let roots: Vec<_> = (0..3)
            .map(|i| {
                let root = tracer.start(format!("root{i}"));
                let cx = opentelemetry::Context::current().with_span(root);
                let mut child = tracer.start_with_context("child", &cx);
                child.end();
                cx
            })
            .collect();
        assert_eq!(exporter.dropped_spans(), 1);
        assert_eq!(text(&buf), "");
        let _ = provider.shutdown();
        let out = text(&buf);
        assert_eq!(
            out.matches("(incomplete: root span not ended)").count(),
            2,
            "{out}"
        );
        drop(roots);
    }

    #[derive(Debug)]
    struct SharedExporter(Arc<ConsoleSpanExporter>);
    impl SpanExporter for SharedExporter {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.export(batch).await
        }
        fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
            self.0.shutdown_with_timeout(timeout)
        }
    }

    #[test]
    fn durations_and_values_are_formatted() {
        assert_eq!(format_duration(Duration::from_micros(12)), "12 µs");
        assert_eq!(format_duration(Duration::from_micros(1840)), "1.84 ms");
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.50 s");
        let long = "x".repeat(200);
        assert_eq!(truncate(&long).chars().count(), MAX_VALUE_CHARS + 1);
        assert_eq!(truncate("a\nb"), "a b");
    }
}
