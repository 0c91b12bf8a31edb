//! The static description of one call site, built in a `static` by the
//! generated code, and the `const fn`s that check and resolve what the macro
//! cannot see (constant paths): a mistake there panics during constant
//! evaluation, which is a compile error at the annotated function.

use crate::spec::{CounterSpec, HistogramSpec, SpanKind};

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
    /// The unit of a UCUM time symbol (`s`, `ms`, `us`, `ns`).
    pub const fn from_ucum(unit: &str) -> Option<TimeUnit> {
        match unit.as_bytes() {
            b"s" => Some(TimeUnit::Seconds),
            b"ms" => Some(TimeUnit::Millis),
            b"us" => Some(TimeUnit::Micros),
            b"ns" => Some(TimeUnit::Nanos),
            _ => None,
        }
    }

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
    /// The n-th attribute pushed as a label at span start.
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

/// One metric of a call site.
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

impl MetricDesc {
    /// A counter declared as a [`CounterSpec`] constant.
    pub const fn counter(spec: &CounterSpec, when: When, labels: &'static [Label]) -> Self {
        MetricDesc {
            name: spec.name(),
            kind: MetricKind::Counter,
            unit: spec.unit(),
            description: spec.description(),
            buckets: &[],
            labels,
            when,
        }
    }

    /// A histogram declared as a [`HistogramSpec`] constant (its unit was
    /// checked by [`check_histogram`]).
    pub const fn histogram(spec: &HistogramSpec, when: When, labels: &'static [Label]) -> Self {
        let unit = match TimeUnit::from_ucum(spec.unit()) {
            Some(unit) => unit,
            None => TimeUnit::Millis,
        };
        MetricDesc {
            name: spec.name(),
            kind: MetricKind::Histogram(unit),
            unit: spec.unit(),
            description: spec.description(),
            buckets: spec.buckets(),
            labels,
            when,
        }
    }
}

/// A key declared `= deferred` or computed from the return value.
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
    /// Span name (when the name is computed at run time: the function's
    /// name, replaced at each call).
    pub name: &'static str,
    /// Span kind (replaced at each call when computed at run time).
    pub kind: SpanKind,
    /// Deferred keys.
    pub deferred: &'static [DeferredKey],
    /// Keys computed from the return value (`KEY = |out| expr`).
    pub returned: &'static [DeferredKey],
    /// Metrics.
    pub metrics: &'static [MetricDesc],
}

/// When a declared attribute gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// At span start (`key`, `key = expr`, `key = "literal"`).
    Start,
    /// `key = deferred`.
    Deferred,
    /// `key = |out| ..`.
    Returned,
}

/// A key of `attrs(...)` as metric labels refer to it.
#[derive(Debug, Clone, Copy)]
pub struct DeclaredKey {
    span_key: &'static str,
    /// Identifier and constant-path keys: the label key is the span key
    /// without the `agent_kernel.` namespace. String keys: verbatim.
    namespaced: bool,
    place: Place,
}

/// The namespace of identifier keys.
const NAMESPACE: &[u8] = b"agent_kernel.";

impl DeclaredKey {
    /// An identifier key or a constant path (label key: without the namespace).
    pub const fn namespaced(span_key: &'static str, place: Place) -> Self {
        DeclaredKey {
            span_key,
            namespaced: true,
            place,
        }
    }

    /// A string-literal key (label key: verbatim).
    pub const fn verbatim(span_key: &'static str, place: Place) -> Self {
        DeclaredKey {
            span_key,
            namespaced: false,
            place,
        }
    }

    /// Whether `label` names this key.
    const fn is_label(&self, label: &str) -> bool {
        let key = self.span_key.as_bytes();
        let skip = if self.namespaced && starts_with(key, NAMESPACE) {
            NAMESPACE.len()
        } else {
            0
        };
        eq_from(key, skip, label.as_bytes())
    }
}

const fn starts_with(s: &[u8], prefix: &[u8]) -> bool {
    if s.len() < prefix.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if s[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `a[skip..] == b`.
const fn eq_from(a: &[u8], skip: usize, b: &[u8]) -> bool {
    if a.len() < skip || a.len() - skip != b.len() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if a[skip + i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn str_eq(a: &str, b: &str) -> bool {
    eq_from(a.as_bytes(), 0, b.as_bytes())
}

// The checks below run only inside the `const` items the macro generates:
// a panic there is a compile error, never a run-time one.

/// Which of the `N` start-time keys (in declaration order) some metric of
/// `metrics` uses as a label: those are pushed as labels too.
#[allow(clippy::panic)]
pub const fn labelled<const N: usize>(
    keys: &[DeclaredKey],
    metrics: &[&[&'static str]],
) -> [bool; N] {
    let mut out = [false; N];
    let mut k = 0;
    let mut start = 0;
    while k < keys.len() {
        if matches!(keys[k].place, Place::Start) {
            if start >= N {
                panic!("kernel_span: start-time key count mismatch");
            }
            let mut m = 0;
            while m < metrics.len() {
                let mut l = 0;
                while l < metrics[m].len() {
                    if keys[k].is_label(metrics[m][l]) {
                        out[start] = true;
                    }
                    l += 1;
                }
                m += 1;
            }
            start += 1;
        }
        k += 1;
    }
    out
}

/// How many start-time keys are labels (the capacity of the label values).
pub const fn count_labelled(labelled: &[bool]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < labelled.len() {
        if labelled[i] {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The `M` labels of one metric: each bare label key in `list` resolved to
/// the declared key it names (`labelled` as computed by [`labelled`]), or to
/// the built-in `status`.
#[allow(clippy::panic)]
pub const fn labels<const M: usize>(
    list: &[&'static str],
    keys: &[DeclaredKey],
    labelled: &[bool],
) -> [Label; M] {
    let mut out = [Label {
        key: "",
        source: LabelSource::Status,
    }; M];
    if list.len() != M {
        panic!("kernel_span: label count mismatch");
    }
    let mut l = 0;
    while l < M {
        let label = list[l];
        let mut d = 0;
        while d < l {
            if str_eq(list[d], label) {
                panic!("kernel_span: a metric lists the same label twice; give each label once");
            }
            d += 1;
        }
        let source = if str_eq(label, "status") {
            LabelSource::Status
        } else {
            let mut found = None;
            let (mut start, mut deferred, mut returned) = (0, 0, 0);
            let mut k = 0;
            while k < keys.len() {
                let key = &keys[k];
                let here = key.is_label(label);
                match key.place {
                    Place::Start => {
                        if here && start < labelled.len() {
                            // The slot: how many labelled keys come before.
                            let mut slot = 0;
                            let mut j = 0;
                            while j < start {
                                if labelled[j] {
                                    slot += 1;
                                }
                                j += 1;
                            }
                            found = Some(LabelSource::Attr(slot));
                        }
                        start += 1;
                    }
                    Place::Deferred => {
                        if here {
                            found = Some(LabelSource::Deferred(deferred));
                        }
                        deferred += 1;
                    }
                    Place::Returned => {
                        if here {
                            found = Some(LabelSource::Returned(returned));
                        }
                        returned += 1;
                    }
                }
                if found.is_some() {
                    break;
                }
                k += 1;
            }
            match found {
                Some(source) => source,
                None => panic!(
                    "kernel_span: a label of this metric is neither a key of `attrs(...)` nor `status`; declare the attribute (an identifier key `x` or a constant `agent_kernel.x` has label key `x`)"
                ),
            }
        };
        out[l] = Label { key: label, source };
        l += 1;
    }
    out
}

/// No two declared keys share a span key (constant paths included).
#[allow(clippy::panic)]
pub const fn check_distinct(keys: &[DeclaredKey]) {
    let mut i = 0;
    while i < keys.len() {
        let mut j = 0;
        while j < i {
            if str_eq(keys[i].span_key, keys[j].span_key) {
                panic!("kernel_span: two attributes have the same key; give each key once");
            }
            j += 1;
        }
        i += 1;
    }
}

/// A span name given as a constant is not empty.
#[allow(clippy::panic)]
pub const fn check_span_name(name: &str) {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_whitespace() {
            return;
        }
        i += 1;
    }
    panic!("kernel_span: the span name must not be empty");
}

/// OpenTelemetry instrument-name rules: an ASCII letter first, then letters,
/// digits, `_ . - /`, at most 255 characters.
#[allow(clippy::panic)]
pub const fn check_metric_name(name: &str) {
    let b = name.as_bytes();
    let mut ok = !b.is_empty() && b.len() <= 255 && b[0].is_ascii_alphabetic();
    let mut i = 0;
    while ok && i < b.len() {
        let c = b[i];
        ok = c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-' || c == b'/';
        i += 1;
    }
    if !ok {
        panic!(
            "kernel_span: invalid metric name: start with a letter, then letters, digits, `_`, `.`, `-` or `/` (at most 255)"
        );
    }
}

/// Explicit bucket boundaries are finite and increasing.
#[allow(clippy::panic)]
pub const fn check_buckets(buckets: &[f64]) {
    if buckets.is_empty() {
        panic!("kernel_span: `buckets` must list at least one boundary");
    }
    let mut i = 0;
    while i < buckets.len() {
        if !buckets[i].is_finite() {
            panic!("kernel_span: bucket boundaries must be finite");
        }
        if i > 0 && buckets[i] <= buckets[i - 1] {
            panic!("kernel_span: bucket boundaries must increase");
        }
        i += 1;
    }
}

/// A counter constant: its name.
pub const fn check_counter(spec: &CounterSpec) {
    check_metric_name(spec.name());
}

/// A histogram constant: its name, its unit (a time unit) and its buckets.
#[allow(clippy::panic)]
pub const fn check_histogram(spec: &HistogramSpec) {
    check_metric_name(spec.name());
    if TimeUnit::from_ucum(spec.unit()).is_none() {
        panic!(
            "kernel_span: a histogram records the span's duration; its unit must be one of `s`, `ms`, `us`, `ns`"
        );
    }
    if !spec.buckets().is_empty() {
        check_buckets(spec.buckets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[DeclaredKey] = &[
        DeclaredKey::namespaced("agent_kernel.principal_id", Place::Start),
        DeclaredKey::namespaced("agent_kernel.capability_id", Place::Start),
        DeclaredKey::verbatim("gen_ai.tool.name", Place::Start),
        DeclaredKey::namespaced("agent_kernel.reason_category", Place::Deferred),
        DeclaredKey::verbatim("agent_kernel.decision", Place::Returned),
    ];

    #[test]
    fn labels_resolve_to_their_declared_keys() {
        const LISTS: &[&[&str]] = &[
            &["capability_id", "status"],
            &[
                "gen_ai.tool.name",
                "reason_category",
                "agent_kernel.decision",
            ],
        ];
        const LABELLED: [bool; 3] = labelled::<3>(KEYS, LISTS);
        assert_eq!(LABELLED, [false, true, true]);
        const A: [Label; 2] = labels::<2>(LISTS[0], KEYS, &LABELLED);
        assert_eq!(A[0].source, LabelSource::Attr(0));
        assert_eq!(A[1].source, LabelSource::Status);
        const B: [Label; 3] = labels::<3>(LISTS[1], KEYS, &LABELLED);
        assert_eq!(B[0].source, LabelSource::Attr(1));
        assert_eq!(B[1].source, LabelSource::Deferred(0));
        // A string key is its own label key, namespace and all.
        assert_eq!(B[2].source, LabelSource::Returned(0));
        assert_eq!(B[2].key, "agent_kernel.decision");
    }

    #[test]
    fn time_units_are_the_four_ucum_symbols() {
        assert_eq!(TimeUnit::from_ucum("ms"), Some(TimeUnit::Millis));
        assert_eq!(TimeUnit::from_ucum("s"), Some(TimeUnit::Seconds));
        assert_eq!(TimeUnit::from_ucum("min"), None);
    }
}
