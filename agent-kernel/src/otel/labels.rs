//! What the kernel's spans and metric labels record for a capability, a
//! policy decision and an audit record's correlation.

use std::sync::Arc;

use agent_kernel_otel::{AttrValue, ToAttrValue};

use super::keys;
use crate::error::{DenialCategory, KernelError};
use crate::registry::Resolved;
use crate::types::{ResponseMode, SafetyClass, SensitivityTag};

// The closed enums the kernel records are `&'static str` labels: recorded
// without a copy (a plain `as_str()` expression would be copied, since the
// macro cannot see that the borrow is `'static`).
macro_rules! static_attr_value {
    ($($t:ty),*) => {$(
        impl ToAttrValue for $t {
            fn to_attr_value(&self) -> Option<AttrValue<'_>> {
                Some(AttrValue::Static(self.as_str()))
            }
        }
    )*};
}
static_attr_value!(ResponseMode, SafetyClass, SensitivityTag, DenialCategory);

/// The bounded label values telemetry records for one capability: its id
/// (shared with the registry, not copied) or `_OTHER` when it is not
/// registered, its safety class and its sensitivity.
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
impl<'a> Resolved<'a> {
    /// `agent_kernel.capability_id` (and `gen_ai.tool.name`).
    pub(crate) fn capability_id_attr(self) -> AttrValue<'static> {
        match self.label() {
            Some(label) => AttrValue::Shared(Arc::clone(label)),
            None => AttrValue::Static(keys::OTHER),
        }
    }

    /// `agent_kernel.safety_class`.
    pub(crate) fn safety_class_attr(self) -> AttrValue<'static> {
        AttrValue::Static(
            self.capability()
                .map_or(keys::OTHER, |c| c.safety_class.as_str()),
        )
    }

    /// `gen_ai.tool.description` and OpenInference `tool.description`: the
    /// registered description (none for an unregistered id).
    pub(crate) fn description_attr(self) -> Option<AttrValue<'a>> {
        self.capability()
            .map(|c| AttrValue::Borrowed(c.description.as_str()))
    }

    /// `agent_kernel.sensitivity`.
    pub(crate) fn sensitivity_attr(self) -> AttrValue<'static> {
        AttrValue::Static(
            self.capability()
                .map_or(keys::OTHER, |c| c.sensitivity.as_str()),
        )
    }
}

/// `gen_ai.tool.type`: `function` for a driver in the process, `extension`
/// for one that calls out of it (an HTTP or MCP tool).
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) fn tool_type(driver: &dyn crate::driver::Driver) -> &'static str {
    if driver.is_remote() {
        "extension"
    } else {
        "function"
    }
}

/// The kind of a driver attempt's span: CLIENT for a driver that calls out
/// of the process, so that the callee's SERVER span pairs with it.
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) fn driver_span_kind(driver: &dyn crate::driver::Driver) -> agent_kernel_otel::SpanKind {
    if driver.is_remote() {
        agent_kernel_otel::SpanKind::Client
    } else {
        agent_kernel_otel::SpanKind::Internal
    }
}

/// `decision` of an `agent_kernel.policy.evaluate` span, from its result.
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) fn decision_label<T>(outcome: &Result<T, KernelError>) -> AttrValue<'static> {
    AttrValue::Static(if outcome.is_ok() { "allow" } else { "deny" })
}

/// `reason_category` of an `agent_kernel.policy.evaluate` span: the denial
/// category of a denied evaluation (token errors have none).
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) fn reason_category_label<T>(outcome: &Result<T, KernelError>) -> Option<DenialCategory> {
    outcome
        .as_ref()
        .err()
        .and_then(KernelError::denial_category)
}

/// The W3C trace and span ids of the span current on this thread, for an
/// audit record (none while telemetry is off, or outside any span).
pub(crate) fn current_span_ids() -> (Option<String>, Option<String>) {
    if agent_kernel_otel::is_enabled() {
        agent_kernel_otel::current_trace_ids().unzip()
    } else {
        (None, None)
    }
}
