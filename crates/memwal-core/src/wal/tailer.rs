//! Reading a shard's WAL from outside the writer (change data capture,
//! replay tools, other-language readers).

use super::codec::{decode_entry, WalEntry};
use super::discover::{listed_positions, next_free_position};
use super::FIRST_POSITION;
use crate::error::{Error, Result};
use crate::layout::ShardLayout;
use crate::manifest::ManifestStore;
use crate::store::StorageRoot;

/// Read-only access to one shard's WAL entries.
#[derive(Debug, Clone)]
pub struct WalTailer {
    root: StorageRoot,
    manifests: ManifestStore,
}

impl WalTailer {
    pub fn new(root: StorageRoot, shard_id: uuid::Uuid) -> Self {
        let manifests = ManifestStore::new(root.clone(), ShardLayout::new(shard_id), 2);
        Self { root, manifests }
    }

    pub fn shard_id(&self) -> uuid::Uuid {
        self.manifests.layout().shard_id()
    }

    fn layout(&self) -> &ShardLayout {
        self.manifests.layout()
    }

    /// The entry at `position`, or `None` if nothing has been written there.
    pub async fn read_entry(&self, position: u64) -> Result<Option<WalEntry>> {
        if position < FIRST_POSITION {
            return Err(Error::invalid_input(format!(
                "WAL positions start at {FIRST_POSITION}; got {position}"
            )));
        }
        let path = self.root.path(&self.layout().wal_entry(position));
        match self.root.get(&path).await? {
            Some(bytes) => decode_entry(position, bytes)
                .map(Some)
                .map_err(|e| e.with_shard(self.shard_id())),
            None => Ok(None),
        }
    }

    /// The lowest position still stored (1 for an empty WAL).
    pub async fn first_position(&self) -> Result<u64> {
        let listed = listed_positions(&self.root, self.layout()).await?;
        Ok(listed.into_iter().min().unwrap_or(FIRST_POSITION))
    }

    /// The position the next entry will be written at.
    pub async fn next_position(&self) -> Result<u64> {
        let hint = match self.manifests.read_latest().await? {
            Some(m) => m
                .wal_entry_position_last_seen
                .max(m.replay_after_wal_entry_position),
            None => 0,
        };
        next_free_position(&self.root, self.layout(), hint).await
    }
}
