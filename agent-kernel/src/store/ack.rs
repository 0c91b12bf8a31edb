//! The acknowledgement of one appended audit record: resolved by the store's
//! writer once the record is durable (or could not be made so), awaited by an
//! async caller or waited for by a blocking one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::Result;

/// Resolves to `Ok(())` once the appended record is durable, or to the
/// [`KernelError::StoreUnavailable`](crate::KernelError::StoreUnavailable) that kept it from being so (see
/// [`AuditLog::append`](super::AuditLog::append)). Dropping it does not
/// withdraw the record.
#[must_use = "an acknowledgement says whether the record is durable"]
pub struct AuditAck {
    state: AckState,
}

enum AckState {
    Ready(Option<Result<()>>),
    Waiting(Arc<AckCell>),
}

/// The shared state of a pending acknowledgement.
#[derive(Default)]
struct AckCell {
    inner: Mutex<CellInner>,
    done: Condvar,
}

#[derive(Default)]
struct CellInner {
    result: Option<Result<()>>,
    waker: Option<Waker>,
}

/// The store's side of a pending [`AuditAck`]: resolved by the store's writer
/// once the record is durable (or cannot be made so). Dropping it unresolved
/// resolves the acknowledgement with a `not_acknowledged` error, so a waiter
/// never waits forever.
pub struct AckResolver {
    cell: Arc<AckCell>,
}

impl AckResolver {
    /// Resolves the acknowledgement (the first call wins).
    pub fn resolve(&self, result: Result<()>) {
        let waker = {
            let mut inner = self
                .cell
                .inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if inner.result.is_some() {
                return;
            }
            inner.result = Some(result);
            inner.waker.take()
        };
        self.cell.done.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl AuditAck {
    /// An acknowledgement that is already settled.
    pub fn ready(result: Result<()>) -> Self {
        Self {
            state: AckState::Ready(Some(result)),
        }
    }

    /// A pending acknowledgement and its resolver, for a store whose writes
    /// complete later (an [`AuditLog`](super::AuditLog) implementation hands
    /// the acknowledgement to the caller and keeps the resolver).
    pub fn pending() -> (Self, AckResolver) {
        let cell = Arc::new(AckCell::default());
        (
            Self {
                state: AckState::Waiting(Arc::clone(&cell)),
            },
            AckResolver { cell },
        )
    }

    /// Blocks the calling thread until the record is durable (for callers
    /// outside an async runtime).
    pub fn wait_blocking(self) -> Result<()> {
        match self.state {
            AckState::Ready(result) => result.unwrap_or(Ok(())),
            AckState::Waiting(cell) => {
                let mut inner = cell.inner.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(result) = inner.result.take() {
                        return result;
                    }
                    inner = cell
                        .done
                        .wait(inner)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

impl Future for AuditAck {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        match &mut this.state {
            AckState::Ready(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            AckState::Waiting(cell) => {
                let mut inner = cell.inner.lock().unwrap_or_else(PoisonError::into_inner);
                match inner.result.take() {
                    Some(result) => {
                        // Polled again after completion: settled, say so.
                        inner.result = Some(result.clone());
                        Poll::Ready(result)
                    }
                    None => {
                        inner.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            }
        }
    }
}

impl Drop for AckResolver {
    fn drop(&mut self) {
        self.resolve(Err(crate::error::KernelError::StoreUnavailable {
            store: "audit log",
            path: String::new(),
            fault: crate::error::StoreFault::NotAcknowledged,
            message: "the store dropped the record's acknowledgement unresolved".to_owned(),
        }));
    }
}

impl fmt::Debug for AckResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckResolver").finish_non_exhaustive()
    }
}

impl fmt::Debug for AuditAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settled = match &self.state {
            AckState::Ready(_) => true,
            AckState::Waiting(cell) => cell
                .inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .result
                .is_some(),
        };
        f.debug_struct("AuditAck")
            .field("settled", &settled)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_once_for_blocking_and_async_waiters() {
        let (ack, cell) = AuditAck::pending();
        let writer = std::thread::spawn(move || {
            cell.resolve(Ok(()));
            cell.resolve(Err(crate::KernelError::invalid_argument("late")));
        });
        assert_eq!(ack.wait_blocking(), Ok(()));
        writer.join().unwrap();

        let (ack, cell) = AuditAck::pending();
        cell.resolve(Err(crate::KernelError::StoreUnavailable {
            store: "audit log",
            path: "/db".into(),
            fault: crate::StoreFault::NotAcknowledged,
            message: "writer stopped".into(),
        }));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt.block_on(ack).unwrap_err();
        assert_eq!(err.kind(), "store_unavailable");
        assert!(err.to_string().contains("/db"));
        assert_eq!(rt.block_on(AuditAck::ready(Ok(()))), Ok(()));

        // A resolver dropped unresolved does not leave its waiter hanging.
        let (ack, cell) = AuditAck::pending();
        drop(cell);
        assert_eq!(
            ack.wait_blocking().unwrap_err().store_fault(),
            Some(crate::StoreFault::NotAcknowledged)
        );
    }
}
