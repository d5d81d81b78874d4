//! The answer to a request sent to the writer thread, delivered only after its COMMIT.
//!
//! A `Receipt` is a plain `Future` (built on `tokio::sync::oneshot`, which needs no runtime), so
//! async code awaits it; threads without a runtime call [`Receipt::wait`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use tokio::sync::oneshot;

/// Resolves to the writer's answer once the transaction holding the request has committed.
/// If the writer goes away without answering (the outbox closed), it resolves to the
/// request type's "closed" error.
#[must_use = "the request is only known to be durable once the receipt resolves"]
pub struct Receipt<T> {
    state: State<T>,
    /// Builds the answer used when the writer dropped the request unanswered.
    closed: fn() -> T,
}

enum State<T> {
    Ready(Option<T>),
    Waiting(oneshot::Receiver<T>),
}

// The receipt never pins `T` in place (it only moves it out of an Option or a oneshot), so it
// is Unpin whatever `T` is; this lets `poll` and `wait` use `Pin::new`.
impl<T> Unpin for Receipt<T> {}

impl<T> Receipt<T> {
    pub(crate) fn waiting(rx: oneshot::Receiver<T>, closed: fn() -> T) -> Self {
        Self {
            state: State::Waiting(rx),
            closed,
        }
    }

    /// A receipt whose answer is already known (refused before reaching the writer).
    pub(crate) fn ready(value: T, closed: fn() -> T) -> Self {
        Self {
            state: State::Ready(Some(value)),
            closed,
        }
    }

    /// Blocks the current thread until the answer arrives. Meant for threads that are not
    /// running an async executor; async code should `.await` the receipt instead.
    pub fn wait(self) -> T {
        block_on(self)
    }
}

impl<T> Future for Receipt<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        match &mut this.state {
            State::Ready(value) => Poll::Ready(value.take().unwrap_or_else(this.closed)),
            State::Waiting(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(value)) => Poll::Ready(value),
                Poll::Ready(Err(_)) => Poll::Ready((this.closed)()),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T> std::fmt::Debug for Receipt<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Ready(_) => "ready",
            State::Waiting(_) => "waiting",
        };
        f.debug_struct("Receipt").field("state", &state).finish()
    }
}

/// Wakes a parked thread.
struct Unparker(Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor for one future: poll, park until woken, repeat. We use it instead of
/// `oneshot::Receiver::blocking_recv`, which panics when the calling thread happens to be
/// inside a tokio runtime.
fn block_on<F: Future + Unpin>(mut future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = Pin::new(&mut future).poll(&mut cx) {
            return value;
        }
        // Spurious wake-ups are fine: we just poll again.
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_value_sent_from_another_thread() {
        let (tx, rx) = oneshot::channel::<u32>();
        let receipt = Receipt::waiting(rx, || 0);
        let sender = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(20));
            let _ = tx.send(7);
        });
        assert_eq!(receipt.wait(), 7);
        sender.join().unwrap();
    }

    #[test]
    fn dropped_sender_resolves_to_closed_value() {
        let (tx, rx) = oneshot::channel::<u32>();
        drop(tx);
        assert_eq!(Receipt::waiting(rx, || 99).wait(), 99);
        assert_eq!(Receipt::ready(5, || 99).wait(), 5);
    }
}
