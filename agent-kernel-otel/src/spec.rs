//! What a call site declares once and `#[kernel_span]` refers to: the span
//! kind chosen at run time ([`SpanKind`]) and metrics declared as constants
//! ([`CounterSpec`], [`HistogramSpec`]), so a metric used by several functions
//! is written in one place. Plain data: the same with and without `otel`.

/// The kind of a span, for `kind = <expr>` in `#[kernel_span]` when it is
/// known only at run time (the five keywords cover the static case).
///
/// ```
/// use agent_kernel_otel::{SpanKind, kernel_span};
///
/// struct Driver { remote: bool }
/// impl Driver {
///     fn span_kind(&self) -> SpanKind {
///         if self.remote { SpanKind::Client } else { SpanKind::Internal }
///     }
/// }
///
/// #[kernel_span(name = "demo.execute", kind = driver.span_kind())]
/// fn execute(driver: &Driver) -> u32 { 1 }
/// # assert_eq!(execute(&Driver { remote: true }), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    /// An operation inside the process (the default).
    #[default]
    Internal,
    /// An outgoing call to a remote service.
    Client,
    /// The handling of an incoming remote call.
    Server,
    /// The sending of a message handled later.
    Producer,
    /// The handling of a message sent earlier.
    Consumer,
}

/// A counter declared once as a constant and used by `#[kernel_span]` as
/// `metrics(counter(PATH, when = ..))`: it adds 1 per recorded call.
///
/// `labels` are bare label keys: each must be a key declared in the
/// function's `attrs(...)` (an identifier key `x` or a path key whose value
/// is `agent_kernel.x` has label key `x`; a string key is its own label key)
/// or the built-in `status`. The name's shape and the labels are checked when
/// the macro's generated code is compiled (a `const` assertion: a mistake is a
/// compile error at the use site).
///
/// ```
/// use agent_kernel_otel::{CounterSpec, kernel_span};
///
/// pub const DENIALS: CounterSpec = CounterSpec::new(
///     "demo.denials", "{denial}", "Denials by category", &["category"],
/// );
///
/// #[kernel_span(name = "demo.check", attrs(category), metrics(counter(DENIALS, when = failure)))]
/// fn check(category: &str) -> Result<(), std::io::Error> { Ok(()) }
/// # check("quota").unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterSpec {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    labels: &'static [&'static str],
}

impl CounterSpec {
    /// A counter named `name` (OpenTelemetry instrument-name rules), with a
    /// UCUM `unit` and a `description` (either may be empty) and the bare
    /// keys of its `labels`.
    pub const fn new(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        CounterSpec {
            name,
            unit,
            description,
            labels,
        }
    }

    /// The instrument name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The UCUM unit (empty: none).
    pub const fn unit(&self) -> &'static str {
        self.unit
    }

    /// The description (empty: none).
    pub const fn description(&self) -> &'static str {
        self.description
    }

    /// The bare label keys.
    pub const fn labels(&self) -> &'static [&'static str] {
        self.labels
    }
}

/// A duration histogram declared once as a constant and used by
/// `#[kernel_span]` as `metrics(histogram(PATH, when = ..))`: it records the
/// span's duration in its unit (`s`, `ms`, `us` or `ns`).
///
/// Labels as for [`CounterSpec`]. The name's shape, the unit, the buckets'
/// order and the labels are checked when the generated code is compiled.
///
/// ```
/// use agent_kernel_otel::{HistogramSpec, kernel_span};
///
/// pub const LATENCY: HistogramSpec =
///     HistogramSpec::new("demo.latency", "ms", "Latency", &["status"])
///         .with_buckets(&[0.1, 1.0, 10.0]);
///
/// #[kernel_span(name = "demo.work", metrics(histogram(LATENCY)))]
/// fn work() -> u32 { 7 }
/// # assert_eq!(work(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramSpec {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    buckets: &'static [f64],
    labels: &'static [&'static str],
}

impl HistogramSpec {
    /// A histogram of durations in `unit` (`s`, `ms`, `us` or `ns`), with the
    /// SDK's default buckets.
    pub const fn new(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        HistogramSpec {
            name,
            unit,
            description,
            buckets: &[],
            labels,
        }
    }

    /// Explicit bucket boundaries (finite, increasing).
    pub const fn with_buckets(mut self, buckets: &'static [f64]) -> Self {
        self.buckets = buckets;
        self
    }

    /// The instrument name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The UCUM unit of the recorded durations.
    pub const fn unit(&self) -> &'static str {
        self.unit
    }

    /// The description (empty: none).
    pub const fn description(&self) -> &'static str {
        self.description
    }

    /// Explicit bucket boundaries (empty: the SDK's default).
    pub const fn buckets(&self) -> &'static [f64] {
        self.buckets
    }

    /// The bare label keys.
    pub const fn labels(&self) -> &'static [&'static str] {
        self.labels
    }
}
