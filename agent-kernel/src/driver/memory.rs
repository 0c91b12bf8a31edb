//! A driver backed by in-process handler functions, for tests, demos and local tools.

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::{Driver, DriverError, ExecutionContext};
use crate::types::RawResult;

type Handler = dyn Fn(&ExecutionContext<'_>) -> Result<Arc<Value>, String> + Send + Sync;

/// Runs registered handler functions, one per operation name.
///
/// The operation is the one the kernel binds to the invoked capability
/// ([`ExecutionContext::operation`]: the capability's implementation
/// reference, else its id); arguments never select a handler. A missing
/// handler, a handler error or a handler panic is a [`DriverError`]. Handlers
/// may return an `Arc<Value>` to share one dataset across calls without copying.
///
/// ```
/// use std::sync::Arc;
/// use agent_kernel::InMemoryDriver;
/// use serde_json::json;
/// let rows = Arc::new(json!([{"id": 1}, {"id": 2}]));
/// let mut d = InMemoryDriver::new("memory");
/// d.register_handler("list", move |_ctx| Ok::<_, String>(Arc::clone(&rows)));
/// d.register_handler("fail", |_ctx| Err::<serde_json::Value, _>("backend down"));
/// ```
#[derive(Clone)]
pub struct InMemoryDriver {
    driver_id: String,
    handlers: HashMap<String, Arc<Handler>>,
}

impl fmt::Debug for InMemoryDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ops: Vec<&String> = self.handlers.keys().collect();
        ops.sort_unstable();
        f.debug_struct("InMemoryDriver")
            .field("driver_id", &self.driver_id)
            .field("operations", &ops)
            .finish()
    }
}

impl InMemoryDriver {
    /// A driver with no handlers.
    pub fn new(driver_id: impl Into<String>) -> Self {
        Self {
            driver_id: driver_id.into(),
            handlers: HashMap::new(),
        }
    }

    /// Registers (or replaces) the handler for `operation`.
    pub fn register_handler<F, T, E>(&mut self, operation: impl Into<String>, handler: F)
    where
        F: Fn(&ExecutionContext<'_>) -> Result<T, E> + Send + Sync + 'static,
        T: Into<Arc<Value>>,
        E: fmt::Display,
    {
        let wrapped = move |ctx: &ExecutionContext<'_>| {
            handler(ctx).map(Into::into).map_err(|e| e.to_string())
        };
        self.handlers.insert(operation.into(), Arc::new(wrapped));
    }

    /// Builder form of [`register_handler`](Self::register_handler).
    #[must_use]
    pub fn with_handler<F, T, E>(mut self, operation: impl Into<String>, handler: F) -> Self
    where
        F: Fn(&ExecutionContext<'_>) -> Result<T, E> + Send + Sync + 'static,
        T: Into<Arc<Value>>,
        E: fmt::Display,
    {
        self.register_handler(operation, handler);
        self
    }

    /// The registered operation names.
    pub fn operations(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}

#[async_trait]
impl Driver for InMemoryDriver {
    fn driver_id(&self) -> &str {
        &self.driver_id
    }

    async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        let operation = ctx.operation();
        let handler = self.handlers.get(operation).ok_or_else(|| {
            DriverError::new(
                &self.driver_id,
                format!(
                    "no handler for operation '{operation}'; register one with register_handler()"
                ),
            )
        })?;
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(ctx)));
        match outcome {
            Ok(Ok(data)) => Ok(RawResult::new(ctx.capability_id, data)),
            Ok(Err(message)) => Err(DriverError::new(
                &self.driver_id,
                format!("handler for operation '{operation}' failed: {message}"),
            )),
            Err(_) => Err(DriverError::new(
                &self.driver_id,
                format!("handler for operation '{operation}' panicked"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Args, Constraints};
    use serde_json::json;

    fn ctx<'a>(
        operation: &'a str,
        args: &'a Args,
        constraints: &'a Constraints,
    ) -> ExecutionContext<'a> {
        ExecutionContext {
            capability_id: "cap.x",
            principal_id: "u1",
            args,
            constraints,
            action_id: "a1",
            operation,
        }
    }

    #[tokio::test]
    async fn dispatches_on_the_bound_operation_never_on_an_argument() {
        let shared = Arc::new(json!([1, 2, 3]));
        let s2 = Arc::clone(&shared);
        let d = InMemoryDriver::new("mem")
            .with_handler("list", move |_c| Ok::<_, String>(Arc::clone(&s2)))
            .with_handler("cap.x", |c| {
                Ok::<_, String>(json!({ "principal": c.principal_id }))
            });
        let c = Constraints::default();
        let empty = Args::new();
        let r = d.execute(&ctx("list", &empty, &c)).await.unwrap();
        assert!(
            Arc::ptr_eq(&r.data, &shared),
            "data must be shared, not copied"
        );
        assert_eq!(r.capability_id, "cap.x");
        // An `operation` argument is data: the bound operation runs.
        let args: Args = json!({"operation": "list"}).as_object().cloned().unwrap();
        let r = d.execute(&ctx("cap.x", &args, &c)).await.unwrap();
        assert_eq!(*r.data, json!({"principal": "u1"}));
    }

    #[tokio::test]
    async fn missing_failing_and_panicking_handlers_are_driver_errors() {
        let d = InMemoryDriver::new("mem")
            .with_handler("fail", |_c| Err::<Value, _>("boom"))
            .with_handler("panic", |_c| -> Result<Value, String> { panic!("kaput") });
        let c = Constraints::default();
        let args = Args::new();
        for (op, needle) in [
            ("nope", "no handler for operation 'nope'"),
            ("fail", "boom"),
            ("panic", "panicked"),
        ] {
            let err = d.execute(&ctx(op, &args, &c)).await.unwrap_err();
            assert_eq!(err.driver_id, "mem");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
