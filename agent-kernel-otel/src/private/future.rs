//! The future wrapper for async bodies.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::ActiveSpan;

pin_project_lite::pin_project! {
    /// An async body with its span: the span's context is attached to the
    /// thread during each poll (never held across an `.await`), the span ends
    /// when the body completes, and dropping the future early ends it as
    /// cancelled. A panic inside a poll ends it as a panic and keeps unwinding.
    pub struct Instrumented<F, C> {
        #[pin]
        fut: F,
        span: Option<ActiveSpan>,
        finish: Option<C>,
    }
}

/// Wraps `fut`; with `span == None` (telemetry disabled) it only forwards polls.
/// `finish` ends the span from the output (its outcome, and the attributes
/// computed from the return value).
#[inline]
pub fn instrument<F, C>(span: Option<ActiveSpan>, fut: F, finish: C) -> Instrumented<F, C>
where
    F: Future,
    C: FnOnce(&F::Output, ActiveSpan),
{
    Instrumented {
        fut,
        span,
        finish: Some(finish),
    }
}

/// Ends the span as a panic if dropped while the thread is panicking.
struct EndOnPanic<'a>(&'a mut Option<ActiveSpan>);

impl Drop for EndOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(span) = self.0.take() {
                span.end_panicked();
            }
        }
    }
}

impl<F, C> Future for Instrumented<F, C>
where
    F: Future,
    C: FnOnce(&F::Output, ActiveSpan),
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.span.is_none() {
            return this.fut.poll(cx);
        }
        let fut = this.fut;
        let poll = {
            // Declared before the context guard inside `in_scope`, so on a
            // panic the context is restored first and then the span ends.
            let on_panic = EndOnPanic(&mut *this.span);
            match on_panic.0.as_ref() {
                Some(span) => span.in_scope(|| fut.poll(cx)),
                None => fut.poll(cx),
            }
        };
        if let Poll::Ready(out) = &poll {
            if let (Some(span), Some(finish)) = (this.span.take(), this.finish.take()) {
                finish(out, span);
            }
        }
        poll
    }
}
