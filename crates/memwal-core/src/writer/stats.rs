//! Counters the writer keeps for `stats()` and the periodic log line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::Error;

/// Live counters, updated with relaxed atomics off the hot path's locks.
#[derive(Debug, Default)]
pub struct WriterCounters {
    pub put_count: AtomicU64,
    pub put_rows: AtomicU64,
    pub put_time_ns: AtomicU64,
    pub wal_flush_count: AtomicU64,
    pub wal_flush_bytes: AtomicU64,
    pub wal_flush_time_ns: AtomicU64,
    pub wal_io_time_ns: AtomicU64,
    pub memtable_flush_count: AtomicU64,
    pub memtable_flush_rows: AtomicU64,
    pub memtable_flush_time_ns: AtomicU64,
    pub backpressure_count: AtomicU64,
    pub backpressure_wait_ns: AtomicU64,
    /// Failed MemTable flush attempts (writes and commits), ever.
    pub flush_failures: AtomicU64,
    /// Failed attempts since the last committed generation.
    pub consecutive_flush_failures: AtomicU64,
    pub last_flush_error: Mutex<Option<Error>>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl WriterCounters {
    pub fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    pub fn add_time(counter: &AtomicU64, elapsed: Duration) {
        counter.fetch_add(nanos(elapsed), Ordering::Relaxed);
    }

    /// Count an acknowledged put of `rows` rows that began at `started`.
    pub fn count_put(&self, rows: u64, started: std::time::Instant) {
        Self::add(&self.put_count, 1);
        Self::add(&self.put_rows, rows);
        Self::add_time(&self.put_time_ns, started.elapsed());
    }

    /// Count a failed flush attempt; background flushes retry, so this is
    /// how a failure is seen before `close()`.
    pub fn count_flush_failure(&self, err: &Error) {
        Self::add(&self.flush_failures, 1);
        Self::add(&self.consecutive_flush_failures, 1);
        *self
            .last_flush_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(err.clone());
    }

    /// A generation committed: the failures before it are over.
    pub fn count_flush_success(&self) {
        self.consecutive_flush_failures.store(0, Ordering::Relaxed);
    }

    pub fn last_flush_error(&self) -> Option<Error> {
        self.last_flush_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> WriterStats {
        let ms = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1e6;
        WriterStats {
            put_count: self.put_count.load(Ordering::Relaxed),
            put_rows: self.put_rows.load(Ordering::Relaxed),
            put_time_ms: ms(&self.put_time_ns),
            wal_flush_count: self.wal_flush_count.load(Ordering::Relaxed),
            wal_flush_bytes: self.wal_flush_bytes.load(Ordering::Relaxed),
            wal_flush_time_ms: ms(&self.wal_flush_time_ns),
            wal_io_time_ms: ms(&self.wal_io_time_ns),
            index_update_time_ms: 0.0,
            index_update_rows: 0,
            memtable_flush_count: self.memtable_flush_count.load(Ordering::Relaxed),
            memtable_flush_rows: self.memtable_flush_rows.load(Ordering::Relaxed),
            memtable_flush_time_ms: ms(&self.memtable_flush_time_ns),
            backpressure_count: self.backpressure_count.load(Ordering::Relaxed),
            backpressure_wait_ms: ms(&self.backpressure_wait_ns),
            flush_failures: self.flush_failures.load(Ordering::Relaxed),
            consecutive_flush_failures: self.consecutive_flush_failures.load(Ordering::Relaxed),
            last_flush_error: self.last_flush_error(),
        }
    }
}

/// A point-in-time copy of the counters (`writer.stats()`, README "Health").
#[derive(Debug, Clone, PartialEq)]
pub struct WriterStats {
    pub put_count: u64,
    pub put_rows: u64,
    pub put_time_ms: f64,
    pub wal_flush_count: u64,
    pub wal_flush_bytes: u64,
    pub wal_flush_time_ms: f64,
    pub wal_io_time_ms: f64,
    pub index_update_time_ms: f64,
    pub index_update_rows: u64,
    pub memtable_flush_count: u64,
    pub memtable_flush_rows: u64,
    pub memtable_flush_time_ms: f64,
    pub backpressure_count: u64,
    pub backpressure_wait_ms: f64,
    pub flush_failures: u64,
    pub consecutive_flush_failures: u64,
    /// The most recent failed flush attempt, also once a retry succeeded.
    pub last_flush_error: Option<Error>,
}

/// How a writer is doing, for a caller that cannot wait for `close()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Nothing is failing.
    Ok,
    /// Flushes are failing and being retried; rows are safe in the WAL but
    /// memory fills up until a flush succeeds.
    Degraded,
    /// The writer is poisoned or fenced: puts fail; reopen the shard.
    Failed,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::Degraded => "degraded",
            HealthState::Failed => "failed",
        }
    }
}

/// The answer of `health()`.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterHealth {
    pub state: HealthState,
    pub flush_failures: u64,
    pub consecutive_flush_failures: u64,
    pub last_flush_error: Option<Error>,
    /// Why the writer failed (state `Failed`).
    pub failure: Option<Error>,
}
