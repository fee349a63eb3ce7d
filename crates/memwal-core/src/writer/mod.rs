//! The shard writer: claims a shard, fences its predecessor, and turns puts
//! into durable WAL entries. A little over 600 lines: this is the writer's
//! whole public surface; its parts (open, queue, MemTables, acks) live in
//! the submodules.

mod backpressure;
mod batch_rules;
mod config;
mod durable_acks;
mod fencing;
mod flushing;
mod open;
mod open_check;
mod replay;
mod stats;
mod wal_queue;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

pub use crate::memtable::{FlushProgress, MemTableStats};
pub use config::{OptionKind, OptionSpec, ShardWriterConfig, WRITER_OPTIONS};
pub use durable_acks::{DurableListener, DurableProgress};
pub use open::CheckedOpen;
pub use stats::{HealthState, WriterCounters, WriterHealth, WriterStats};
pub use wal_queue::{Progress, QueueStats};

use crate::error::{Error, ErrorCode, Result};
use crate::format::layout::ShardLayout;
use crate::format::tombstone;
use crate::manifest::{ManifestStore, ShardManifest};
use crate::memtable::batch_store::estimate_batch_bytes;
use crate::memtable::MemTables;
use durable_acks::DurableAcks;
use wal_queue::WalQueue;

/// What a writer is opened with besides the storage root.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// `None` = a new random shard.
    pub shard_id: Option<uuid::Uuid>,
    pub schema: SchemaRef,
    pub config: ShardWriterConfig,
}

/// Where a put's batches landed, in writer-global batch positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub batch_positions: Range<u64>,
}

/// What [`ShardWriter::try_put_now`] did with a put.
#[derive(Debug)]
pub enum PutNow {
    /// Queued and acknowledged: a non-durable put.
    Done(PutResult),
    /// Queued; acknowledged once batches `..batch_positions.end` are in the
    /// WAL, which the [`ShardWriter::on_durable`] listener is told.
    Queued(PutResult),
    /// The writer is over its backpressure budget: the batches, untouched,
    /// for [`ShardWriter::put`] or [`ShardWriter::put_admitted`], which wait.
    Wait(Vec<RecordBatch>),
}

/// How a durable put learns that it is in the WAL: the call waits for it,
/// or returns once queued and the `on_durable` listener tells.
#[derive(Clone, Copy)]
enum Ack {
    Await,
    Listener,
}

/// WAL-side counters for `walStats()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalStats {
    /// The WAL position the next entry will be written at.
    pub next_wal_entry_position: u64,
    /// Position of the newest entry this writer wrote (0 = none yet).
    pub last_wal_entry_position: u64,
    pub entries_written: u64,
    pub pending_batches: u64,
    pub pending_bytes: u64,
    pub next_batch_position: u64,
    pub durable_batch_position: u64,
}

struct Inner {
    layout: ShardLayout,
    epoch: u64,
    schema: SchemaRef,
    /// What rows are stored as: `schema`, plus `_tombstone` with a primary key.
    stored: SchemaRef,
    /// What a put's values are checked for (see [`batch_rules`]).
    rules: batch_rules::BatchRules,
    config: ShardWriterConfig,
    manifests: ManifestStore,
    queue: Arc<WalQueue>,
    /// `None` in WAL-only mode.
    memtables: Option<Arc<MemTables>>,
    counters: Arc<WriterCounters>,
    acks: Arc<DurableAcks>,
    wal_task: Mutex<Option<JoinHandle<()>>>,
    flush_task: Mutex<Option<JoinHandle<()>>>,
    stats_task: Option<JoinHandle<()>>,
    closing: tokio::sync::watch::Sender<bool>,
    closed: AtomicBool,
    close_outcome: OnceCell<Result<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without close(): stop background work, as a crash would.
        self.queue.abort();
        for task in [&self.flush_task, &self.wal_task] {
            if let Some(task) = task.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                task.abort();
            }
        }
        if let Some(task) = &self.stats_task {
            task.abort();
        }
    }
}

/// A writer that owns one shard for one epoch. Cheap to clone; all clones
/// share the same writer.
#[derive(Clone)]
pub struct ShardWriter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ShardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardWriter")
            .field("shard_id", &self.inner.layout.shard_id())
            .field("epoch", &self.inner.epoch)
            .finish()
    }
}

impl ShardWriter {
    pub fn shard_id(&self) -> uuid::Uuid {
        self.inner.layout.shard_id()
    }

    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.inner.schema
    }

    pub fn config(&self) -> &ShardWriterConfig {
        &self.inner.config
    }

    /// Primary-key columns, from the schema's field metadata (may be empty).
    pub fn primary_key(&self) -> Vec<String> {
        crate::format::primary_key::primary_key_columns(&self.inner.schema)
    }

    fn shard_err(&self, err: Error) -> Error {
        err.with_shard(self.shard_id())
    }

    /// CLOSED after close(), the poisoning error after a failed append.
    fn ensure_usable(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(self.shard_err(Error::closed()));
        }
        if let Some(err) = self.failure() {
            return Err(self.shard_err(err));
        }
        Ok(())
    }

    /// The error that poisoned the writer: a failed WAL append or a flush
    /// that had to stop (fenced).
    fn failure(&self) -> Option<Error> {
        self.inner
            .queue
            .failure()
            .or_else(|| self.inner.memtables.as_ref().and_then(|m| m.failure()))
    }

    fn memtables(&self, what: &str) -> Result<&Arc<MemTables>> {
        self.ensure_usable()?;
        self.inner
            .memtables
            .as_ref()
            .ok_or_else(|| self.shard_err(Error::wal_only_mode(what)))
    }

    /// Insert `batches` atomically. With `durableWrite` the call returns
    /// once the WAL entry holding every batch is persisted.
    pub async fn put(&self, batches: Vec<RecordBatch>) -> Result<PutResult> {
        let started = Instant::now();
        self.ensure_usable()?;
        let batches = self.live_rows(batches)?;
        self.write_rows(batches, started, Ack::Await).await
    }

    /// [`put`](Self::put) that returns once admitted (queued, after any
    /// backpressure wait): a durable put is then acknowledged through the
    /// [`on_durable`](Self::on_durable) listener like a [`PutNow::Queued`],
    /// so such a caller has one acknowledgement path for every put.
    pub async fn put_admitted(&self, batches: Vec<RecordBatch>) -> Result<PutResult> {
        let started = Instant::now();
        self.ensure_usable()?;
        let batches = self.live_rows(batches)?;
        self.write_rows(batches, started, Ack::Listener).await
    }

    /// A put done on the caller's thread, without the two thread hops of
    /// an async call (most of a small put's cost): under the backpressure
    /// budget, a non-durable put is queued and acknowledged
    /// ([`PutNow::Done`]) and a durable one is queued for the listener of
    /// [`on_durable`](Self::on_durable) to acknowledge ([`PutNow::Queued`]).
    /// Over the budget the batches come back untouched ([`PutNow::Wait`]).
    ///
    /// A durable put asks for an append at once, unless `defer_append` and
    /// appends are slow (a local disk or object store, not memory): then
    /// it waits for [`append_now`](Self::append_now) (or a size or time
    /// trigger), so that a caller about to queue many puts, such as a JS
    /// thread handing out acknowledgements, gets them into one entry. When
    /// appends are fast, starting at once overlaps the write with the
    /// caller's next puts, which is worth more than a bigger entry.
    pub fn try_put_now(&self, batches: Vec<RecordBatch>, defer_append: bool) -> Result<PutNow> {
        if self.over_budget() {
            return Ok(PutNow::Wait(batches));
        }
        let started = Instant::now();
        self.ensure_usable()?;
        let batches = self.live_rows(batches)?;
        let durable = self.inner.config.durable_write;
        let defer = defer_append && self.inner.queue.appends_are_slow();
        let (range, rows) = self.enqueue(batches, durable && !defer)?;
        if !durable {
            return Ok(PutNow::Done(self.acknowledged(range, rows, started)));
        }
        let queue = &self.inner.queue;
        self.inner
            .acks
            .expect(|| queue.durable(), range.end, rows, started);
        Ok(PutNow::Queued(PutResult {
            batch_positions: range,
        }))
    }

    /// Append everything queued now (see `defer_append` of
    /// [`try_put_now`](Self::try_put_now)).
    pub fn append_now(&self) {
        self.inner.queue.flush_now();
    }

    /// Call `listener` on the WAL task after every entry it persists, after
    /// the failure that poisons the writer, and when the task stops; this
    /// is how puts that [`try_put_now`](Self::try_put_now) queued learn
    /// their fate. Replaces any earlier listener; `None` removes it.
    pub fn on_durable(&self, listener: Option<DurableListener>) {
        self.inner.acks.set_listener(listener);
    }

    /// Whether a put would wait for backpressure right now.
    fn over_budget(&self) -> bool {
        match &self.inner.memtables {
            Some(tables) => tables.over_budget(),
            None => {
                self.inner.queue.queued_bytes() >= self.inner.config.max_unflushed_memtable_bytes
            }
        }
    }

    /// `batches` in the stored schema, as live (not deleted) rows.
    fn live_rows(&self, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        let stored = &self.inner.stored;
        crate::format::schema::conform_batches(&self.inner.schema, batches)
            .and_then(|batches| self.inner.rules.check(&batches).map(|()| batches))
            .and_then(|batches| {
                batches
                    .into_iter()
                    .map(|b| tombstone::as_live_rows(stored, b))
                    .collect::<Result<Vec<_>>>()
            })
            .map_err(|e| self.shard_err(e))
    }

    /// Delete the rows whose primary key is in `keys` (batches holding the
    /// key columns). Recorded as `_tombstone` rows through the same WAL,
    /// MemTable and flush path as puts, and acknowledged the same way.
    pub async fn delete(&self, keys: Vec<RecordBatch>) -> Result<PutResult> {
        self.delete_with(keys, Ack::Await).await
    }

    /// [`delete`](Self::delete) acknowledged like
    /// [`put_admitted`](Self::put_admitted).
    pub async fn delete_admitted(&self, keys: Vec<RecordBatch>) -> Result<PutResult> {
        self.delete_with(keys, Ack::Listener).await
    }

    async fn delete_with(&self, keys: Vec<RecordBatch>, ack: Ack) -> Result<PutResult> {
        let started = Instant::now();
        self.ensure_usable()?;
        if keys.is_empty() {
            return Err(self.shard_err(Error::invalid_input("delete needs at least one key")));
        }
        let batches = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| crate::format::schema::conform_keys(&self.inner.schema, i, k))
            .map(|k| {
                k.and_then(|k| tombstone::delete_rows(&self.inner.schema, &self.inner.stored, &k))
            })
            .collect::<Result<Vec<_>>>()
            // A key the flush would store changed (a decimal past its
            // precision) would delete another row once flushed.
            .and_then(|batches| self.inner.rules.check(&batches).map(|()| batches))
            .map_err(|e| self.shard_err(e))?;
        self.write_rows(batches, started, ack).await
    }

    /// The shared tail of put and delete: rows already in the stored schema.
    async fn write_rows(
        &self,
        batches: Vec<RecordBatch>,
        started: Instant,
        ack: Ack,
    ) -> Result<PutResult> {
        let durable = self.inner.config.durable_write;
        match &self.inner.memtables {
            Some(tables) => {
                let log_every = self.inner.config.backpressure_log_interval;
                flushing::wait_for_budget(
                    tables,
                    &self.inner.queue,
                    &self.inner.counters,
                    log_every,
                )
                .await
                .map_err(|e| self.shard_err(e))?;
                self.ensure_usable()?;
            }
            None => self.wait_for_budget().await?,
        }
        let (range, rows) = self.enqueue(batches, durable)?;
        if durable {
            if let Ack::Listener = ack {
                let queue = &self.inner.queue;
                self.inner
                    .acks
                    .expect(|| queue.durable(), range.end, rows, started);
                return Ok(PutResult {
                    batch_positions: range,
                });
            }
            self.inner
                .queue
                .wait_durable(range.end)
                .await
                .map_err(|e| self.shard_err(e))?;
        }
        Ok(self.acknowledged(range, rows, started))
    }

    /// Queue `batches` for the WAL (and insert them into the active
    /// MemTable) without waiting; `urgent` asks for an append at once.
    /// Returns their batch positions and row count.
    fn enqueue(&self, batches: Vec<RecordBatch>, urgent: bool) -> Result<(Range<u64>, usize)> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let sizes: Vec<u64> = batches.iter().map(estimate_batch_bytes).collect();
        let queue = &self.inner.queue;
        let range = match &self.inner.memtables {
            Some(tables) => tables.insert(queue, batches, &sizes, urgent),
            None => queue.push(batches, &sizes, urgent),
        }
        .map_err(|e| self.shard_err(e))?;
        Ok((range, rows))
    }

    /// Count an acknowledged put.
    fn acknowledged(&self, range: Range<u64>, rows: usize, started: Instant) -> PutResult {
        self.inner.counters.count_put(rows as u64, started);
        PutResult {
            batch_positions: range,
        }
    }

    /// Backpressure in WAL-only mode: wait while queued bytes exceed the budget.
    async fn wait_for_budget(&self) -> Result<()> {
        let queue = &self.inner.queue;
        let pressure = backpressure::Pressure {
            budget: self.inner.config.max_unflushed_memtable_bytes,
            used: &|| queue.queued_bytes(),
            failure: &|| {
                queue
                    .failure()
                    .or_else(|| queue.progress().stopped.then(Error::closed))
            },
            nudge: &|| queue.flush_now(),
            waiting_for: "the WAL to drain",
        };
        let mut rx = queue.subscribe();
        let log_every = self.inner.config.backpressure_log_interval;
        backpressure::wait_under_budget(pressure, &mut rx, log_every, &self.inner.counters)
            .await
            .map_err(|e| self.shard_err(e))
    }

    pub fn stats(&self) -> WriterStats {
        self.inner.counters.snapshot()
    }

    /// `Failed` once the writer is poisoned or fenced, `Degraded` while
    /// MemTable flushes keep failing (they are retried), else `Ok`.
    pub fn health(&self) -> WriterHealth {
        let stats = self.stats();
        let failure = self.failure();
        let state = if failure.is_some() {
            HealthState::Failed
        } else if stats.consecutive_flush_failures > 0 {
            HealthState::Degraded
        } else {
            HealthState::Ok
        };
        WriterHealth {
            state,
            flush_failures: stats.flush_failures,
            consecutive_flush_failures: stats.consecutive_flush_failures,
            last_flush_error: stats.last_flush_error,
            failure,
        }
    }

    pub fn wal_stats(&self) -> WalStats {
        let progress = self.inner.queue.progress();
        let queue = self.inner.queue.stats();
        WalStats {
            next_wal_entry_position: progress.next_entry_position,
            last_wal_entry_position: progress.last_entry_position,
            entries_written: progress.entries_written,
            pending_batches: queue.pending_batches,
            pending_bytes: queue.pending_bytes,
            next_batch_position: queue.next_batch_position,
            durable_batch_position: queue.durable_batch_position,
        }
    }

    /// Resolve once batch positions `[.., end)` are in the WAL (without
    /// asking for an append: the triggers decide when that happens).
    pub async fn wait_durable(&self, end: u64) -> Result<()> {
        self.inner
            .queue
            .wait_durable(end)
            .await
            .map_err(|e| self.shard_err(e))
    }

    /// The shard's latest manifest.
    pub async fn manifest(&self) -> Result<ShardManifest> {
        self.ensure_usable()?;
        self.inner
            .manifests
            .read_latest()
            .await?
            .ok_or_else(|| self.shard_err(Error::not_found("The shard has no manifest")))
    }

    /// FENCED if a newer writer has claimed the shard, without writing anything.
    pub async fn check_fenced(&self) -> Result<()> {
        self.ensure_usable()?;
        self.inner
            .manifests
            .check_fenced(self.inner.epoch)
            .await
            .map(|_| ())
    }

    /// Row, batch and byte counts of the active and frozen MemTables.
    pub fn memtable_stats(&self) -> Result<MemTableStats> {
        Ok(self.memtables("memtableStats")?.stats())
    }

    /// Freeze the active MemTable (if it holds rows) and schedule its flush.
    /// Returns whether a MemTable was frozen.
    pub async fn force_seal_active(&self) -> Result<bool> {
        let tables = self.memtables("forceSealActive")?;
        self.inner.manifests.check_fenced(self.inner.epoch).await?;
        Ok(tables.freeze_active(&self.inner.queue))
    }

    /// Resolve once every MemTable frozen so far is flushed and committed.
    pub async fn wait_for_flush_drain(&self) -> Result<()> {
        let tables = self.memtables("waitForFlushDrain")?;
        tables.wait_for_drain().await.map_err(|e| self.shard_err(e))
    }

    /// Flush-task progress (MemTable mode).
    pub fn flush_progress(&self) -> Result<FlushProgress> {
        Ok(self.memtables("flushProgress")?.progress())
    }

    /// A receiver that wakes on every flush-task event (MemTable mode).
    pub fn watch_flush_progress(&self) -> Result<tokio::sync::watch::Receiver<FlushProgress>> {
        Ok(self.memtables("flushProgress")?.subscribe())
    }

    /// Rows of the active and frozen MemTables that the scan may see, with
    /// projection, filter, offset and limit applied, in put order.
    pub fn scan(
        &self,
        request: &crate::read::scan::ScanRequest,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let plan = crate::read::scan::ScanPlan::new(&self.inner.schema, request)
            .map_err(|e| self.shard_err(e))?;
        let batches = self.visible_batches()?;
        let out = plan.run(&batches).map_err(|e| self.shard_err(e))?;
        Ok((plan.output_schema().clone(), out))
    }

    /// The rows a scan may see, oldest first, in the writer schema: in
    /// durable mode only rows already in the WAL, otherwise every inserted
    /// row; with a primary key only the newest row per key, and no deleted
    /// key.
    pub fn visible_batches(&self) -> Result<Vec<RecordBatch>> {
        let stored = self.stored_visible_batches()?;
        let key = self.primary_key();
        let rows = if key.is_empty() {
            stored
        } else {
            crate::read::newest::newest_rows(&self.inner.stored, &key, &stored)
                .map_err(|e| self.shard_err(e))?
        };
        rows.iter()
            .map(|b| tombstone::strip(&self.inner.schema, b))
            .collect()
    }

    fn stored_visible_batches(&self) -> Result<Vec<RecordBatch>> {
        let tables = self.memtables("scan")?;
        let (active, frozen) = tables.tables();
        let limit = if self.inner.config.durable_write {
            self.inner.queue.durable()
        } else {
            u64::MAX
        };
        Ok(frozen
            .iter()
            .chain(std::iter::once(&active))
            .flat_map(|t| t.batches_before(limit).cloned().collect::<Vec<_>>())
            .collect())
    }

    /// Append everything queued, stop background work and make the writer
    /// unusable. Safe to call repeatedly and concurrently: every call gets
    /// the outcome of the first.
    pub async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner
            .close_outcome
            .get_or_init(|| self.shutdown())
            .await
            .clone()
    }

    async fn shutdown(&self) -> Result<()> {
        let inner = &self.inner;
        match &inner.memtables {
            Some(tables) => tables.close_and_freeze(&inner.queue),
            None => inner.queue.close(),
        }
        let _ = inner.closing.send(true);
        let mut first_error = None;
        if let Some(tables) = &inner.memtables {
            if let Err(err) = tables.wait_for_drain().await {
                first_error = Some(err);
            }
        }
        let wal_task = inner
            .wal_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = wal_task {
            if let Err(err) = task.await {
                first_error.get_or_insert(Error::from(err));
            }
        }
        let flush_task = inner
            .flush_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = flush_task {
            // Its channel stays open while the writer lives; every frozen
            // MemTable is committed or failed by now.
            task.abort();
        }
        if let Some(stats_task) = &inner.stats_task {
            stats_task.abort();
        }
        if let Some(err) = self.failure().or(first_error) {
            return Err(self.shard_err(err));
        }
        let left = inner.queue.stats().pending_batches;
        if left > 0 {
            return Err(self.shard_err(Error::new(
                ErrorCode::Internal,
                format!("{left} batches were still queued when the WAL task stopped"),
            )));
        }
        tracing::info!(shard = %self.shard_id(), epoch = inner.epoch, "shard writer closed");
        Ok(())
    }
}
