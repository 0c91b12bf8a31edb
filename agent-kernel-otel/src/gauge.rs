//! Observable gauges registered at run time (e.g. the kernel's
//! `agent_kernel.budget_consumed`), unregistered when their handle drops.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Telemetry;

/// Name, unit and description of an observable gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaugeSpec {
    /// Instrument name, e.g. `agent_kernel.budget_consumed`.
    pub name: &'static str,
    /// UCUM unit, e.g. `{token}` (empty: none).
    pub unit: &'static str,
    /// Description (empty: none).
    pub description: &'static str,
}

impl GaugeSpec {
    /// A gauge with no unit and no description.
    pub const fn new(name: &'static str) -> Self {
        GaugeSpec {
            name,
            unit: "",
            description: "",
        }
    }

    /// Sets the unit.
    pub const fn with_unit(mut self, unit: &'static str) -> Self {
        self.unit = unit;
        self
    }

    /// Sets the description.
    pub const fn with_description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
}

/// The value types a gauge can report: `u64`, `i64`, `f64`.
pub trait GaugeValue: sealed::Sealed + Copy + Send + Sync + 'static {
    #[cfg(feature = "otel")]
    #[doc(hidden)]
    #[allow(clippy::type_complexity)]
    fn build(
        meter: &opentelemetry::metrics::Meter,
        spec: GaugeSpec,
        callback: Box<dyn Fn(&dyn opentelemetry::metrics::AsyncInstrument<Self>) + Send + Sync>,
    ) -> Box<dyn std::any::Any + Send + Sync>;
}

#[cfg(feature = "otel")]
macro_rules! gauge_value {
    ($($t:ty => $method:ident),*) => {$(
        impl GaugeValue for $t {
            #[allow(clippy::type_complexity)]
            fn build(
                meter: &opentelemetry::metrics::Meter,
                spec: GaugeSpec,
                callback: Box<dyn Fn(&dyn opentelemetry::metrics::AsyncInstrument<Self>) + Send + Sync>,
            ) -> Box<dyn std::any::Any + Send + Sync> {
                let mut b = meter.$method(spec.name);
                if !spec.unit.is_empty() {
                    b = b.with_unit(spec.unit);
                }
                if !spec.description.is_empty() {
                    b = b.with_description(spec.description);
                }
                Box::new(b.with_callback(move |obs| callback(obs)).build())
            }
        }
    )*};
}
#[cfg(feature = "otel")]
gauge_value!(u64 => u64_observable_gauge, i64 => i64_observable_gauge, f64 => f64_observable_gauge);
#[cfg(not(feature = "otel"))]
impl GaugeValue for u64 {}
#[cfg(not(feature = "otel"))]
impl GaugeValue for i64 {}
#[cfg(not(feature = "otel"))]
impl GaugeValue for f64 {}

/// Handed to a gauge callback at each collection: report one value per label
/// set (e.g. one per live session).
pub struct GaugeObserver<'a, V> {
    #[cfg(feature = "otel")]
    inner: &'a dyn opentelemetry::metrics::AsyncInstrument<V>,
    #[cfg(not(feature = "otel"))]
    _marker: PhantomData<(&'a (), V)>,
}

impl<V: GaugeValue> GaugeObserver<'_, V> {
    /// Reports `value` for the label set `labels` (bare keys; values from a
    /// bounded set, e.g. live session ids only).
    pub fn observe(&self, value: V, labels: &[(&'static str, &str)]) {
        #[cfg(feature = "otel")]
        {
            let labels: Vec<opentelemetry::KeyValue> = labels
                .iter()
                .map(|(k, v)| opentelemetry::KeyValue::new(*k, (*v).to_owned()))
                .collect();
            self.inner.observe(value, &labels);
        }
        #[cfg(not(feature = "otel"))]
        let _ = (value, labels);
    }
}

/// Keeps a gauge registered; dropping it (or [`unregister`](Self::unregister))
/// stops its callback from being called again.
pub struct GaugeRegistration {
    active: Arc<AtomicBool>,
    #[cfg(feature = "otel")]
    _instrument: Option<Box<dyn std::any::Any + Send + Sync>>,
    /// For a global binding: the gauge that `enable` moves to the newly
    /// installed global meter.
    #[cfg(feature = "otel")]
    _global: Option<Arc<crate::telemetry::global_gauges::GlobalGauge>>,
    _marker: PhantomData<()>,
}

impl std::fmt::Debug for GaugeRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaugeRegistration")
            .field("active", &self.active.load(Ordering::Relaxed))
            .finish()
    }
}

impl GaugeRegistration {
    /// Stops reporting (same as dropping the handle).
    pub fn unregister(self) {}
}

impl Drop for GaugeRegistration {
    fn drop(&mut self) {
        self.active.store(false, Ordering::Release);
    }
}

impl Telemetry {
    /// Registers an observable gauge on this binding's meter. `callback` runs
    /// at each metric collection while telemetry is enabled and the returned
    /// handle is alive.
    ///
    /// OpenTelemetry has no way to remove a callback from a meter, so the
    /// handle switches it off: after the drop it reports nothing, and an
    /// exporter stops seeing the gauge's series. For a global binding the
    /// meter is the global one at the time of the call.
    ///
    /// ```
    /// use agent_kernel_otel::{GaugeSpec, Telemetry};
    ///
    /// let gauge = Telemetry::global().register_gauge::<u64, _>(
    ///     GaugeSpec::new("agent_kernel.budget_consumed").with_unit("{token}"),
    ///     |observer| observer.observe(42, &[("session_id", "s-1")]),
    /// );
    /// drop(gauge); // the callback is not called any more
    /// ```
    pub fn register_gauge<V, F>(&self, spec: GaugeSpec, callback: F) -> GaugeRegistration
    where
        V: GaugeValue,
        F: Fn(&GaugeObserver<'_, V>) + Send + Sync + 'static,
    {
        let active = Arc::new(AtomicBool::new(true));
        #[cfg(feature = "otel")]
        {
            use std::sync::atomic::AtomicU64;
            let callback = Arc::new(callback);
            let current = Arc::new(AtomicU64::new(0));
            let build = {
                let active = Arc::clone(&active);
                let current = Arc::clone(&current);
                move |meter: &opentelemetry::metrics::Meter, generation: u64| {
                    let active = Arc::clone(&active);
                    let current = Arc::clone(&current);
                    let callback = Arc::clone(&callback);
                    V::build(
                        meter,
                        spec,
                        Box::new(move |inner| {
                            if active.load(Ordering::Acquire)
                                && crate::is_enabled()
                                && current.load(Ordering::Acquire) == generation
                            {
                                callback(&GaugeObserver { inner });
                            }
                        }),
                    )
                }
            };
            if self.is_global() {
                let gauge = crate::telemetry::global_gauges::register(current, Box::new(build));
                GaugeRegistration {
                    active,
                    _instrument: None,
                    _global: Some(gauge),
                    _marker: PhantomData,
                }
            } else {
                let bound = self.resolve();
                // A bound meter never changes: one generation, for ever.
                let instrument = build(&bound.meter, 0);
                GaugeRegistration {
                    active,
                    _instrument: Some(instrument),
                    _global: None,
                    _marker: PhantomData,
                }
            }
        }
        #[cfg(not(feature = "otel"))]
        {
            let _ = (spec, callback);
            GaugeRegistration {
                active,
                _marker: PhantomData,
            }
        }
    }
}
