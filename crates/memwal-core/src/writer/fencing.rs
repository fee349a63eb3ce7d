//! Where the WAL meets the manifest. `wal` does not read manifests (that
//! would make the two modules depend on each other); the writer owns both
//! and lets its appender ask the manifest whether it has been fenced.

use futures::future::BoxFuture;

use crate::error::Result;
use crate::manifest::ManifestStore;
use crate::wal::FenceCheck;

impl FenceCheck for ManifestStore {
    fn check(&self, epoch: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.check_fenced(epoch).await.map(drop) })
    }
}
