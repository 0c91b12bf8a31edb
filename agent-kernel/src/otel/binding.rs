//! Which telemetry binding a kernel reports to: [`instrument_kernel`],
//! [`instrument_kernel_with`] and the hook they return.

use std::sync::{Arc, PoisonError, RwLock, Weak};

use agent_kernel_otel::{GaugeRegistration, GaugeSpec, Telemetry};

use super::keys;
use crate::kernel::Kernel;

/// The connection between one [`Kernel`] and its telemetry, returned by
/// [`instrument_kernel`]. Dropping it (or calling [`unhook`](Self::unhook))
/// stops the budget gauge and returns the kernel to the default binding (the
/// OpenTelemetry globals). Clones of one hook share it: the gauge stops when
/// the last one goes.
#[derive(Debug, Clone)]
#[must_use = "dropping the Instrumentation unhooks the kernel at once"]
pub struct Instrumentation {
    hook: Arc<Hook>,
}

impl Instrumentation {
    /// Unhooks now (the same as dropping this handle and every clone of it).
    pub fn unhook(self) {}

    /// The binding the kernel reports to while this hook is alive.
    pub fn telemetry(&self) -> &Telemetry {
        &self.hook.telemetry
    }
}

/// What an [`Instrumentation`] holds; the kernel keeps a weak reference to it
/// so that instrumenting twice with the same binding returns the same hook.
#[derive(Debug)]
pub(crate) struct Hook {
    telemetry: Telemetry,
    _gauge: GaugeRegistration,
    binding: Arc<TelemetrySlot>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.binding.reset_if(&self.telemetry);
    }
}

/// Connects `kernel` to the OpenTelemetry global providers and turns the
/// run-time switch on: from now on its spans and metrics go wherever the
/// application installed its providers (also providers installed later: the
/// globals are read lazily). Registers the `agent_kernel.budget_consumed`
/// gauge over the kernel's live sessions.
///
/// Idempotent: while a hook with the same binding is alive, calling it again
/// returns that hook. Without the `otel` feature it does nothing.
///
/// ```
/// # use agent_kernel::{CapabilityRegistry, Kernel};
/// let kernel = Kernel::builder(CapabilityRegistry::new()).secret("doc-secret-0123456789abcdef").build()?;
/// let hook = agent_kernel::otel::instrument_kernel(&kernel);
/// // ... invoke ...
/// drop(hook); // unhooked: the gauge stops
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
pub fn instrument_kernel(kernel: &Kernel) -> Instrumentation {
    instrument_kernel_with(kernel, Telemetry::global())
}

/// Like [`instrument_kernel`], with an explicit binding: with the `otel`
/// feature, `Telemetry::new(&tracer_provider, &meter_provider)` reports to
/// those providers only, so two kernels in one process (or two tests) never
/// share or fight over the globals.
pub fn instrument_kernel_with(kernel: &Kernel, telemetry: Telemetry) -> Instrumentation {
    let slot = kernel.telemetry_slot();
    if let Some(hook) = slot.live_hook(&telemetry) {
        return Instrumentation { hook };
    }
    agent_kernel_otel::enable();
    let budget = kernel.budget().clone();
    let caller_ids = kernel.caller_ids().clone();
    let gauge = telemetry.register_gauge::<u64, _>(
        GaugeSpec::new(keys::METRIC_BUDGET_CONSUMED)
            .with_unit("{token}")
            .with_description("Session budget consumed so far, in tokens, per live session"),
        move |observer| {
            // A series per session: with session ids omitted there is no
            // label to tell them apart, so nothing is reported.
            for session in budget.sessions() {
                if let Some(label) = caller_ids.render(&session.session_id) {
                    observer.observe(session.used, &[(keys::LABEL_SESSION_ID, &*label)]);
                }
            }
        },
    );
    let hook = Arc::new(Hook {
        telemetry: telemetry.clone(),
        _gauge: gauge,
        binding: Arc::clone(slot),
    });
    slot.bind(telemetry, &hook);
    Instrumentation { hook }
}

/// Which binding a kernel reports to, and the hook that set it. The kernel
/// reads it once per root span, and only while telemetry is enabled.
#[derive(Debug, Default)]
pub(crate) struct TelemetrySlot {
    state: RwLock<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    telemetry: Telemetry,
    hook: Weak<Hook>,
}

impl TelemetrySlot {
    /// The binding root spans of this kernel use.
    pub(crate) fn current(&self) -> Telemetry {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .telemetry
            .clone()
    }

    fn live_hook(&self, telemetry: &Telemetry) -> Option<Arc<Hook>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .hook
            .upgrade()
            .filter(|hook| hook.telemetry.same_binding(telemetry))
    }

    fn bind(&self, telemetry: Telemetry, hook: &Arc<Hook>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.telemetry = telemetry;
        state.hook = Arc::downgrade(hook);
    }

    /// Back to the default binding, unless another hook has rebound the kernel since.
    fn reset_if(&self, telemetry: &Telemetry) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.telemetry.same_binding(telemetry) {
            state.telemetry = Telemetry::global();
            state.hook = Weak::new();
        }
    }
}
