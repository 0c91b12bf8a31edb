//! The run-time side of `#[kernel_span]`: what the generated code calls, the
//! per-kernel [`Telemetry`] binding, deferred attributes ([`record`]), error
//! classification ([`SpanError`]), observable gauges and trace-id correlation.
//!
//! # Features
//! - no feature: every public item exists with the same signature and does
//!   nothing; no `opentelemetry` crate is in the dependency tree, and
//!   `#[kernel_span]` returns the function unchanged (after checking its
//!   arguments).
//! - `otel`: spans and metrics through the OpenTelemetry **API** (0.33); the
//!   application chooses the SDK and exporters. `Telemetry::new` and the
//!   `opentelemetry` re-export exist only with this feature, since their
//!   signatures name OpenTelemetry types.
//!
//! # The run-time switch
//! Telemetry is off until [`enable`] is called (or a [`Telemetry::new`] binding
//! is made). While off, a `#[kernel_span]` function does one relaxed atomic
//! load and runs its plain body: no allocation, no `Context` access, no
//! attribute expression evaluated.
//!
//! # Binding and caching (the choice, written down)
//! - **Root spans** take their binding from the `telemetry = <expr>` macro
//!   argument (evaluated only when telemetry is on), else from the current
//!   `Context`, else [`Telemetry::global`].
//! - **Child spans** (policy, drivers, firewall, a user's own driver) find the
//!   binding in the OpenTelemetry `Context`, where a span stores it as a
//!   context value only when it differs from what the context already implies
//!   (or when the span declares deferred keys), so plain children add no
//!   context entry. The parent is the current `Context`'s span, so parenting
//!   follows `.await` (the async wrapper attaches the span's context on every
//!   poll) and threads (wherever the application carries the `Context`).
//! - **Global binding**: the tracer and meter come from `opentelemetry::global`
//!   lazily, the first time a span needs them after [`enable`]; each call to
//!   `enable` bumps a generation counter and the next span fetches them again
//!   (per thread, a cached copy is checked against the counter with one atomic
//!   load). A tracer fetched before the application installed its provider
//!   therefore never stays a no-op.
//! - **Instruments** are cached per call site: each site keeps the
//!   instruments of the binding it last saw (binding id, instruments); another
//!   binding builds its own (the SDK hands back the instruments it already has
//!   for the same names), so two kernels with different providers never share
//!   an instrument. Binding ids are never reused.
//! - **Gauges** live on a binding; those of the global binding move to the
//!   current global meter at each [`enable`].
//!
//! # Modules
//! No module imports one that imports it back. `telemetry` (bindings, the
//! global providers' generation, the global gauges) is at the bottom;
//! `switch` (the run-time flag; `enable` reloads the globals), `context`
//! (what a kernel span leaves in the OpenTelemetry `Context`) and `gauge`
//! sit on it; the versioned private module runs `site` (descriptors and
//! their `const` checks) → `span` → `future` on top of all of them. `spec`,
//! `value` and `error` are plain data; `deferred` (`record`), `ids` and
//! `propagation` are public entry points.
//!
//! # Spans
//! Scope `agent_kernel` with this crate's version. Attribute keys written as
//! identifiers are namespaced (`principal_id` → `agent_kernel.principal_id`);
//! string-literal keys are used verbatim (`"gen_ai.tool.name"`). A `Result`
//! return leaves the status unset on `Ok` and on `Err` sets ERROR with a
//! redacted description, `error.type` and an `exception` event (see
//! [`SpanError`]). A panic ends the span as ERROR (`error.type = "panic"`) and
//! keeps unwinding. A dropped async future ends its span as ERROR with
//! `agent_kernel.cancelled = true` and `error.type = "cancelled"`: the call did
//! not complete, which is a failure from the caller's point of view.
//!
//! # Metrics
//! Counters add 1 per call; histograms record the span's duration in their
//! unit. Labels come from declared attributes, deferred keys and the built-in
//! `status` (`success`, `error`, or `denied` when [`SpanError::is_denial`]).
//! Cancelled and panicked calls count as `error`. **Label values must come
//! from bounded sets** (capability ids from a registry, closed enums): the
//! macro cannot check that; it is the caller's responsibility, and high
//! cardinality costs memory in every metrics backend.
//!
//! # Failure rules
//! Telemetry never changes a result and never panics: poisoned locks are
//! recovered, a missing provider means no-op instruments.
#![forbid(unsafe_code)]

#[cfg(feature = "otel")]
mod context;
mod deferred;
mod error;
mod gauge;
mod ids;
mod propagation;
mod spec;
mod switch;
mod telemetry;
mod value;

/// What the generated code calls. The name carries the crate's version
/// (`0.1`) because the macro crate emits exactly this path and is pinned with
/// `=`: two versions of the runtime in one build never mix their halves.
#[cfg(feature = "otel")]
#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private_v0_1;

#[cfg(feature = "otel")]
pub(crate) use __private_v0_1 as private;

pub use agent_kernel_macros::kernel_span;
pub use deferred::{record, record_all};
pub use error::SpanError;
pub use gauge::{GaugeObserver, GaugeRegistration, GaugeSpec, GaugeValue};
pub use ids::current_trace_ids;
pub use propagation::{TRACEPARENT, TRACESTATE, inject_context};
pub use spec::{CounterSpec, HistogramSpec, SpanKind};
pub use switch::{disable, enable, is_enabled};
pub use telemetry::Telemetry;
pub use value::{AttrValue, ToAttrValue};

/// The OpenTelemetry API this crate is built against (for
/// [`Telemetry::new`]'s provider arguments).
#[cfg(feature = "otel")]
pub use opentelemetry;

// setup module: declared by the setup engineer
#[cfg(feature = "setup")]
pub mod setup;
