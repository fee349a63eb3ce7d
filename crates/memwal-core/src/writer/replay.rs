//! Rebuilding MemTables from the WAL entries a previous writer left after
//! the replay cursor.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::format::schema::conform_batches;
use crate::format::tombstone;
use crate::memtable::batch_store::estimate_batch_bytes;
use crate::memtable::set::freeze;
use crate::memtable::{Frozen, MemTable, MemTableLimits};
use crate::read::WalTailer;
use crate::store::StorageRoot;
use crate::wal::WalEntry;

/// Entries fetched concurrently while replaying.
const READ_AHEAD: u64 = 8;

/// What replay produced.
pub struct Replayed {
    /// The MemTable that keeps taking writes after open.
    pub active: Arc<MemTable>,
    /// Generations that filled up during replay, oldest first.
    pub frozen: Vec<Frozen>,
    /// Batches replayed; they hold positions `[0, batches)` and are durable.
    pub batches: u64,
    pub entries: u64,
    pub bytes: u64,
    /// WAL position of the last entry whose batches are in `active` (0 = none).
    pub active_last_entry: u64,
}

async fn read_window(tailer: &WalTailer, from: u64) -> Result<Vec<Option<WalEntry>>> {
    let reads = (from..from + READ_AHEAD).map(|p| tailer.read_entry(p));
    futures::future::try_join_all(reads).await
}

/// Replay entries `from..` until the first missing position into MemTables
/// starting at `first_generation`. An entry from a newer epoch means a newer
/// writer owns the shard: the open is aborted with FENCED. `tip` is the
/// appender's next position: every position below it exists, so a missing
/// one is a hole (CORRUPT), never the end of the replay.
#[allow(clippy::too_many_arguments)]
pub async fn replay(
    root: &StorageRoot,
    shard: uuid::Uuid,
    epoch: u64,
    from: u64,
    tip: u64,
    schema: &SchemaRef,
    limits: &MemTableLimits,
    first_generation: u64,
) -> Result<Replayed> {
    let mut replay = Replay::new(root, shard, from, schema, limits, first_generation);
    replay.read_to_end(epoch, tip).await?;
    Ok(replay.finish())
}

/// A replay that can stop at the end of the WAL and go on later: an open
/// replays before it claims (so that an entry it cannot take refuses the
/// open before anyone is fenced) and then reads only what the previous
/// writer appended since.
pub struct Replay {
    root: StorageRoot,
    shard: uuid::Uuid,
    schema: SchemaRef,
    limits: MemTableLimits,
    /// The replay cursor + 1 and the first generation this replay started
    /// from: valid while the manifest still says so.
    start: (u64, u64),
    next: u64,
    out: Replayed,
}

impl Replay {
    pub fn new(
        root: &StorageRoot,
        shard: uuid::Uuid,
        from: u64,
        schema: &SchemaRef,
        limits: &MemTableLimits,
        first_generation: u64,
    ) -> Self {
        Self {
            root: root.clone(),
            shard,
            schema: schema.clone(),
            limits: *limits,
            start: (from, first_generation),
            next: from,
            out: Replayed {
                active: Arc::new(MemTable::new(
                    first_generation,
                    0,
                    limits.capacity,
                    schema.clone(),
                )),
                frozen: Vec::new(),
                batches: 0,
                entries: 0,
                bytes: 0,
                active_last_entry: 0,
            },
        }
    }

    /// The position and generation this replay started from.
    pub fn start(&self) -> (u64, u64) {
        self.start
    }

    /// Read entries from where the last call stopped to the first missing
    /// position at or above `tip` (below it a missing one is a hole).
    pub async fn read_to_end(&mut self, epoch: u64, tip: u64) -> Result<()> {
        let shard = self.shard;
        let tailer = WalTailer::new(self.root.clone(), shard).knowing_tip(tip);
        'windows: loop {
            for entry in read_window(&tailer, self.next).await? {
                let Some(entry) = entry else { break 'windows };
                self.next += 1;
                if entry.epoch > epoch {
                    return Err(Error::fenced(format!(
                        "WAL replay aborted: entry at position {} has epoch {}, newer than this writer's epoch {epoch} for shard {shard}; the writer is fenced",
                        entry.position, entry.epoch
                    ))
                    .with_shard(shard));
                }
                let batches: Vec<RecordBatch> = entry
                    .batches
                    .into_iter()
                    .filter(|b| b.num_rows() > 0)
                    .collect();
                if entry.fence_sentinel || batches.is_empty() {
                    continue;
                }
                insert_entry(
                    &mut self.out,
                    entry.position,
                    batches,
                    &self.schema,
                    &self.limits,
                )?;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Replayed {
        let mut out = self.out;
        if out.active.is_empty() {
            out.active_last_entry = 0;
        }
        out
    }
}

fn insert_entry(
    out: &mut Replayed,
    position: u64,
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
    limits: &MemTableLimits,
) -> Result<()> {
    let batches = batches
        .into_iter()
        .map(|b| tombstone::backfill(schema, b))
        .collect::<Result<Vec<_>>>()
        .and_then(|batches| conform_batches(schema, batches))
        .map_err(|e| {
            e.context(format!(
                "WAL entry at position {position} does not match the writer schema"
            ))
        })?;
    if batches.len() > limits.capacity {
        return Err(Error::invalid_config(format!(
            "maxMemtableBatches ({}) is smaller than the {} batches of WAL entry {position}; reopen with a larger maxMemtableBatches",
            limits.capacity,
            batches.len()
        )));
    }
    if limits.no_room_for(&out.active, batches.len()) {
        freeze_active(out, limits);
    }
    let count = batches.len() as u64;
    let sizes: Vec<u64> = batches.iter().map(estimate_batch_bytes).collect();
    let bytes: u64 = sizes.iter().sum();
    if out.active.try_insert(batches, &sizes, out.batches).is_err() {
        return Err(Error::internal("replay lost a capacity race with itself"));
    }
    out.batches += count;
    out.bytes += bytes;
    out.entries += 1;
    out.active_last_entry = position;
    if limits.reached(&out.active) {
        freeze_active(out, limits);
    }
    Ok(())
}

/// Freeze the active MemTable (the same routine as a put's freeze); its
/// last entry is known, so the flush need not ask the WAL queue.
fn freeze_active(out: &mut Replayed, limits: &MemTableLimits) {
    if let Some(table) = freeze(&mut out.active, limits.capacity) {
        out.frozen.push(Frozen {
            table,
            covered_entry: Some(out.active_last_entry),
        });
        out.active_last_entry = 0;
    }
}
