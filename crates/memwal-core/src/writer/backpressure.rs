//! The waiting loop behind backpressure in both modes: wait (never fail on
//! pressure alone) until usage drops under the budget, nudging progress and
//! logging a warning every interval while it lasts.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::stats::WriterCounters;
use crate::error::{Error, Result};

/// What one mode measures and does while a put waits.
pub struct Pressure<'a> {
    pub budget: u64,
    /// Bytes currently held against the budget.
    pub used: &'a (dyn Fn() -> u64 + Sync),
    /// An error that makes waiting pointless (a poisoned or stopped writer).
    pub failure: &'a (dyn Fn() -> Option<Error> + Sync),
    /// Make progress more likely: ask for an append, freeze a MemTable.
    pub nudge: &'a (dyn Fn() + Sync),
    /// What the put waits for, for the log line.
    pub waiting_for: &'static str,
}

/// Wait until `pressure.used() < pressure.budget`, waking on `progress`.
pub async fn wait_under_budget<T>(
    pressure: Pressure<'_>,
    progress: &mut watch::Receiver<T>,
    log_every: Duration,
    counters: &WriterCounters,
) -> Result<()> {
    if (pressure.used)() < pressure.budget {
        return Ok(());
    }
    let started = Instant::now();
    WriterCounters::add(&counters.backpressure_count, 1);
    loop {
        if let Some(err) = (pressure.failure)() {
            return Err(err);
        }
        if (pressure.used)() < pressure.budget {
            break;
        }
        (pressure.nudge)();
        match tokio::time::timeout(log_every, progress.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Error::internal("A background task ended unexpectedly")),
            Err(_) => tracing::warn!(
                waited_ms = started.elapsed().as_millis() as u64,
                used_bytes = (pressure.used)(),
                budget = pressure.budget,
                "put is waiting for {} (backpressure)",
                pressure.waiting_for
            ),
        }
    }
    WriterCounters::add_time(&counters.backpressure_wait_ns, started.elapsed());
    Ok(())
}
