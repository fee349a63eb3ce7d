//! Counters the writer keeps for `stats()` and the periodic log line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
        }
    }
}

/// A point-in-time copy of the counters (SPEC §7).
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
}
