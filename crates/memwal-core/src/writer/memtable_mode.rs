//! MemTable mode: puts land in the active MemTable (readable at once) and in
//! the WAL queue; full MemTables freeze and a flush task turns them into
//! Parquet generations, strictly in generation order.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::backpressure::{wait_under_budget, Pressure};
use super::stats::WriterCounters;
use super::wal_queue::WalQueue;
use crate::error::{Error, ErrorCode, Result};
use crate::flush::{commit_generation, write_generation, FlushCompression};
use crate::format::layout::ShardLayout;
use crate::manifest::{FlushedGeneration, ManifestStore};
use crate::memtable::MemTable;
use crate::store::StorageRoot;

/// Flush attempts of one generation while the writer is closing; while it
/// is open a failing flush is retried for as long as it takes.
const CLOSE_FLUSH_ATTEMPTS: u32 = 3;
const MAX_FLUSH_BACKOFF: Duration = Duration::from_secs(5);

/// A MemTable that no longer takes writes and waits for its flush.
#[derive(Debug)]
pub struct Frozen {
    pub table: Arc<MemTable>,
    /// The WAL entry holding its last batch, when already known (replay).
    pub covered_entry: Option<u64>,
}

/// What the flush task has achieved; watched by backpressure and drains.
#[derive(Debug, Clone, Default)]
pub struct FlushProgress {
    pub committed_generations: u64,
    pub last_committed_generation: u64,
    /// A flush failure that stopped the flush task (fenced, poisoned, or
    /// out of attempts while closing).
    pub failure: Option<Error>,
    /// The most recent failed attempt, also when it will be retried.
    pub last_error: Option<Error>,
}

struct State {
    active: Arc<MemTable>,
    frozen: VecDeque<Arc<Frozen>>,
    frozen_bytes: u64,
}

/// Settings the MemTable side needs from the writer config.
#[derive(Debug, Clone, Copy)]
pub struct MemTableLimits {
    pub capacity: usize,
    pub max_bytes: u64,
    pub max_unflushed_bytes: u64,
    pub compression: FlushCompression,
    pub backpressure_log_interval: Duration,
}

/// The MemTable half of a writer.
pub struct MemTables {
    state: Mutex<State>,
    limits: MemTableLimits,
    schema: SchemaRef,
    to_flusher: mpsc::UnboundedSender<Arc<Frozen>>,
    progress: watch::Sender<FlushProgress>,
}

/// Snapshot for `memtableStats()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemTableStats {
    pub row_count: u64,
    pub batch_count: u64,
    pub estimated_size: u64,
    pub generation: u64,
    pub frozen_count: u64,
    pub frozen_bytes: u64,
    pub frozen_rows: u64,
}

impl MemTables {
    /// MemTables starting from `active` with `frozen` (from replay) already
    /// waiting; returns the receiver the flush task consumes.
    pub fn new(
        schema: SchemaRef,
        limits: MemTableLimits,
        active: MemTable,
        frozen: Vec<Frozen>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Arc<Frozen>>) {
        let (to_flusher, from_writer) = mpsc::unbounded_channel();
        let mut queue = VecDeque::new();
        let mut frozen_bytes = 0;
        for f in frozen {
            let f = Arc::new(f);
            frozen_bytes += f.table.estimated_bytes();
            to_flusher.send(f.clone()).expect("receiver is alive");
            queue.push_back(f);
        }
        let state = State {
            active: Arc::new(active),
            frozen: queue,
            frozen_bytes,
        };
        let this = Arc::new(Self {
            state: Mutex::new(state),
            limits,
            schema,
            to_flusher,
            progress: watch::Sender::new(FlushProgress::default()),
        });
        (this, from_writer)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn progress(&self) -> FlushProgress {
        self.progress.borrow().clone()
    }

    pub fn failure(&self) -> Option<Error> {
        self.progress.borrow().failure.clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<FlushProgress> {
        self.progress.subscribe()
    }

    /// Insert a put: positions come from the WAL queue, both under one lock
    /// so MemTable order and WAL order are the same.
    pub fn insert(
        &self,
        queue: &WalQueue,
        batches: Vec<RecordBatch>,
        sizes: &[u64],
        urgent: bool,
    ) -> Result<Range<u64>> {
        if batches.len() > self.limits.capacity {
            return Err(Error::invalid_input(format!(
                "A put of {} batches exceeds maxMemtableBatches ({})",
                batches.len(),
                self.limits.capacity
            )));
        }
        let mut state = self.lock();
        if state.active.remaining_capacity() < batches.len() {
            self.freeze_locked(&mut state, queue);
        }
        let range = queue.push(batches.clone(), sizes, urgent)?;
        if let Err(rejected) = state.active.try_insert(batches, sizes, range.start) {
            // Cannot happen: capacity was checked under the same lock.
            return Err(Error::internal(format!(
                "MemTable refused {} batches after a capacity check",
                rejected.len()
            )));
        }
        if state.active.estimated_bytes() >= self.limits.max_bytes || state.active.is_full() {
            self.freeze_locked(&mut state, queue);
        }
        Ok(range)
    }

    fn freeze_locked(&self, state: &mut State, queue: &WalQueue) -> bool {
        if state.active.is_empty() {
            return false;
        }
        let end = state.active.end_position();
        let next = MemTable::new(
            state.active.generation() + 1,
            end,
            self.limits.capacity,
            self.schema.clone(),
        );
        let old = std::mem::replace(&mut state.active, Arc::new(next));
        queue.add_barrier(end);
        let frozen = Arc::new(Frozen {
            table: old,
            covered_entry: None,
        });
        state.frozen_bytes += frozen.table.estimated_bytes();
        state.frozen.push_back(frozen.clone());
        tracing::debug!(
            generation = frozen.table.generation(),
            rows = frozen.table.row_count(),
            "MemTable frozen"
        );
        // The flush task only stops when the writer is dropped.
        let _ = self.to_flusher.send(frozen);
        true
    }

    /// Freeze the active MemTable if it holds anything; true if it did.
    pub fn freeze_active(&self, queue: &WalQueue) -> bool {
        let mut state = self.lock();
        self.freeze_locked(&mut state, queue)
    }

    /// Close the WAL queue and freeze the active MemTable in one step, so no
    /// put can land in a MemTable that close() will not flush.
    pub fn close_and_freeze(&self, queue: &WalQueue) {
        let mut state = self.lock();
        queue.close();
        self.freeze_locked(&mut state, queue);
    }

    /// Bytes held in memory and not yet flushed.
    pub fn unflushed_bytes(&self) -> u64 {
        let state = self.lock();
        state.active.estimated_bytes() + state.frozen_bytes
    }

    pub fn frozen_count(&self) -> usize {
        self.lock().frozen.len()
    }

    /// The active MemTable, then the frozen ones oldest first.
    pub fn tables(&self) -> (Arc<MemTable>, Vec<Arc<MemTable>>) {
        let state = self.lock();
        (
            state.active.clone(),
            state.frozen.iter().map(|f| f.table.clone()).collect(),
        )
    }

    pub fn stats(&self) -> MemTableStats {
        let state = self.lock();
        MemTableStats {
            row_count: state.active.row_count(),
            batch_count: state.active.batch_count() as u64,
            estimated_size: state.active.estimated_bytes(),
            generation: state.active.generation(),
            frozen_count: state.frozen.len() as u64,
            frozen_bytes: state.frozen_bytes,
            frozen_rows: state.frozen.iter().map(|f| f.table.row_count()).sum(),
        }
    }

    /// Whether a put would wait in [`wait_for_budget`](Self::wait_for_budget).
    pub fn over_budget(&self) -> bool {
        self.unflushed_bytes() >= self.limits.max_unflushed_bytes
    }

    /// Backpressure: wait while unflushed bytes are at or above the budget.
    pub async fn wait_for_budget(&self, queue: &WalQueue, counters: &WriterCounters) -> Result<()> {
        let pressure = Pressure {
            budget: self.limits.max_unflushed_bytes,
            used: &|| self.unflushed_bytes(),
            failure: &|| self.failure().or_else(|| queue.failure()),
            // Only the active MemTable holds the budget: flushing it is the
            // only way forward.
            nudge: &|| {
                if self.frozen_count() == 0 {
                    self.freeze_active(queue);
                }
            },
            waiting_for: "MemTable flushes",
        };
        let mut rx = self.progress.subscribe();
        wait_under_budget(
            pressure,
            &mut rx,
            self.limits.backpressure_log_interval,
            counters,
        )
        .await
    }

    /// Resolve once every MemTable frozen so far has been flushed.
    pub async fn wait_for_drain(&self) -> Result<()> {
        let target = {
            let state = self.lock();
            match state.frozen.back() {
                Some(f) => f.table.generation(),
                None => return self.failure().map_or(Ok(()), Err),
            }
        };
        let mut rx = self.progress.subscribe();
        let progress = rx
            .wait_for(|p| p.last_committed_generation >= target || p.failure.is_some())
            .await
            .map_err(|_| Error::internal("MemTable flush task ended unexpectedly"))?
            .clone();
        match progress.failure {
            Some(err) if progress.last_committed_generation < target => Err(err),
            _ => Ok(()),
        }
    }

    fn committed(&self, frozen: &Arc<Frozen>) {
        let mut state = self.lock();
        if let Some(index) = state.frozen.iter().position(|f| Arc::ptr_eq(f, frozen)) {
            let removed = state.frozen.remove(index).expect("index is valid");
            state.frozen_bytes -= removed.table.estimated_bytes();
        }
        drop(state);
        let generation = frozen.table.generation();
        self.progress.send_modify(|p| {
            p.committed_generations += 1;
            p.last_committed_generation = generation;
            p.last_error = None;
        });
    }
}

/// Everything the flush task needs besides the MemTables.
pub struct Flusher {
    pub tables: Arc<MemTables>,
    pub queue: Arc<WalQueue>,
    pub root: StorageRoot,
    pub layout: ShardLayout,
    pub manifests: ManifestStore,
    pub epoch: u64,
    pub counters: Arc<WriterCounters>,
    pub closing: watch::Receiver<bool>,
}

fn is_terminal(err: &Error) -> bool {
    matches!(err.code(), ErrorCode::Fenced | ErrorCode::Closed)
}

/// Parquet files written ahead of the oldest uncommitted generation. The
/// next generation is encoded and written while the one before it is still
/// being written, synced or committed, which keeps a second core busy;
/// commits stay strictly in generation order.
const WRITES_AHEAD: usize = 2;

/// A generation's Parquet file, on the store and waiting for its commit.
struct Written {
    generation: FlushedGeneration,
    covered: u64,
    started: Instant,
}

/// Parquet writes in flight, oldest first. Dropping it (the flush task was
/// aborted) stops them too.
#[derive(Default)]
struct WritesInFlight(VecDeque<(Arc<Frozen>, JoinHandle<Result<Written>>)>);

impl WritesInFlight {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Start writing `frozen`'s Parquet file on its own task.
    fn start(&mut self, flusher: &Arc<Flusher>, frozen: Arc<Frozen>) {
        let write = tokio::spawn(flusher.clone().write_until_written(frozen.clone()));
        self.0.push_back((frozen, write));
    }

    /// Wait for the oldest write. Cancel-safe: the write stays queued until
    /// it has finished.
    async fn oldest(&mut self) -> (Arc<Frozen>, Result<Written>) {
        let (_, handle) = self.0.front_mut().expect("a write is in flight");
        let joined = handle.await;
        let (frozen, _) = self.0.pop_front().expect("a write is in flight");
        let written = joined.unwrap_or_else(|err| {
            Err(Error::internal(format!(
                "Writing the Parquet file of generation {} failed: {err}",
                frozen.table.generation()
            )))
        });
        (frozen, written)
    }
}

impl Drop for WritesInFlight {
    fn drop(&mut self) {
        for (_, handle) in &self.0 {
            handle.abort();
        }
    }
}

/// Failed attempts at one step of one generation's flush.
#[derive(Default)]
struct Attempts {
    total: u32,
    while_closing: u32,
}

enum Step {
    Frozen(Option<Arc<Frozen>>),
    Written(Arc<Frozen>, Result<Written>),
}

impl Flusher {
    /// Flush frozen MemTables in the order they froze, each until it
    /// commits; up to [`WRITES_AHEAD`] Parquet files are written at once.
    pub async fn run(self, mut incoming: mpsc::UnboundedReceiver<Arc<Frozen>>) {
        let this = Arc::new(self);
        let mut writing = WritesInFlight::default();
        let mut open = true;
        loop {
            let busy = !writing.is_empty();
            let can_take = open && writing.len() < WRITES_AHEAD;
            let step = tokio::select! {
                biased;
                (frozen, written) = writing.oldest(), if busy => Step::Written(frozen, written),
                frozen = incoming.recv(), if can_take => Step::Frozen(frozen),
                else => return,
            };
            let (frozen, outcome) = match step {
                Step::Frozen(Some(frozen)) => {
                    writing.start(&this, frozen);
                    continue;
                }
                Step::Frozen(None) => {
                    open = false;
                    continue;
                }
                Step::Written(frozen, Ok(written)) => {
                    let committed = this.commit_until_committed(&frozen, written).await;
                    (frozen, committed)
                }
                Step::Written(frozen, Err(err)) => (frozen, Err(err)),
            };
            if let Err(err) = outcome {
                tracing::error!(
                    generation = frozen.table.generation(),
                    "MemTable flush stopped: {err}"
                );
                this.tables.progress.send_modify(|p| p.failure = Some(err));
                return;
            }
        }
    }

    /// Write the generation's Parquet file, retrying until it is written.
    async fn write_until_written(self: Arc<Self>, frozen: Arc<Frozen>) -> Result<Written> {
        let started = Instant::now();
        let mut attempts = Attempts::default();
        loop {
            attempts.total += 1;
            match self.write_once(&frozen).await {
                Ok((generation, covered)) => {
                    return Ok(Written {
                        generation,
                        covered,
                        started,
                    })
                }
                Err(err) => self.retry_later(&frozen, &mut attempts, err).await?,
            }
        }
    }

    async fn write_once(&self, frozen: &Arc<Frozen>) -> Result<(FlushedGeneration, u64)> {
        let table = &frozen.table;
        let end = table.end_position();
        let covered = match frozen.covered_entry {
            Some(entry) => entry,
            None => {
                // Every batch must be in the WAL before the generation can
                // replace it as the source of truth.
                self.queue.flush_now();
                self.queue.wait_durable(end).await?;
                self.queue.entry_ending_at(end).ok_or_else(|| {
                    Error::internal(format!("No WAL entry ends at batch position {end}"))
                })?
            }
        };
        let generation = write_generation(
            &self.root,
            &self.layout,
            table,
            self.tables.limits.compression,
        )
        .await?;
        Ok((generation, covered))
    }

    /// Commit a written generation, retrying the commit (never the write:
    /// a commit that landed but reported an error is recognised by its
    /// generation number).
    async fn commit_until_committed(&self, frozen: &Arc<Frozen>, written: Written) -> Result<()> {
        let table = &frozen.table;
        let mut attempts = Attempts::default();
        loop {
            attempts.total += 1;
            let committed = commit_generation(
                &self.manifests,
                self.epoch,
                written.generation.clone(),
                written.covered,
            )
            .await;
            match committed {
                Ok(_) => break,
                Err(err) => self.retry_later(frozen, &mut attempts, err).await?,
            }
        }
        // Count before `committed` wakes anyone waiting for the drain.
        self.counters.count_flush_success();
        WriterCounters::add(&self.counters.memtable_flush_count, 1);
        WriterCounters::add(&self.counters.memtable_flush_rows, table.row_count());
        WriterCounters::add_time(
            &self.counters.memtable_flush_time_ns,
            written.started.elapsed(),
        );
        self.queue.forget_entries_through(table.end_position());
        self.tables.committed(frozen);
        tracing::info!(
            generation = table.generation(),
            rows = table.row_count(),
            covered_wal_entry = written.covered,
            ms = written.started.elapsed().as_millis() as u64,
            "MemTable flushed"
        );
        Ok(())
    }

    /// After a failed attempt: give up on a terminal error, a poisoned WAL,
    /// or when closing has used its attempts; otherwise record the error and
    /// wait before the next attempt. Only failures seen while closing count
    /// against [`CLOSE_FLUSH_ATTEMPTS`]: attempts that failed before close()
    /// was called (or were under way when it was) still leave it its retries.
    async fn retry_later(
        &self,
        frozen: &Arc<Frozen>,
        attempts: &mut Attempts,
        err: Error,
    ) -> Result<()> {
        self.counters.count_flush_failure(&err);
        if is_terminal(&err) || self.queue.failure().is_some() {
            return Err(err);
        }
        tracing::warn!(
            generation = frozen.table.generation(),
            attempts = attempts.total,
            "MemTable flush failed, will retry: {err}"
        );
        self.tables
            .progress
            .send_modify(|p| p.last_error = Some(err.clone()));
        if *self.closing.borrow() {
            attempts.while_closing += 1;
            if attempts.while_closing >= CLOSE_FLUSH_ATTEMPTS {
                return Err(err);
            }
        }
        let delay = Duration::from_millis(100)
            .saturating_mul(1 << attempts.total.min(6))
            .min(MAX_FLUSH_BACKOFF);
        let mut closing = self.closing.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = closing.wait_for(|c| *c) => {}
        }
        Ok(())
    }
}
