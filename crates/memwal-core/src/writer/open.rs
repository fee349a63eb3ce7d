//! Opening a shard writer: the read-only checks that can refuse an open
//! (so that a doomed open never fences a healthy writer), then the claim,
//! the fence sentinel, the rest of the replay and the writer's tasks.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_schema::SchemaRef;
use tokio::sync::OnceCell;

use super::durable_acks::DurableAcks;
use super::flushing::FlushLink;
use super::stats::WriterCounters;
use super::wal_queue::{QueueTriggers, WalQueue};
use super::{batch_rules, open_check, replay, Inner, OpenOptions, ShardWriter, ShardWriterConfig};
use crate::error::{Error, Result};
use crate::flush::Flusher;
use crate::format::layout::ShardLayout;
use crate::format::tombstone;
use crate::format::TOMBSTONE_COLUMN;
use crate::manifest::ManifestStore;
use crate::memtable::{MemTableLimits, MemTables};
use crate::store::StorageRoot;
use crate::wal::holes::check_before_claim;
use crate::wal::{RetryPolicy, WalAppender};
fn validate_writer_schema(schema: &SchemaRef) -> Result<()> {
    if schema.fields().is_empty() {
        return Err(Error::invalid_input(
            "The writer schema must have at least one field",
        ));
    }
    for key in [
        crate::wal::codec::WRITER_EPOCH_KEY,
        crate::wal::codec::FENCE_SENTINEL_KEY,
    ] {
        if schema.metadata().contains_key(key) {
            return Err(Error::invalid_input(format!(
                "Schema metadata key '{key}' is reserved for WAL entries"
            )));
        }
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

fn memtable_limits(config: &ShardWriterConfig) -> MemTableLimits {
    MemTableLimits {
        capacity: config.max_memtable_batches as usize,
        max_bytes: config.max_memtable_size,
        max_unflushed_bytes: config.max_unflushed_memtable_bytes,
    }
}

/// An open that passed every check made before the claim (see
/// [`ShardWriter::check_open`]); nothing has been written yet.
pub struct CheckedOpen {
    root: StorageRoot,
    shard_id: uuid::Uuid,
    schema: SchemaRef,
    stored: SchemaRef,
    config: ShardWriterConfig,
    rules: batch_rules::BatchRules,
    layout: ShardLayout,
    manifests: ManifestStore,
    listed_max: u64,
    /// MemTable mode: the WAL past the cursor, replayed before the claim.
    replay: Option<replay::Replay>,
}

impl ShardWriter {
    /// Validate, claim the shard's next epoch, fence older writers and start
    /// the WAL task. Nothing is written before validation passes, so a
    /// doomed open never fences a healthy writer.
    pub async fn open(root: StorageRoot, options: OpenOptions) -> Result<Self> {
        Self::check_open(root, options).await?.claim().await
    }

    /// The read-only first half of [`ShardWriter::open`]: every check that
    /// can refuse the open. Dropping it (an aborted open) leaves the shard
    /// as it was.
    pub async fn check_open(root: StorageRoot, options: OpenOptions) -> Result<CheckedOpen> {
        let OpenOptions {
            shard_id,
            schema,
            config,
        } = options;
        config.validate()?;
        validate_writer_schema(&schema)?;
        let shard_id = shard_id.unwrap_or_else(uuid::Uuid::new_v4);
        let stored = tombstone::stored_schema(&schema);
        // WAL-only writers too: Lance readers flush their WALs later.
        crate::flush::writable::check_schema(&stored)?;
        let rules = batch_rules::BatchRules::new(&schema);
        let layout = ShardLayout::new(shard_id);
        let manifests = ManifestStore::new(
            root.clone(),
            layout.clone(),
            config.manifest_scan_batch_size as usize,
        );

        // Everything that can refuse the open is asked before the claim, so
        // a doomed open never fences anyone. A hole above the replay cursor,
        // or a directory at the next WAL position, fails it: the sentinel
        // must never land past (or in) a hole (docs/FORMAT.md §5.4). Then the
        // shard's data must have this writer's schema and key.
        let latest = manifests.read_latest().await?;
        let cursor = latest
            .as_ref()
            .map_or(0, |m| m.replay_after_wal_entry_position);
        let listed_max = check_before_claim(&root, &layout, cursor).await?;
        if let Some(manifest) = &latest {
            let tip = listed_max.max(cursor) + 1;
            open_check::check_schema_before_claim(&root, &layout, manifest, tip, &schema).await?;
        }
        // Replaying before the claim makes every entry the new writer must
        // take (schema, batch count against maxMemtableBatches) a check that
        // refuses the open without fencing; the claim then reads only what
        // the previous writer appended since.
        let replay = if config.enable_memtable {
            let (epoch, generation) = latest.as_ref().map_or((1, 1), |m| {
                (m.writer_epoch + 1, m.current_generation.max(1))
            });
            let limits = memtable_limits(&config);
            let mut replay =
                replay::Replay::new(&root, shard_id, cursor + 1, &stored, &limits, generation);
            // The listing saw nothing past the cursor: nothing to read yet
            // (a new shard's open costs no reads here).
            if listed_max > cursor {
                replay.read_to_end(epoch, listed_max + 1).await?;
            }
            Some(replay)
        } else {
            None
        };
        Ok(CheckedOpen {
            root,
            shard_id,
            schema,
            stored,
            config,
            rules,
            layout,
            manifests,
            listed_max,
            replay,
        })
    }
}

impl CheckedOpen {
    /// The second half of [`ShardWriter::open`]: claim the next epoch, fence
    /// older writers, replay and start the tasks. Once the claim is written
    /// the predecessor is fenced, so this half is never abandoned midway by
    /// an abort: it runs to a writer (which the caller may close) or an error.
    pub async fn claim(self) -> Result<ShardWriter> {
        let CheckedOpen {
            root,
            shard_id,
            schema,
            stored,
            config,
            rules,
            layout,
            manifests,
            listed_max,
            replay,
        } = self;
        let claimed = manifests.claim_epoch(config.shard_spec_id).await?;
        let epoch = claimed.writer_epoch;
        let hint = claimed
            .wal_entry_position_last_seen
            .max(claimed.replay_after_wal_entry_position)
            .max(listed_max);
        let retry = RetryPolicy {
            max_retries: config.max_wal_persist_retries,
            base_delay: config.wal_persist_retry_base_delay,
        };
        let mut appender = WalAppender::open(
            root.clone(),
            layout.clone(),
            manifests.clone(),
            epoch,
            hint,
            retry,
        )
        .await
        .map_err(|e| e.with_shard(shard_id))?;
        if epoch >= 2 {
            appender
                .write_fence_sentinel()
                .await
                .map_err(|e| e.with_shard(shard_id))?;
        }

        let counters = Arc::new(WriterCounters::default());
        let triggers = QueueTriggers {
            size: config.max_wal_buffer_size,
            interval: config.max_wal_flush_interval,
            track_entry_ends: config.enable_memtable,
        };
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let (queue, memtables, flush_task) = if config.enable_memtable {
            let limits = memtable_limits(&config);
            let started = Instant::now();
            let from = (
                claimed.replay_after_wal_entry_position + 1,
                claimed.current_generation.max(1),
            );
            let replayed = match replay {
                // The manifest moved on since (the previous writer flushed):
                // what was replayed may be in a generation now; start over.
                Some(mut replay) if replay.start() == from => {
                    replay.read_to_end(epoch, appender.next_position()).await?;
                    replay.finish()
                }
                _ => {
                    replay::replay(
                        &root,
                        shard_id,
                        epoch,
                        from.0,
                        appender.next_position(),
                        &stored,
                        &limits,
                        from.1,
                    )
                    .await?
                }
            };
            if replayed.entries > 0 {
                tracing::info!(
                    shard = %shard_id,
                    entries = replayed.entries,
                    batches = replayed.batches,
                    bytes = replayed.bytes,
                    ms = started.elapsed().as_millis() as u64,
                    "replayed WAL into MemTables"
                );
            }
            let queue = WalQueue::new(replayed.batches, appender.next_position(), triggers);
            if replayed.active_last_entry > 0 {
                queue.seed_entry_end(replayed.batches, replayed.active_last_entry);
            }
            let (tables, incoming) = MemTables::new(limits, replayed.active, replayed.frozen);
            let host = FlushLink {
                queue: queue.clone(),
                counters: counters.clone(),
            };
            let flusher = Flusher {
                tables: tables.clone(),
                host: Arc::new(host),
                root: root.clone(),
                layout: layout.clone(),
                manifests: manifests.clone(),
                epoch,
                compression: config.flush_compression,
                closing: closing_rx,
            };
            let flush_task = tokio::spawn(flusher.run(incoming));
            (queue, Some(tables), Some(flush_task))
        } else {
            (
                WalQueue::new(0, appender.next_position(), triggers),
                None,
                None,
            )
        };
        let acks = Arc::new(DurableAcks::new(shard_id, counters.clone()));
        let listening = acks.clone();
        queue.set_listener(Box::new(move |progress| listening.progressed(progress)))?;
        let wal_task = tokio::spawn(
            queue
                .clone()
                .run(appender, stored.clone(), counters.clone()),
        );
        let stats_task = config.stats_log_interval.map(|period| {
            tokio::spawn(log_stats(
                period,
                shard_id,
                counters.clone(),
                Arc::downgrade(&queue),
            ))
        });
        tracing::info!(
            shard = %shard_id,
            epoch,
            mode = if config.enable_memtable { "memtable" } else { "wal-only" },
            "shard writer opened"
        );
        Ok(ShardWriter {
            inner: Arc::new(Inner {
                layout,
                epoch,
                schema,
                stored,
                rules,
                config,
                manifests,
                queue,
                memtables,
                counters,
                acks,
                wal_task: Mutex::new(Some(wal_task)),
                flush_task: Mutex::new(flush_task),
                stats_task,
                closing,
                closed: AtomicBool::new(false),
                close_outcome: OnceCell::new(),
            }),
        })
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
