//! Stage 2 of an invocation: the route. The driver table, the fallback
//! policy (drivers in route order, the first success wins) and one driver
//! attempt, each attempt its own `agent_kernel.driver.execute` span.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use agent_kernel_otel::{AttrValue, kernel_span};

use super::Kernel;
use crate::driver::{Driver, DriverError, ExecutionContext};
use crate::error::KernelError;
// Read by the generated span code only.
#[cfg_attr(not(feature = "otel"), allow(unused_imports))]
use crate::otel::keys;
use crate::types::RawResult;

/// The registered drivers by id. Registration may happen while invocations
/// run: a route reads the table once per attempt and holds no lock across a
/// driver's `.await`.
#[derive(Default)]
pub(super) struct DriverTable {
    drivers: RwLock<HashMap<String, RegisteredDriver>>,
}

impl DriverTable {
    pub(super) fn new(drivers: Vec<Arc<dyn Driver>>) -> Self {
        let table = DriverTable::default();
        for driver in drivers {
            table.insert(driver);
        }
        table
    }

    /// Registers (or replaces) `driver` under its [`Driver::driver_id`].
    pub(super) fn insert(&self, driver: Arc<dyn Driver>) {
        let id = driver.driver_id().to_owned();
        self.drivers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, RegisteredDriver::new(driver));
    }

    fn get(&self, driver_id: &str) -> Option<RegisteredDriver> {
        self.drivers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(driver_id)
            .cloned()
    }

    /// The registered ids (unordered).
    pub(super) fn ids(&self) -> Vec<String> {
        self.drivers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

/// A registered driver and its id as a shared string, which telemetry records
/// on every attempt without copying it.
#[derive(Clone)]
pub(super) struct RegisteredDriver {
    pub(super) driver: Arc<dyn Driver>,
    pub(super) label: AttrValue<'static>,
}

impl RegisteredDriver {
    fn new(driver: Arc<dyn Driver>) -> Self {
        let label = AttrValue::Shared(Arc::from(driver.driver_id()));
        RegisteredDriver { driver, label }
    }
}

/// What a route produced: the tool's raw result and the driver that served it.
pub(super) struct Served {
    pub(super) raw: RawResult,
    pub(super) driver: RegisteredDriver,
    /// Attempts before the one that served.
    pub(super) fallbacks: u64,
}

/// Every driver on the route failed (or none is registered): the error for
/// the caller, and the last driver tried, for the audit record.
pub(super) struct RouteFailure {
    pub(super) error: KernelError,
    pub(super) last_driver: String,
    /// Attempts after the first.
    pub(super) fallbacks: u64,
}

impl Kernel {
    /// The fallback policy, in one place: the route's drivers in order, an
    /// unregistered id skipped, the first success served. When every attempt
    /// fails, the error carries the last driver's message after redaction
    /// (drivers often quote their input or the tool's response).
    pub(super) async fn execute_route(
        &self,
        ctx: &ExecutionContext<'_>,
    ) -> Result<Served, RouteFailure> {
        let route = self.router.route(ctx.capability_id);
        let mut last_error: Option<DriverError> = None;
        let mut attempt: u32 = 0;
        for driver_id in route.iter() {
            let Some(driver) = self.drivers.get(driver_id) else {
                continue;
            };
            attempt += 1;
            match self.execute_attempt(&driver, ctx, attempt).await {
                Ok(raw) => {
                    return Ok(Served {
                        raw,
                        driver,
                        fallbacks: u64::from(attempt - 1),
                    });
                }
                Err(err) => {
                    log::warn!(
                        "driver_failure action_id={} capability_id={} driver_id={driver_id} attempt={attempt}",
                        ctx.action_id,
                        ctx.capability_id
                    );
                    last_error = Some(err);
                }
            }
        }
        let (message, status, last_driver) = match last_error {
            Some(e) => (
                self.firewall
                    .redactor()
                    .redact_str(&e.to_string())
                    .into_owned(),
                e.status,
                e.driver_id,
            ),
            None => (
                format!("no registered driver on route [{}]", route.join(", ")),
                None,
                String::new(),
            ),
        };
        Err(RouteFailure {
            error: KernelError::DriverError {
                capability_id: ctx.capability_id.to_owned(),
                last_error: message,
                status,
            },
            last_driver,
            fallbacks: u64::from(attempt.saturating_sub(1)),
        })
    }

    /// One driver attempt (`attempt` counts from 1 along the route). A
    /// driver that calls out of the process ([`Driver::is_remote`]) gets a
    /// CLIENT span, so that the callee's SERVER span pairs with it.
    #[kernel_span(
        name = keys::SPAN_DRIVER_EXECUTE,
        kind = crate::otel::driver_span_kind(driver.driver.as_ref()),
        attrs(
            keys::DRIVER_ID = driver.label,
            keys::ATTEMPT = attempt,
            keys::FALLBACK = (attempt > 1).then_some(true),
        ),
    )]
    // `attempt` is only read by the generated span code.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    async fn execute_attempt(
        &self,
        driver: &RegisteredDriver,
        ctx: &ExecutionContext<'_>,
        attempt: u32,
    ) -> Result<RawResult, DriverError> {
        log::debug!(
            "driver_attempt action_id={} driver_id={} attempt={attempt}",
            ctx.action_id,
            driver.driver.driver_id()
        );
        driver.driver.execute(ctx).await
    }
}
