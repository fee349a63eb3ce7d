//! The MemTable set of a writer in MemTable mode: puts land in the active
//! MemTable (readable at once) and in the WAL queue; a full MemTable freezes
//! and waits in the set until the flush scheduler (`flush::scheduler`) has
//! committed it. [`freeze`] is the one freeze routine, shared with replay.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow_array::RecordBatch;
use tokio::sync::{mpsc, watch};

use super::MemTable;
use crate::error::{Error, Result};

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

/// How large MemTables grow, from the writer config.
#[derive(Debug, Clone, Copy)]
pub struct MemTableLimits {
    /// Batches per MemTable (`maxMemtableBatches`).
    pub capacity: usize,
    /// Bytes at which the active MemTable freezes (`maxMemtableSize`).
    pub max_bytes: u64,
    /// Unflushed bytes at which puts wait (backpressure).
    pub max_unflushed_bytes: u64,
}

impl MemTableLimits {
    /// Whether `active` must freeze before it can take `batches` more.
    pub fn no_room_for(&self, active: &MemTable, batches: usize) -> bool {
        active.remaining_capacity() < batches
    }

    /// Whether `active`, after an insert, is full and must freeze.
    pub fn reached(&self, active: &MemTable) -> bool {
        active.estimated_bytes() >= self.max_bytes || active.is_full()
    }
}

/// Freeze `active` if it holds rows: an empty MemTable of the next
/// generation, starting at the batch position where `active` ends, takes
/// its place, and the frozen table is returned. Puts and WAL replay both
/// freeze through here, so generations are numbered and bounded alike.
pub fn freeze(active: &mut Arc<MemTable>, capacity: usize) -> Option<Arc<MemTable>> {
    if active.is_empty() {
        return None;
    }
    let next = MemTable::new(
        active.generation() + 1,
        active.end_position(),
        capacity,
        active.schema().clone(),
    );
    Some(std::mem::replace(active, Arc::new(next)))
}

/// The WAL side of a put, which the set drives under its own lock so that
/// MemTable order and WAL order are the same. The writer's WAL queue
/// implements it.
pub trait PutLog {
    /// Queue `batches`; their writer-global batch positions.
    fn push(&self, batches: Vec<RecordBatch>, sizes: &[u64], urgent: bool) -> Result<Range<u64>>;
    /// A MemTable froze at batch position `end`: one WAL entry must end
    /// exactly there (docs/FORMAT.md §9.5).
    fn end_entry_at(&self, end: u64);
    /// Refuse every later push.
    fn close(&self);
}

/// The writer holds its queue in an `Arc`.
impl<T: PutLog + ?Sized> PutLog for Arc<T> {
    fn push(&self, batches: Vec<RecordBatch>, sizes: &[u64], urgent: bool) -> Result<Range<u64>> {
        (**self).push(batches, sizes, urgent)
    }

    fn end_entry_at(&self, end: u64) {
        (**self).end_entry_at(end);
    }

    fn close(&self) {
        (**self).close();
    }
}

/// The MemTable half of a writer.
pub struct MemTables {
    state: Mutex<State>,
    limits: MemTableLimits,
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
        limits: MemTableLimits,
        active: Arc<MemTable>,
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
            active,
            frozen: queue,
            frozen_bytes,
        };
        let this = Arc::new(Self {
            state: Mutex::new(state),
            limits,
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

    pub fn limits(&self) -> &MemTableLimits {
        &self.limits
    }

    /// The flush scheduler stopped on `err`.
    pub fn record_failure(&self, err: Error) {
        self.progress.send_modify(|p| p.failure = Some(err));
    }

    /// A flush attempt failed with `err` and will be retried.
    pub fn record_retry(&self, err: Error) {
        self.progress.send_modify(|p| p.last_error = Some(err));
    }

    /// Insert a put: positions come from the WAL queue, both under one lock
    /// so MemTable order and WAL order are the same.
    pub fn insert(
        &self,
        queue: &impl PutLog,
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
        if self.limits.no_room_for(&state.active, batches.len()) {
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
        if self.limits.reached(&state.active) {
            self.freeze_locked(&mut state, queue);
        }
        Ok(range)
    }

    fn freeze_locked(&self, state: &mut State, queue: &impl PutLog) -> bool {
        let Some(old) = freeze(&mut state.active, self.limits.capacity) else {
            return false;
        };
        queue.end_entry_at(old.end_position());
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
    pub fn freeze_active(&self, queue: &impl PutLog) -> bool {
        let mut state = self.lock();
        self.freeze_locked(&mut state, queue)
    }

    /// Close the WAL queue and freeze the active MemTable in one step, so no
    /// put can land in a MemTable that close() will not flush.
    pub fn close_and_freeze(&self, queue: &impl PutLog) {
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

    /// Whether a put would wait for flushes (backpressure).
    pub fn over_budget(&self) -> bool {
        self.unflushed_bytes() >= self.limits.max_unflushed_bytes
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

    /// `frozen` is in the manifest now: drop it from the set.
    pub fn committed(&self, frozen: &Arc<Frozen>) {
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
