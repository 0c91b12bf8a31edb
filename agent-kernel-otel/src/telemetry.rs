//! [`Telemetry`]: which providers a kernel reports to.

#[cfg(feature = "otel")]
pub(crate) use imp::{Bound, Repr, scope};
#[cfg(feature = "setup")]
pub(crate) use imp::{ContextTracer, pin_global};

/// A binding to a tracer and a meter: which providers the spans and metrics of
/// one kernel go to. Cheap to clone (an enum around an `Arc`).
///
/// - [`Telemetry::global`] follows the OpenTelemetry global providers. The
///   tracer and meter are fetched lazily, at the first span after
///   [`enable`](crate::enable) and fetched again whenever `enable` is called
///   again, so a binding made before the application installed its providers
///   does not stay a no-op.
/// - `Telemetry::new(&tracer_provider, &meter_provider)` (feature `otel`) binds
///   explicit providers, so two kernels in one process can report to different
///   places and tests never fight over the globals. It also turns telemetry on.
///
/// A root span takes its binding from the `telemetry = <expr>` argument of
/// `#[kernel_span]`; spans below it find it in the OpenTelemetry `Context`
/// (also across `.await` and threads, wherever that context is propagated).
/// The instrumentation scope is `agent_kernel` with this crate's version.
#[derive(Clone)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    pub(crate) repr: Repr,
    #[cfg(not(feature = "otel"))]
    _private: (),
}

impl Telemetry {
    /// The binding that follows the OpenTelemetry global providers.
    pub fn global() -> Self {
        #[cfg(feature = "otel")]
        {
            Telemetry { repr: Repr::Global }
        }
        #[cfg(not(feature = "otel"))]
        {
            Telemetry { _private: () }
        }
    }

    /// Whether this is the [`global`](Telemetry::global) binding.
    pub fn is_global(&self) -> bool {
        #[cfg(feature = "otel")]
        {
            matches!(self.repr, Repr::Global)
        }
        #[cfg(not(feature = "otel"))]
        {
            true
        }
    }

    /// Whether two values are the same binding (clones of one another, or both
    /// global).
    pub fn same_binding(&self, other: &Telemetry) -> bool {
        #[cfg(feature = "otel")]
        {
            match (&self.repr, &other.repr) {
                (Repr::Global, Repr::Global) => true,
                (Repr::Bound(a), Repr::Bound(b)) => std::sync::Arc::ptr_eq(a, b),
                _ => false,
            }
        }
        #[cfg(not(feature = "otel"))]
        {
            let _ = other;
            true
        }
    }
}

// A binding's shared state is a tracer, a meter and caches that recover from
// poisoning, so observing it after a caught panic is fine: kernels holding a
// `Telemetry` stay usable with `catch_unwind`.
impl std::panic::UnwindSafe for Telemetry {}
impl std::panic::RefUnwindSafe for Telemetry {}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::global()
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "otel")]
        {
            match &self.repr {
                Repr::Global => f.write_str("Telemetry::global()"),
                Repr::Bound(b) => f.debug_struct("Telemetry").field("id", &b.id).finish(),
            }
        }
        #[cfg(not(feature = "otel"))]
        {
            f.write_str("Telemetry(disabled: built without the `otel` feature)")
        }
    }
}

#[cfg(feature = "otel")]
mod imp {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    use opentelemetry::global;
    use opentelemetry::metrics::{Meter, MeterProvider};
    use opentelemetry::trace::SpanBuilder;
    use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
    use opentelemetry::{Context, InstrumentationScope};

    use super::Telemetry;
    use crate::private::SiteInstruments;
    use crate::switch;

    /// Global or explicit.
    #[derive(Clone)]
    pub(crate) enum Repr {
        Global,
        Bound(Arc<Bound>),
    }

    /// Starts a span as the current span of a new child context.
    ///
    /// Object-safe so that a binding can hold any provider's tracer. The
    /// `Context` boxes the span it carries; going through `BoxedTracer`
    /// instead would box it a second time (two allocations and two dynamic
    /// calls per span operation).
    pub(crate) trait ContextTracer: Send + Sync {
        /// The span built from `builder` under `parent`, in a context derived
        /// from `parent`.
        fn start_in(&self, builder: SpanBuilder, parent: &Context) -> Context;
    }

    impl<T> ContextTracer for T
    where
        T: Tracer + Send + Sync,
        T::Span: Send + Sync + 'static,
    {
        fn start_in(&self, builder: SpanBuilder, parent: &Context) -> Context {
            parent.with_span(self.build_with_context(builder, parent))
        }
    }

    /// A resolved binding: a tracer, a meter and the instruments created from
    /// that meter, one set per call site.
    pub(crate) struct Bound {
        /// Unique for the life of the process (never reused).
        pub(crate) id: u64,
        pub(crate) tracer: Box<dyn ContextTracer>,
        pub(crate) meter: Meter,
        /// Call-site address → that site's instruments for this binding.
        pub(crate) sites: Mutex<HashMap<usize, Arc<SiteInstruments>>>,
    }

    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    pub(crate) fn scope() -> InstrumentationScope {
        InstrumentationScope::builder("agent_kernel")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build()
    }

    impl Bound {
        fn new(tracer: Box<dyn ContextTracer>, meter: Meter) -> Bound {
            Bound {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                tracer,
                meter,
                sites: Mutex::new(HashMap::new()),
            }
        }
    }

    thread_local! {
        /// This thread's copy of the global binding, tagged with its generation.
        static GLOBAL_TLS: RefCell<Option<(u64, Arc<Bound>)>> = const { RefCell::new(None) };
    }

    /// The process-wide global binding of the current generation.
    static GLOBAL: Mutex<Option<(u64, Arc<Bound>)>> = Mutex::new(None);

    fn resolve_global() -> Arc<Bound> {
        let generation = switch::global_generation();
        let cached = GLOBAL_TLS
            .try_with(|c| {
                c.try_borrow().ok().and_then(|c| {
                    c.as_ref()
                        .filter(|(g, _)| *g == generation)
                        .map(|(_, b)| Arc::clone(b))
                })
            })
            .ok()
            .flatten();
        if let Some(bound) = cached {
            return bound;
        }
        let bound = {
            let mut global = GLOBAL.lock().unwrap_or_else(PoisonError::into_inner);
            match &*global {
                Some((g, b)) if *g == generation => Arc::clone(b),
                _ => {
                    let b = Arc::new(Bound::new(
                        Box::new(global::tracer_with_scope(scope())),
                        global::meter_with_scope(scope()),
                    ));
                    *global = Some((generation, Arc::clone(&b)));
                    b
                }
            }
        };
        let _ = GLOBAL_TLS.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                *c = Some((generation, Arc::clone(&bound)));
            }
        });
        bound
    }

    /// Pins the global binding of the current generation to `tracer` and
    /// `meter`: what `setup` has just installed as the OpenTelemetry globals,
    /// held directly rather than through the global API's boxed wrappers (one
    /// allocation and two dynamic calls fewer per span). The next
    /// [`enable`](crate::enable) moves to a new generation, which reads the
    /// globals again, so an application that replaces them afterwards (and
    /// calls `enable`, as it must) is followed as before.
    #[cfg(feature = "setup")]
    pub(crate) fn pin_global(tracer: Box<dyn ContextTracer>, meter: Meter) {
        let generation = switch::global_generation();
        let bound = Arc::new(Bound::new(tracer, meter));
        *GLOBAL.lock().unwrap_or_else(PoisonError::into_inner) = Some((generation, bound));
    }

    impl Telemetry {
        /// Binds explicit providers (scope `agent_kernel`, this crate's
        /// version) and turns telemetry on ([`enable`](crate::enable)).
        ///
        /// ```
        /// # #[cfg(feature = "otel")] {
        /// use agent_kernel_otel::Telemetry;
        /// use agent_kernel_otel::opentelemetry::{metrics::noop::NoopMeterProvider, trace::noop::NoopTracerProvider};
        /// let telemetry = Telemetry::new(&NoopTracerProvider::new(), &NoopMeterProvider::new());
        /// assert!(!telemetry.is_global());
        /// # }
        /// ```
        pub fn new<T, M>(tracer_provider: &T, meter_provider: &M) -> Telemetry
        where
            T: TracerProvider,
            T::Tracer: Send + Sync + 'static,
            <T::Tracer as Tracer>::Span: Span + Send + Sync + 'static,
            M: MeterProvider + ?Sized,
        {
            let tracer = Box::new(tracer_provider.tracer_with_scope(scope()));
            let meter = meter_provider.meter_with_scope(scope());
            crate::enable();
            Telemetry {
                repr: Repr::Bound(Arc::new(Bound::new(tracer, meter))),
            }
        }

        /// Starts a span with this binding's tracer, as the current span of a
        /// child context of `parent`. For the global binding the thread's
        /// cached tracer is borrowed in place (no `Arc` traffic) when it is of
        /// the current generation.
        pub(crate) fn start_span(&self, builder: SpanBuilder, parent: &Context) -> Context {
            match &self.repr {
                Repr::Bound(b) => b.tracer.start_in(builder, parent),
                Repr::Global => {
                    let generation = switch::global_generation();
                    let mut builder = Some(builder);
                    let built = GLOBAL_TLS
                        .try_with(|c| {
                            let c = c.try_borrow().ok()?;
                            let (g, b) = c.as_ref()?;
                            if *g != generation {
                                return None;
                            }
                            let builder = builder.take()?;
                            Some(b.tracer.start_in(builder, parent))
                        })
                        .ok()
                        .flatten();
                    match built {
                        Some(span) => span,
                        // `builder` is only taken on the path that returns `Some`.
                        None => resolve_global().tracer.start_in(
                            builder.unwrap_or_else(|| SpanBuilder::from_name("")),
                            parent,
                        ),
                    }
                }
            }
        }

        /// The tracer, meter and instrument cache this binding stands for now.
        pub(crate) fn resolve(&self) -> Arc<Bound> {
            match &self.repr {
                Repr::Global => resolve_global(),
                Repr::Bound(b) => Arc::clone(b),
            }
        }
    }
}
