//! Stop signals, handled on a thread of their own so they work however busy or stuck the async runtime is
//! (a task blocked in a Kafka call with the broker gone holds a runtime thread for good).
//!
//! The first SIGINT or SIGTERM asks for a graceful stop (tasks stop, commit what they can, the worker
//! returns from `standalone::run`). If that has not finished within `worker.shutdown.timeout.ms`, or a
//! second signal arrives, the process exits at once with a log line saying so: records whose offsets were
//! not committed are delivered again after a restart (standalone source offsets are on disk up to their
//! last flush).

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::time::Duration;
use tokio::sync::oneshot;

/// Exit code when the bound or a second signal cut the stop short.
pub const CUT_SHORT_EXIT_CODE: i32 = 2;

/// Install the handlers; the receiver completes at the first stop signal.
pub fn install(bound: Duration) -> std::io::Result<oneshot::Receiver<()>> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let (requested, first) = oneshot::channel();
    std::thread::Builder::new().name("stop-signals".into()).spawn(move || {
        let Some(signal) = signals.forever().next() else { return };
        tracing::info!(signal, bound_ms = bound.as_millis() as u64, "stop signal: stopping tasks and committing offsets");
        let _ = requested.send(());
        // From here the stop is bounded: a second signal or the bound ends the process.
        let (cut, cut_short) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("stop-signals-2".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    let _ = cut.send(format!("a second stop signal ({signal})"));
                }
            })
            .ok();
        let reason = cut_short
            .recv_timeout(bound)
            .unwrap_or_else(|_| format!("worker.shutdown.timeout.ms={} ms passed", bound.as_millis()));
        tracing::error!(
            "exiting before the stop finished ({reason}): tasks still stopping are abandoned; records whose offsets were not committed will be delivered again"
        );
        eprintln!("connect: exiting before the stop finished ({reason})");
        std::process::exit(CUT_SHORT_EXIT_CODE);
    })?;
    Ok(first)
}
