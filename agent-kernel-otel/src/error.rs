//! How an error returned from a `#[kernel_span]` function shows on its span.

use std::borrow::Cow;

/// Implemented by error types that know how they should appear in telemetry.
///
/// When a `#[kernel_span]` function returns `Err(e)`, the span gets status
/// ERROR with [`redacted_message`](SpanError::redacted_message) as its
/// description, the attribute `error.type` = [`error_type`](SpanError::error_type),
/// and an `exception` event carrying both; its metrics get `status = "denied"`
/// when [`is_denial`](SpanError::is_denial) says so, `"error"` otherwise.
///
/// Error types that do not implement the trait still work: `error.type` is then
/// their Rust type name (`core::any::type_name`) and the description is that
/// same name. Their `Display` text is never recorded, because it may carry
/// argument values, tool output or secrets.
///
/// ```
/// use std::borrow::Cow;
/// use agent_kernel_otel::SpanError;
///
/// enum KernelError { Denied { reason: &'static str }, Driver(String) }
///
/// impl SpanError for KernelError {
///     fn error_type(&self) -> &'static str {
///         match self {
///             KernelError::Denied { .. } => "policy_denied",
///             KernelError::Driver(_) => "driver_error",
///         }
///     }
///     fn is_denial(&self) -> bool {
///         matches!(self, KernelError::Denied { .. })
///     }
///     fn redacted_message(&self) -> Cow<'_, str> {
///         match self {
///             KernelError::Denied { reason } => Cow::Owned(format!("denied: {reason}")),
///             KernelError::Driver(_) => Cow::Borrowed("driver failed"),
///         }
///     }
/// }
/// ```
pub trait SpanError {
    /// A stable, low-cardinality name for this kind of error (`error.type`).
    fn error_type(&self) -> &'static str;

    /// Whether this error is a refusal (a policy denial) rather than a failure.
    fn is_denial(&self) -> bool {
        false
    }

    /// The span-status description: must not contain argument values, tool
    /// output, tokens or secrets. Defaults to [`error_type`](SpanError::error_type).
    fn redacted_message(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.error_type())
    }
}

impl<T: SpanError + ?Sized> SpanError for &T {
    fn error_type(&self) -> &'static str {
        (**self).error_type()
    }
    fn is_denial(&self) -> bool {
        (**self).is_denial()
    }
    fn redacted_message(&self) -> Cow<'_, str> {
        (**self).redacted_message()
    }
}

impl<T: SpanError + ?Sized> SpanError for Box<T> {
    fn error_type(&self) -> &'static str {
        (**self).error_type()
    }
    fn is_denial(&self) -> bool {
        (**self).is_denial()
    }
    fn redacted_message(&self) -> Cow<'_, str> {
        (**self).redacted_message()
    }
}

impl SpanError for std::io::Error {
    fn error_type(&self) -> &'static str {
        io_kind_name(self.kind())
    }
}

/// Stable snake_case names for the common `io::ErrorKind`s (the `Debug` form
/// is not promised to be stable).
fn io_kind_name(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind as K;
    match kind {
        K::NotFound => "not_found",
        K::PermissionDenied => "permission_denied",
        K::ConnectionRefused => "connection_refused",
        K::ConnectionReset => "connection_reset",
        K::ConnectionAborted => "connection_aborted",
        K::NotConnected => "not_connected",
        K::AddrInUse => "addr_in_use",
        K::AddrNotAvailable => "addr_not_available",
        K::BrokenPipe => "broken_pipe",
        K::AlreadyExists => "already_exists",
        K::WouldBlock => "would_block",
        K::InvalidInput => "invalid_input",
        K::InvalidData => "invalid_data",
        K::TimedOut => "timed_out",
        K::WriteZero => "write_zero",
        K::Interrupted => "interrupted",
        K::Unsupported => "unsupported",
        K::UnexpectedEof => "unexpected_eof",
        K::OutOfMemory => "out_of_memory",
        _ => "io_error",
    }
}
