//! The flush scheduler: turns the MemTables the set freezes into Parquet
//! generations, writing up to [`WRITES_AHEAD`] files at once and committing
//! them strictly in generation order, retrying failures with backoff.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{commit_generation, write_generation, FlushCompression};
use crate::error::{Error, ErrorCode, Result};
use crate::format::layout::ShardLayout;
use crate::manifest::{FlushedGeneration, ManifestStore};
use crate::memtable::{Frozen, MemTables};
use crate::store::StorageRoot;

/// Flush attempts of one generation while the writer is closing; while it
/// is open a failing flush is retried for as long as it takes.
const CLOSE_FLUSH_ATTEMPTS: u32 = 3;
const MAX_FLUSH_BACKOFF: Duration = Duration::from_secs(5);

/// What the scheduler needs from the writer that runs it: its WAL queue (a
/// generation may only replace batches that are already in the WAL) and its
/// counters. The writer implements it, so `flush` does not depend on it.
pub trait FlushHost: Send + Sync {
    /// Ask the WAL task to append what is queued now.
    fn flush_now(&self);
    /// Resolve once batches `..end` are in the WAL.
    fn wait_durable(&self, end: u64) -> BoxFuture<'_, Result<()>>;
    /// The WAL position of the entry that ends at batch position `end`.
    fn entry_ending_at(&self, end: u64) -> Option<u64>;
    /// Batches `..end` are in a committed generation now.
    fn forget_entries_through(&self, end: u64);
    /// The error that poisoned the WAL, if any: no flush can help then.
    fn wal_failure(&self) -> Option<Error>;
    /// A flush attempt failed.
    fn count_failure(&self, err: &Error);
    /// A generation of `rows` rows committed, `took` after its write began.
    fn count_success(&self, rows: u64, took: Duration);
}

/// Everything the flush task needs besides the MemTables.
pub struct Flusher {
    pub tables: Arc<MemTables>,
    pub host: Arc<dyn FlushHost>,
    pub root: StorageRoot,
    pub layout: ShardLayout,
    pub manifests: ManifestStore,
    pub epoch: u64,
    pub compression: FlushCompression,
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
                this.tables.record_failure(err);
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
                self.host.flush_now();
                self.host.wait_durable(end).await?;
                self.host.entry_ending_at(end).ok_or_else(|| {
                    Error::internal(format!("No WAL entry ends at batch position {end}"))
                })?
            }
        };
        let generation =
            write_generation(&self.root, &self.layout, table, self.compression).await?;
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
        self.host
            .count_success(table.row_count(), written.started.elapsed());
        self.host.forget_entries_through(table.end_position());
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
        self.host.count_failure(&err);
        if is_terminal(&err) || self.host.wal_failure().is_some() {
            return Err(err);
        }
        tracing::warn!(
            generation = frozen.table.generation(),
            attempts = attempts.total,
            "MemTable flush failed, will retry: {err}"
        );
        self.tables.record_retry(err.clone());
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
