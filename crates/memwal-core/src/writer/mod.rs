//! The shard writer: claims a shard, fences its predecessor, and turns puts
//! into durable WAL entries.

mod config;
mod schema_check;
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

pub use config::ShardWriterConfig;
pub use stats::{WriterCounters, WriterStats};
pub use wal_queue::{Progress, QueueStats};

use crate::error::{Error, ErrorCode, Result};
use crate::layout::ShardLayout;
use crate::manifest::{ManifestStore, ShardManifest};
use crate::store::StorageRoot;
use crate::wal::codec::TOMBSTONE_COLUMN;
use crate::wal::{RetryPolicy, WalAppender};
use wal_queue::{QueueTriggers, WalQueue};

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
    config: ShardWriterConfig,
    manifests: ManifestStore,
    queue: Arc<WalQueue>,
    counters: Arc<WriterCounters>,
    wal_task: Mutex<Option<JoinHandle<()>>>,
    stats_task: Option<JoinHandle<()>>,
    closed: AtomicBool,
    close_outcome: OnceCell<Result<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without close(): stop background work, as a crash would.
        self.queue.abort();
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

fn validate_writer_schema(schema: &SchemaRef) -> Result<()> {
    if schema.fields().is_empty() {
        return Err(Error::invalid_input(
            "The writer schema must have at least one field",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for field in schema.fields() {
        if field.name() == TOMBSTONE_COLUMN {
            return Err(Error::invalid_input(format!(
                "Field name '{TOMBSTONE_COLUMN}' is reserved for delete markers"
            )));
        }
        if !seen.insert(field.name()) {
            return Err(Error::invalid_input(format!(
                "The writer schema has two fields named '{}'",
                field.name()
            )));
        }
    }
    Ok(())
}

impl ShardWriter {
    /// Validate, claim the shard's next epoch, fence older writers and start
    /// the WAL task. Nothing is written before validation passes, so a
    /// doomed open never fences a healthy writer.
    pub async fn open(root: StorageRoot, options: OpenOptions) -> Result<Self> {
        let OpenOptions {
            shard_id,
            schema,
            config,
        } = options;
        config.validate()?;
        validate_writer_schema(&schema)?;
        if config.enable_memtable {
            return Err(Error::invalid_config(
                "enableMemtable: MemTable mode is not available in this build yet; \
                 open with enableMemtable: false (WAL-only mode)",
            ));
        }
        let shard_id = shard_id.unwrap_or_else(uuid::Uuid::new_v4);
        let layout = ShardLayout::new(shard_id);
        let manifests = ManifestStore::new(
            root.clone(),
            layout.clone(),
            config.manifest_scan_batch_size as usize,
        );

        let claimed = manifests.claim_epoch(config.shard_spec_id).await?;
        let epoch = claimed.writer_epoch;
        let hint = claimed
            .wal_entry_position_last_seen
            .max(claimed.replay_after_wal_entry_position);
        let retry = RetryPolicy {
            max_retries: config.max_wal_persist_retries,
            base_delay: config.wal_persist_retry_base_delay,
        };
        let mut appender = WalAppender::open(root, manifests.clone(), epoch, hint, retry)
            .await
            .map_err(|e| e.with_shard(shard_id))?;
        if epoch >= 2 {
            appender
                .write_fence_sentinel()
                .await
                .map_err(|e| e.with_shard(shard_id))?;
        }

        let counters = Arc::new(WriterCounters::default());
        let queue = WalQueue::new(
            0,
            appender.next_position(),
            QueueTriggers {
                size: config.max_wal_buffer_size,
                interval: config.max_wal_flush_interval,
            },
        );
        let wal_task = tokio::spawn(
            queue
                .clone()
                .run(appender, schema.clone(), counters.clone()),
        );
        let stats_task = config.stats_log_interval.map(|period| {
            tokio::spawn(log_stats(
                period,
                shard_id,
                counters.clone(),
                Arc::downgrade(&queue),
            ))
        });
        tracing::info!(shard = %shard_id, epoch, "shard writer opened (WAL-only mode)");
        Ok(Self {
            inner: Arc::new(Inner {
                layout,
                epoch,
                schema,
                config,
                manifests,
                queue,
                counters,
                wal_task: Mutex::new(Some(wal_task)),
                stats_task,
                closed: AtomicBool::new(false),
                close_outcome: OnceCell::new(),
            }),
        })
    }

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

    fn shard_err(&self, err: Error) -> Error {
        err.with_shard(self.shard_id())
    }

    /// CLOSED after close(), the poisoning error after a failed append.
    fn ensure_usable(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(self.shard_err(Error::closed()));
        }
        if let Some(err) = self.inner.queue.failure() {
            return Err(self.shard_err(err));
        }
        Ok(())
    }

    /// Insert `batches` atomically. With `durableWrite` the call returns
    /// once the WAL entry holding every batch is persisted.
    pub async fn put(&self, batches: Vec<RecordBatch>) -> Result<PutResult> {
        let started = Instant::now();
        self.ensure_usable()?;
        let batches = schema_check::conform_batches(&self.inner.schema, batches)
            .map_err(|e| self.shard_err(e))?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        self.wait_for_budget().await?;
        let durable = self.inner.config.durable_write;
        let range = self
            .inner
            .queue
            .push(batches, durable)
            .map_err(|e| self.shard_err(e))?;
        if durable {
            self.inner
                .queue
                .wait_durable(range.end)
                .await
                .map_err(|e| self.shard_err(e))?;
        }
        let counters = &self.inner.counters;
        WriterCounters::add(&counters.put_count, 1);
        WriterCounters::add(&counters.put_rows, rows as u64);
        WriterCounters::add_time(&counters.put_time_ns, started.elapsed());
        Ok(PutResult {
            batch_positions: range,
        })
    }

    /// Backpressure: wait (never fail) while the queued bytes exceed the budget.
    async fn wait_for_budget(&self) -> Result<()> {
        let budget = self.inner.config.max_unflushed_memtable_bytes;
        let queue = &self.inner.queue;
        if queue.queued_bytes() < budget {
            return Ok(());
        }
        let started = Instant::now();
        WriterCounters::add(&self.inner.counters.backpressure_count, 1);
        let mut rx = queue.subscribe();
        queue.flush_now();
        let log_every = self.inner.config.backpressure_log_interval;
        while queue.queued_bytes() >= budget {
            if let Some(err) = queue.failure() {
                return Err(self.shard_err(err));
            }
            match tokio::time::timeout(log_every, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(self.shard_err(Error::internal("WAL task ended unexpectedly")))
                }
                Err(_) => tracing::warn!(
                    shard = %self.shard_id(),
                    waited_ms = started.elapsed().as_millis() as u64,
                    queued_bytes = queue.queued_bytes(),
                    budget,
                    "put is waiting for the WAL to drain (backpressure)"
                ),
            }
            if rx.borrow().stopped {
                return Err(self.shard_err(Error::closed()));
            }
            queue.flush_now();
        }
        WriterCounters::add_time(&self.inner.counters.backpressure_wait_ns, started.elapsed());
        Ok(())
    }

    pub fn stats(&self) -> WriterStats {
        self.inner.counters.snapshot()
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

    /// MemTable accessors exist only in MemTable mode.
    pub fn require_memtable(&self, what: &str) -> Result<()> {
        self.ensure_usable()?;
        if !self.inner.config.enable_memtable {
            return Err(self.shard_err(Error::wal_only_mode(what)));
        }
        Err(self.shard_err(Error::internal(format!("{what} needs MemTable mode"))))
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
        inner.queue.close();
        let task = inner
            .wal_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let joined = match task {
            Some(task) => task.await.map_err(Error::from),
            None => Ok(()),
        };
        if let Some(stats_task) = &inner.stats_task {
            stats_task.abort();
        }
        joined.map_err(|e| self.shard_err(e))?;
        if let Some(err) = inner.queue.failure() {
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

async fn log_stats(
    period: std::time::Duration,
    shard: uuid::Uuid,
    counters: Arc<WriterCounters>,
    queue: std::sync::Weak<WalQueue>,
) {
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(queue) = queue.upgrade() else { return };
        let s = counters.snapshot();
        let q = queue.stats();
        tracing::info!(
            shard = %shard,
            puts = s.put_count,
            rows = s.put_rows,
            put_ms = s.put_time_ms,
            wal_flushes = s.wal_flush_count,
            wal_bytes = s.wal_flush_bytes,
            wal_ms = s.wal_flush_time_ms,
            pending_batches = q.pending_batches,
            pending_bytes = q.pending_bytes,
            backpressure = s.backpressure_count,
            "shard writer stats"
        );
    }
}
