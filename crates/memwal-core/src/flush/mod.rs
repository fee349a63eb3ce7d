//! Turning a frozen MemTable into a flushed generation: its Parquet file
//! first, then the manifest commit that makes it part of the shard; the
//! scheduler runs both for every MemTable the writer freezes.

mod encoder_threads;
mod parquet_file;
pub mod scheduler;
pub mod writable;

pub use parquet_file::{write_generation, FlushCompression, MAX_PAGE_BUFFER_BYTES};
pub use scheduler::{FlushHost, Flusher};

use crate::error::Result;
use crate::manifest::{FlushedGeneration, ManifestStore, ShardManifest};

/// Record `generation` in the manifest and move the replay cursor to
/// `covered_entry`, the WAL position whose entries the generation holds.
///
/// The cursor never moves backwards, and generations commit one at a time
/// in order (the caller's flush task guarantees it), so no uncommitted
/// generation is ever skipped on replay.
pub async fn commit_generation(
    manifests: &ManifestStore,
    epoch: u64,
    generation: FlushedGeneration,
    covered_entry: u64,
) -> Result<ShardManifest> {
    manifests
        .commit_update_if(epoch, |current| {
            // An earlier attempt whose commit landed but reported an error
            // already listed this generation; never list it twice.
            if current
                .flushed_generations
                .iter()
                .any(|g| g.generation == generation.generation)
            {
                return None;
            }
            let mut next = current.clone();
            next.replay_after_wal_entry_position =
                current.replay_after_wal_entry_position.max(covered_entry);
            next.wal_entry_position_last_seen =
                current.wal_entry_position_last_seen.max(covered_entry);
            next.current_generation = current.current_generation.max(generation.generation + 1);
            next.flushed_generations.push(generation.clone());
            Some(next)
        })
        .await
}
