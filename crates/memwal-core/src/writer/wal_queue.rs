//! The group-commit queue between `put` and the WAL.
//!
//! Puts push batches and get writer-global batch positions; one background
//! task turns everything queued into as few WAL entries as it can. A
//! durable put wakes the task at once (no timer): if an append is already
//! in flight, the put's batches ride in the next entry together with every
//! other put that arrived meanwhile. Batches leave the queue only after
//! their entry is persisted, so a failed append loses nothing queued.
//!
//! In MemTable mode a freeze sets a *barrier* at the frozen MemTable's last
//! batch: no entry crosses a barrier, so the entry that ends exactly there
//! covers the whole generation and nothing of the next one. That entry's
//! position becomes the generation's replay cursor.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::stats::WriterCounters;
use crate::error::{Error, Result};
use crate::wal::{encode_entry_payload, WalAppender};

/// When the queue appends on its own.
#[derive(Debug, Clone, Copy)]
pub struct QueueTriggers {
    /// Unsent bytes that trigger an append; an entry holds at most twice
    /// this (at least one batch), so a crossing is appended whole.
    pub size: u64,
    /// Longest wait of a queued non-durable batch; `None` = no timer.
    pub interval: Option<Duration>,
    /// Remember which entry ends at which batch position (MemTable mode).
    pub track_entry_ends: bool,
}

/// What the queue has achieved so far; watched by waiting puts.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Batches `[0, durable)` are persisted in the WAL.
    pub durable: u64,
    /// WAL entries this writer has written (fence sentinel excluded).
    pub entries_written: u64,
    /// Position of the newest entry this writer wrote, 0 if none.
    pub last_entry_position: u64,
    /// Next WAL position the appender will try.
    pub next_entry_position: u64,
    /// Set once an append failed for good; the writer is poisoned.
    pub failure: Option<Error>,
    /// The background task has exited.
    pub stopped: bool,
}

struct Queued {
    batch: RecordBatch,
    bytes: u64,
    at: Instant,
    /// First batch of its put: the only place an entry may end before it,
    /// so a put is never split across entries (replay stays all-or-nothing).
    starts_put: bool,
}

#[derive(Default)]
struct State {
    /// Batch positions no entry may span (ascending).
    barriers: VecDeque<u64>,
    /// Batch end → WAL position of the entry ending there (MemTable mode
    /// only; pruned as generations commit).
    entry_ends: std::collections::BTreeMap<u64, u64>,
    queued: VecDeque<Queued>,
    /// Bytes of every queued batch, including the in-flight ones.
    queued_bytes: u64,
    in_flight: usize,
    in_flight_bytes: u64,
    next_position: u64,
    urgent: bool,
    closing: bool,
    aborted: bool,
}

/// Told of every change the WAL task makes to [`Progress`], on that task,
/// in order: after an entry is persisted, after the failure that poisons
/// the queue, and once when the task stops.
pub type ProgressListener = Box<dyn Fn(&Progress) + Send + Sync>;

enum Action {
    Append(Vec<RecordBatch>),
    Wait(Option<Instant>),
    Exit,
}

/// Snapshot of the queue for `walStats()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub pending_batches: u64,
    pub pending_bytes: u64,
    pub next_batch_position: u64,
    pub durable_batch_position: u64,
}

pub struct WalQueue {
    state: Mutex<State>,
    wake: Notify,
    progress: watch::Sender<Progress>,
    listener: OnceLock<ProgressListener>,
    /// The quickest append of a small entry so far (encode and store
    /// write), in µs: the store's fixed cost per append, not its bandwidth,
    /// and (being a minimum) not the time the task waited for a core.
    small_append_micros: AtomicU64,
    triggers: QueueTriggers,
}

/// Stores whose small appends take longer than this are worth waiting on
/// for more puts to share an entry: about what a local-disk create and
/// fsync takes at best, and far above an in-memory store's append, which
/// is better started at once.
const SLOW_APPEND: Duration = Duration::from_micros(250);

/// Entries up to this size measure a store's fixed cost per append.
const SMALL_ENTRY_BYTES: u64 = 64 * 1024;

impl WalQueue {
    /// A queue whose first batch gets position `first_position` and whose
    /// appender will start at WAL position `next_entry_position`.
    pub fn new(
        first_position: u64,
        next_entry_position: u64,
        triggers: QueueTriggers,
    ) -> Arc<Self> {
        let progress = Progress {
            durable: first_position,
            next_entry_position,
            ..Default::default()
        };
        Arc::new(Self {
            state: Mutex::new(State {
                next_position: first_position,
                ..Default::default()
            }),
            wake: Notify::new(),
            progress: watch::Sender::new(progress),
            listener: OnceLock::new(),
            small_append_micros: AtomicU64::new(u64::MAX),
            triggers,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it half-updated in a
        // way that loses batches, so keep serving after poisoning.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Batches `[0, durable)` are persisted (without cloning the progress).
    pub fn durable(&self) -> u64 {
        self.progress.borrow().durable
    }

    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Install the listener; there is at most one, for the queue's life.
    pub fn set_listener(&self, listener: ProgressListener) -> Result<()> {
        self.listener
            .set(listener)
            .map_err(|_| Error::internal("the WAL queue already has a progress listener"))
    }

    /// Hand the listener the progress just published (called without the
    /// state lock, so the listener may look at the queue).
    fn tell_listener(&self) {
        if let Some(listener) = self.listener.get() {
            let progress = self.progress.borrow().clone();
            listener(&progress);
        }
    }

    /// The error that poisoned the queue, if any.
    pub fn failure(&self) -> Option<Error> {
        self.progress.borrow().failure.clone()
    }

    pub fn stats(&self) -> QueueStats {
        let state = self.lock();
        QueueStats {
            pending_batches: state.queued.len() as u64,
            pending_bytes: state.queued_bytes,
            next_batch_position: state.next_position,
            durable_batch_position: self.progress.borrow().durable,
        }
    }

    pub fn queued_bytes(&self) -> u64 {
        self.lock().queued_bytes
    }

    /// Queue `batches` as one put; `urgent` asks for an append right away.
    ///
    /// `sizes` holds each batch's estimated bytes (counted by slice).
    pub fn push(
        &self,
        batches: Vec<RecordBatch>,
        sizes: &[u64],
        urgent: bool,
    ) -> Result<Range<u64>> {
        let now = Instant::now();
        let mut state = self.lock();
        // Checked under the lock `fail` publishes under: a batch queued
        // after the failure was announced would never be told its fate.
        if let Some(err) = self.failure() {
            return Err(err);
        }
        if state.closing || state.aborted {
            return Err(Error::closed());
        }
        let was_idle = state.queued.len() == state.in_flight;
        let start = state.next_position;
        for (index, (batch, &bytes)) in batches.into_iter().zip(sizes).enumerate() {
            state.queued_bytes += bytes;
            state.queued.push_back(Queued {
                batch,
                bytes,
                at: now,
                starts_put: index == 0,
            });
            state.next_position += 1;
        }
        let range = start..state.next_position;
        let unsent = state.queued_bytes - state.in_flight_bytes;
        if urgent || unsent >= self.triggers.size {
            state.urgent = true;
            drop(state);
            self.wake.notify_one();
        } else if was_idle && self.triggers.interval.is_some() {
            // The first unsent batch starts the timer.
            drop(state);
            self.wake.notify_one();
        }
        Ok(range)
    }

    /// Whether appends cost enough, whatever their size, that a burst of
    /// puts is better gathered into one entry than started as it arrives.
    pub fn appends_are_slow(&self) -> bool {
        let quickest = self.small_append_micros.load(Ordering::Relaxed);
        quickest != u64::MAX && quickest >= SLOW_APPEND.as_micros() as u64
    }

    /// Ask for an append of everything queued, now.
    pub fn flush_now(&self) {
        self.lock().urgent = true;
        self.wake.notify_one();
    }

    /// Keep WAL entries from spanning batch position `end` (a frozen
    /// MemTable's end). Returns at once; see [`Self::entry_ending_at`].
    ///
    /// Called with `end` equal to the next batch position (under the
    /// writer's MemTable lock), so no entry can already span it.
    pub fn add_barrier(&self, end: u64) {
        let mut state = self.lock();
        let durable = state.next_position - state.queued.len() as u64;
        if end > durable && state.barriers.back().is_none_or(|&b| b < end) {
            state.barriers.push_back(end);
        }
    }

    /// The WAL position of the entry whose last batch is `end - 1`, once it
    /// is persisted (MemTable mode).
    pub fn entry_ending_at(&self, end: u64) -> Option<u64> {
        self.lock().entry_ends.get(&end).copied()
    }

    /// Record that the entry at `entry_position`, written before this queue
    /// existed (replay), ends at batch position `end`.
    pub fn seed_entry_end(&self, end: u64, entry_position: u64) {
        self.lock().entry_ends.insert(end, entry_position);
    }

    /// Forget entry ends up to `end` (their generation committed).
    pub fn forget_entries_through(&self, end: u64) {
        self.lock().entry_ends.retain(|&b, _| b > end);
    }

    /// Stop accepting batches; the task appends what is queued, then exits.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closing = true;
        state.urgent = true;
        drop(state);
        self.wake.notify_one();
    }

    /// Stop the task without appending (the writer was dropped unclosed).
    pub fn abort(&self) {
        self.lock().aborted = true;
        self.wake.notify_one();
    }

    /// Resolve once batches `[.., end)` are persisted.
    pub async fn wait_durable(&self, end: u64) -> Result<()> {
        let mut rx = self.progress.subscribe();
        let progress = rx
            .wait_for(|p| p.durable >= end || p.failure.is_some() || p.stopped)
            .await
            .map_err(|_| Error::internal("WAL task ended unexpectedly"))?
            .clone();
        if progress.durable >= end {
            Ok(())
        } else if let Some(err) = progress.failure {
            Err(err)
        } else {
            Err(Error::closed())
        }
    }

    fn decide(&self) -> Action {
        let mut state = self.lock();
        if state.aborted {
            return Action::Exit;
        }
        if state.queued.is_empty() {
            return if state.closing {
                Action::Exit
            } else {
                Action::Wait(None)
            };
        }
        let due = state.urgent
            || self
                .triggers
                .interval
                .is_some_and(|interval| Instant::now() >= state.queued[0].at + interval);
        if !due {
            let deadline = self
                .triggers
                .interval
                .map(|interval| state.queued[0].at + interval);
            return Action::Wait(deadline);
        }
        let mut bytes = 0;
        let mut batches = Vec::new();
        let first = state.next_position - state.queued.len() as u64;
        let barrier = state.barriers.iter().copied().find(|&b| b > first);
        for (offset, queued) in state.queued.iter().enumerate() {
            if !batches.is_empty() && queued.starts_put {
                let full = bytes + queued.bytes > self.triggers.size.saturating_mul(2);
                if full || barrier == Some(first + offset as u64) {
                    break;
                }
            }
            bytes += queued.bytes;
            batches.push(queued.batch.clone());
        }
        state.in_flight = batches.len();
        state.in_flight_bytes = bytes;
        if state.in_flight == state.queued.len() {
            state.urgent = false;
        }
        Action::Append(batches)
    }

    fn complete(&self, entry_position: u64) {
        let mut state = self.lock();
        let done = state.in_flight;
        state.queued.drain(..done);
        state.queued_bytes -= state.in_flight_bytes;
        state.in_flight = 0;
        state.in_flight_bytes = 0;
        let durable = state.next_position - state.queued.len() as u64;
        while state.barriers.front().is_some_and(|&b| b <= durable) {
            state.barriers.pop_front();
        }
        if self.triggers.track_entry_ends {
            state.entry_ends.insert(durable, entry_position);
        }
        // Publish while holding the lock so `durable` never runs ahead of the queue.
        self.progress.send_modify(|p| {
            p.durable = durable;
            p.entries_written += 1;
            p.last_entry_position = entry_position;
            p.next_entry_position = entry_position + 1;
        });
        drop(state);
        self.tell_listener();
    }

    fn fail(&self, err: Error) {
        let mut state = self.lock();
        state.in_flight = 0;
        state.in_flight_bytes = 0;
        self.progress.send_modify(|p| p.failure = Some(err));
        drop(state);
        self.tell_listener();
    }

    /// The background task: append whatever is due until closed or poisoned.
    pub async fn run(
        self: Arc<Self>,
        mut appender: WalAppender,
        schema: SchemaRef,
        counters: Arc<WriterCounters>,
    ) {
        loop {
            match self.decide() {
                Action::Exit => break,
                Action::Wait(None) => self.wake.notified().await,
                Action::Wait(Some(deadline)) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                }
                Action::Append(batches) => {
                    let started = std::time::Instant::now();
                    let result = match encode_entry_payload(appender.epoch(), &schema, &batches) {
                        Ok(entry) => {
                            let len = entry.content_length() as u64;
                            let io_started = std::time::Instant::now();
                            let appended = appender.append(entry).await;
                            WriterCounters::add_time(
                                &counters.wal_io_time_ns,
                                io_started.elapsed(),
                            );
                            appended.map(|position| (position, len))
                        }
                        Err(err) => Err(err),
                    };
                    match result {
                        Ok((position, len)) => {
                            if len <= SMALL_ENTRY_BYTES {
                                self.small_append_micros.fetch_min(
                                    started.elapsed().as_micros() as u64,
                                    Ordering::Relaxed,
                                );
                            }
                            // Count before waking the waiters: a put that
                            // resolves must find its append in the stats.
                            WriterCounters::add(&counters.wal_flush_count, 1);
                            WriterCounters::add(&counters.wal_flush_bytes, len);
                            WriterCounters::add_time(
                                &counters.wal_flush_time_ns,
                                started.elapsed(),
                            );
                            self.complete(position);
                        }
                        Err(err) => {
                            tracing::error!("WAL append failed, writer poisoned: {err}");
                            self.fail(err);
                            break;
                        }
                    }
                }
            }
        }
        self.progress.send_modify(|p| p.stopped = true);
        self.tell_listener();
    }
}
