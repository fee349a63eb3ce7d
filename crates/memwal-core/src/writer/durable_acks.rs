//! Durable puts whose acknowledgement is delivered by the WAL task itself.
//!
//! `ShardWriter::try_put_now` (and, after a backpressure wait,
//! `ShardWriter::put_admitted`) queues a durable put and returns at once;
//! the caller learns that the put is durable from the listener given to
//! `ShardWriter::on_durable`, which the WAL task calls after every entry it
//! persists. One call covers every put in the entry, where an awaited `put`
//! costs each put its own task and wake-up; for the Node binding it is the
//! only way a durable put is acknowledged. The writer's put counters are
//! kept here for those puts, so `stats()` counts them when they are
//! acknowledged, with their full latency.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::stats::WriterCounters;
use super::wal_queue::Progress;
use crate::error::Error;

/// What a durable-put listener is told.
#[derive(Debug, Clone)]
pub struct DurableProgress {
    /// Batch positions `[0, durable)` are persisted in the WAL.
    pub durable: u64,
    /// The error that poisoned the writer: queued puts not yet durable
    /// failed with it.
    pub failure: Option<Error>,
    /// The WAL task has stopped (closed, poisoned or dropped): nothing
    /// beyond `durable` will become durable.
    pub stopped: bool,
}

pub type DurableListener = Arc<dyn Fn(&DurableProgress) + Send + Sync>;

/// A queued durable put, counted once it is durable.
struct Waiting {
    end: u64,
    rows: u64,
    started: Instant,
}

pub(crate) struct DurableAcks {
    shard: uuid::Uuid,
    counters: Arc<WriterCounters>,
    waiting: Mutex<VecDeque<Waiting>>,
    listener: Mutex<Option<DurableListener>>,
}

impl DurableAcks {
    pub fn new(shard: uuid::Uuid, counters: Arc<WriterCounters>) -> Self {
        Self {
            shard,
            counters,
            waiting: Mutex::new(VecDeque::new()),
            listener: Mutex::new(None),
        }
    }

    fn waiting(&self) -> MutexGuard<'_, VecDeque<Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn listener(&self) -> MutexGuard<'_, Option<DurableListener>> {
        self.listener.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_listener(&self, listener: Option<DurableListener>) {
        *self.listener() = listener;
    }

    /// Remember a put queued with batches `..end`. `durable` is read under
    /// the same lock [`Self::progressed`] takes after the queue publishes,
    /// so a put that became durable in between is counted here instead.
    pub fn expect(&self, durable: impl FnOnce() -> u64, end: u64, rows: usize, started: Instant) {
        let mut waiting = self.waiting();
        if end <= durable() {
            self.counters.count_put(rows as u64, started);
        } else {
            waiting.push_back(Waiting {
                end,
                rows: rows as u64,
                started,
            });
        }
    }

    /// The WAL task's listener: count what became durable, drop what
    /// failed, then tell the caller's listener.
    pub fn progressed(&self, progress: &Progress) {
        {
            let mut waiting = self.waiting();
            while let Some(put) = waiting.front().filter(|w| w.end <= progress.durable) {
                self.counters.count_put(put.rows, put.started);
                waiting.pop_front();
            }
            if progress.failure.is_some() || progress.stopped {
                waiting.clear();
            }
        }
        let listener = self.listener().clone();
        if let Some(listener) = listener {
            listener(&DurableProgress {
                durable: progress.durable,
                failure: progress.failure.clone().map(|e| e.with_shard(self.shard)),
                stopped: progress.stopped,
            });
        }
    }
}
