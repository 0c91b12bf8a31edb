//! [`Telemetry`]: which providers a kernel reports to.

#[cfg(feature = "setup")]
pub(crate) use imp::instrumentation_scope;
#[cfg(feature = "otel")]
pub(crate) use imp::{Binding, Repr, global_gauges, reload_globals};
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
                (Repr::Explicit(a), Repr::Explicit(b)) => std::sync::Arc::ptr_eq(a, b),
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
                Repr::Explicit(b) => f.debug_struct("Telemetry").field("id", &b.id).finish(),
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
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    use opentelemetry::global;
    use opentelemetry::metrics::{Meter, MeterProvider};
    use opentelemetry::trace::SpanBuilder;
    use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
    use opentelemetry::{Context, InstrumentationScope};

    use super::Telemetry;

    /// The global providers (resolved lazily) or explicit ones.
    #[derive(Clone)]
    pub(crate) enum Repr {
        Global,
        Explicit(Arc<Binding>),
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

    /// A resolved binding: a tracer and a meter (call sites keep the
    /// instruments they built from it, keyed by `id`).
    pub(crate) struct Binding {
        /// Unique for the life of the process (never reused).
        pub(crate) id: u64,
        pub(crate) tracer: Box<dyn ContextTracer>,
        pub(crate) meter: Meter,
    }

    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    /// Bumped by [`enable`](crate::enable), which the application calls after
    /// installing (or replacing) the global providers: global bindings and
    /// global gauges re-read `opentelemetry::global` when it moves.
    static GLOBAL_GENERATION: AtomicU64 = AtomicU64::new(1);

    /// The current generation of the global providers.
    #[inline]
    pub(crate) fn global_generation() -> u64 {
        GLOBAL_GENERATION.load(Ordering::Acquire)
    }

    /// The global providers may have changed: the next span reads them again,
    /// and live global gauges move to the current global meter now.
    pub(crate) fn reload_globals() {
        GLOBAL_GENERATION.fetch_add(1, Ordering::AcqRel);
        global_gauges::move_to_current_meter();
    }

    pub(crate) fn instrumentation_scope() -> InstrumentationScope {
        InstrumentationScope::builder("agent_kernel")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build()
    }

    impl Binding {
        fn new(tracer: Box<dyn ContextTracer>, meter: Meter) -> Binding {
            Binding {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                tracer,
                meter,
            }
        }
    }

    thread_local! {
        /// This thread's copy of the global binding, tagged with its generation.
        static GLOBAL_TLS: RefCell<Option<(u64, Arc<Binding>)>> = const { RefCell::new(None) };
    }

    /// The process-wide global binding of the current generation.
    static GLOBAL: Mutex<Option<(u64, Arc<Binding>)>> = Mutex::new(None);

    fn resolve_global() -> Arc<Binding> {
        let generation = global_generation();
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
                    let b = Arc::new(Binding::new(
                        Box::new(global::tracer_with_scope(instrumentation_scope())),
                        global::meter_with_scope(instrumentation_scope()),
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
        let generation = global_generation();
        let bound = Arc::new(Binding::new(tracer, meter));
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
            let tracer = Box::new(tracer_provider.tracer_with_scope(instrumentation_scope()));
            let meter = meter_provider.meter_with_scope(instrumentation_scope());
            crate::enable();
            Telemetry {
                repr: Repr::Explicit(Arc::new(Binding::new(tracer, meter))),
            }
        }

        /// Starts a span with this binding's tracer, as the current span of a
        /// child context of `parent`. For the global binding the thread's
        /// cached tracer is borrowed in place (no `Arc` traffic) when it is of
        /// the current generation.
        pub(crate) fn start_span(&self, builder: SpanBuilder, parent: &Context) -> Context {
            match &self.repr {
                Repr::Explicit(b) => b.tracer.start_in(builder, parent),
                Repr::Global => {
                    let generation = global_generation();
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

        /// The meter this binding records with now (for the global binding,
        /// the global provider's, read again after each
        /// [`enable`](crate::enable)): for instruments an application
        /// records by hand beside the generated ones, such as a metric it
        /// records only under a setting of its own.
        pub fn meter(&self) -> Meter {
            self.resolve().meter.clone()
        }

        /// The tracer, meter and instrument cache this binding stands for now.
        pub(crate) fn resolve(&self) -> Arc<Binding> {
            match &self.repr {
                Repr::Global => resolve_global(),
                Repr::Explicit(b) => Arc::clone(b),
            }
        }
    }

    /// Gauges registered on the global binding follow the global meter provider:
    /// OpenTelemetry offers no proxy meter, so a gauge registered before the
    /// application installed its provider would stay on the no-op meter for ever.
    /// Each [`enable`](crate::enable) re-registers the live ones on the current
    /// global meter; a callback left on an older meter checks its generation and
    /// reports nothing.
    pub(crate) mod global_gauges {
        use std::any::Any;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::{Arc, Mutex, PoisonError, Weak};

        use opentelemetry::metrics::Meter;

        type Build = Box<dyn Fn(&Meter, u64) -> Box<dyn Any + Send + Sync> + Send + Sync>;

        pub(crate) struct GlobalGauge {
            /// The generation whose instrument may report.
            pub(crate) current: Arc<AtomicU64>,
            build: Build,
            instrument: Mutex<Option<Box<dyn Any + Send + Sync>>>,
        }

        static LIVE: Mutex<Vec<Weak<GlobalGauge>>> = Mutex::new(Vec::new());

        fn global_meter() -> Meter {
            opentelemetry::global::meter_with_scope(super::instrumentation_scope())
        }

        /// Builds the gauge on the current global meter and keeps it in step with
        /// later `enable` calls.
        pub(crate) fn register(current: Arc<AtomicU64>, build: Build) -> Arc<GlobalGauge> {
            let generation = super::global_generation();
            current.store(generation, Ordering::Release);
            let gauge = Arc::new(GlobalGauge {
                instrument: Mutex::new(Some(build(&global_meter(), generation))),
                current,
                build,
            });
            let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
            live.retain(|g| g.strong_count() > 0);
            live.push(Arc::downgrade(&gauge));
            gauge
        }

        /// Moves every live global gauge to the current global meter.
        pub(crate) fn move_to_current_meter() {
            let generation = super::global_generation();
            let gauges: Vec<Arc<GlobalGauge>> = {
                let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
                live.retain(|g| g.strong_count() > 0);
                live.iter().filter_map(Weak::upgrade).collect()
            };
            if gauges.is_empty() {
                return;
            }
            let meter = global_meter();
            for gauge in gauges {
                gauge.current.store(generation, Ordering::Release);
                let instrument = (gauge.build)(&meter, generation);
                *gauge
                    .instrument
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(instrument);
            }
        }
    }
}
