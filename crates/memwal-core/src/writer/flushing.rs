//! How a MemTable-mode writer connects the MemTable set (`memtable::set`)
//! and the flush scheduler (`flush::scheduler`) to its WAL queue, counters
//! and backpressure. Both sides name what they need as a trait, so neither
//! `memtable` nor `flush` depends on the writer.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use futures::future::BoxFuture;

use super::backpressure::{wait_under_budget, Pressure};
use super::stats::WriterCounters;
use super::wal_queue::WalQueue;
use crate::error::{Error, Result};
use crate::flush::FlushHost;
use crate::memtable::set::PutLog;
use crate::memtable::MemTables;

impl PutLog for WalQueue {
    fn push(&self, batches: Vec<RecordBatch>, sizes: &[u64], urgent: bool) -> Result<Range<u64>> {
        WalQueue::push(self, batches, sizes, urgent)
    }

    fn end_entry_at(&self, end: u64) {
        self.add_barrier(end);
    }

    fn close(&self) {
        WalQueue::close(self);
    }
}

/// The writer side of the flush scheduler.
pub struct FlushLink {
    pub queue: Arc<WalQueue>,
    pub counters: Arc<WriterCounters>,
}

impl FlushHost for FlushLink {
    fn flush_now(&self) {
        self.queue.flush_now();
    }

    fn wait_durable(&self, end: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.queue.wait_durable(end))
    }

    fn entry_ending_at(&self, end: u64) -> Option<u64> {
        self.queue.entry_ending_at(end)
    }

    fn forget_entries_through(&self, end: u64) {
        self.queue.forget_entries_through(end);
    }

    fn wal_failure(&self) -> Option<Error> {
        self.queue.failure()
    }

    fn count_failure(&self, err: &Error) {
        self.counters.count_flush_failure(err);
    }

    fn count_success(&self, rows: u64, took: Duration) {
        self.counters.count_flush_success();
        WriterCounters::add(&self.counters.memtable_flush_count, 1);
        WriterCounters::add(&self.counters.memtable_flush_rows, rows);
        WriterCounters::add_time(&self.counters.memtable_flush_time_ns, took);
    }
}

/// Backpressure in MemTable mode: wait while unflushed bytes are at or
/// above the budget.
pub async fn wait_for_budget(
    tables: &MemTables,
    queue: &WalQueue,
    counters: &WriterCounters,
    log_every: Duration,
) -> Result<()> {
    let pressure = Pressure {
        budget: tables.limits().max_unflushed_bytes,
        used: &|| tables.unflushed_bytes(),
        failure: &|| tables.failure().or_else(|| queue.failure()),
        // Only the active MemTable holds the budget: flushing it is the
        // only way forward.
        nudge: &|| {
            if tables.frozen_count() == 0 {
                tables.freeze_active(queue);
            }
        },
        waiting_for: "MemTable flushes",
    };
    let mut rx = tables.subscribe();
    wait_under_budget(pressure, &mut rx, log_every, counters).await
}
