//! The PAUSED wait both task loops share: no fetching or polling, but the loop keeps doing its side work
//! (acknowledgements, offset commits) until the connector resumes or the task is stopped.
//!
//! The answer says which of the three happened, so a loop can never mistake a stop for a resume and go
//! round again without awaiting anything (the spin that issue #13 found: a cancelled token is always
//! ready, so a loop that `continue`d after a stop never yielded).

use futures::FutureExt;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why [`PauseGate::wait`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum PauseEvent<T> {
    /// The connector runs again.
    Resumed,
    /// The task is being stopped: the loop must return.
    Stopped,
    /// `flush_interval` passed: time to commit offsets.
    FlushDue,
    /// The loop's own work finished (e.g. an acknowledgement arrived).
    Work(T),
}

/// Watches a connector's paused flag and its task's cancellation.
pub struct PauseGate {
    paused: watch::Receiver<bool>,
    cancel: CancellationToken,
    flush_interval: Duration,
    /// When the next `FlushDue` is due, however much other work arrives meanwhile.
    next_flush: Instant,
}

impl PauseGate {
    pub fn new(paused: watch::Receiver<bool>, cancel: CancellationToken, flush_interval: Duration) -> Self {
        PauseGate { paused, cancel, flush_interval, next_flush: Instant::now() + flush_interval }
    }

    /// Whether the connector is paused now.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Wait while paused for the next event. `work` is the loop's own work (`None` means it has none,
    /// which disables that branch).
    pub async fn wait<T>(&mut self, work: impl Future<Output = Option<T>>) -> PauseEvent<T> {
        if self.cancel.is_cancelled() {
            return PauseEvent::Stopped;
        }
        if !self.is_paused() {
            return PauseEvent::Resumed;
        }
        // Fused: a finished `work` stays pending while the loop below goes round again.
        let work = work.fuse();
        tokio::pin!(work);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return PauseEvent::Stopped,
                changed = self.paused.changed() => {
                    // The sender gone means the connector is gone: the task is being stopped.
                    if changed.is_err() {
                        return PauseEvent::Stopped;
                    }
                    if !*self.paused.borrow_and_update() {
                        return PauseEvent::Resumed;
                    }
                    // paused again (a repeated pause): keep waiting
                }
                Some(done) = &mut work => return PauseEvent::Work(done),
                _ = tokio::time::sleep_until(self.next_flush) => {
                    self.next_flush = Instant::now() + self.flush_interval;
                    return PauseEvent::FlushDue;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stop_while_paused_is_reported_every_time() {
        let (tx, rx) = watch::channel(true);
        let cancel = CancellationToken::new();
        let mut gate = PauseGate::new(rx, cancel.clone(), Duration::from_secs(60));
        assert_eq!(gate.wait(std::future::ready(Some(7))).await, PauseEvent::Work(7));
        assert_eq!(gate.wait(std::future::ready(None::<()>)).await, PauseEvent::FlushDue);
        cancel.cancel();
        // A loop that asks again after a stop hears "stopped" again, never "resumed".
        assert_eq!(gate.wait(std::future::pending::<Option<()>>()).await, PauseEvent::Stopped);
        assert_eq!(gate.wait(std::future::pending::<Option<()>>()).await, PauseEvent::Stopped);
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn resume_and_a_dropped_sender() {
        let (tx, rx) = watch::channel(true);
        let mut gate = PauseGate::new(rx, CancellationToken::new(), Duration::from_secs(60));
        tx.send_replace(false);
        assert_eq!(gate.wait(std::future::pending::<Option<()>>()).await, PauseEvent::Resumed);
        tx.send_replace(true);
        drop(tx);
        assert_eq!(gate.wait(std::future::pending::<Option<()>>()).await, PauseEvent::Stopped);
    }
}
