//! The appender owns the WAL tip for one writer epoch. Every entry is a
//! create-if-absent write, so two writers can never both land an entry at
//! the same position; the loser learns whether it was fenced by asking the
//! manifest, through the [`FenceCheck`] its owner passes in.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::PutPayload;

use super::codec::encode_fence_sentinel;
use super::discover::next_free_position;
use crate::error::{Error, ErrorCode, Result};
use crate::format::layout::ShardLayout;
use crate::store::{CreateOutcome, StorageRoot};

/// Whether `epoch` still owns the shard: `Ok` if no newer epoch has been
/// claimed, FENCED otherwise. The manifest answers it; the writer, which
/// owns both the manifest and the appender, supplies the implementation,
/// so the WAL never depends on the manifest.
pub trait FenceCheck: std::fmt::Debug + Send + Sync {
    fn check(&self, epoch: u64) -> BoxFuture<'_, Result<()>>;
}

/// Give up re-discovering the tip after this many lost races. With a
/// fence sentinel in place only our own lost acknowledgements can collide,
/// so reaching it means something outside the protocol is writing.
const MAX_POSITION_CONFLICTS: usize = 64;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The error for a name a WAL entry cannot take because something that is
/// not an object sits there (see [`StorageRoot::non_object_at`]). CORRUPT,
/// not IO: retrying cannot help, someone must remove it.
pub fn obstruction_error(layout: &ShardLayout, position: u64, what: &str) -> Error {
    Error::corrupt(format!(
        "Cannot write WAL entry {position}: {what}, not a WAL entry; \
         remove it to let the shard be written again"
    ))
    .with_shard(layout.shard_id())
}

/// How transient store errors are retried at one position.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

enum Slot {
    Ours,
    Taken,
}

/// Appends entries for one epoch at dense, increasing positions.
#[derive(Debug)]
pub struct WalAppender {
    root: StorageRoot,
    layout: ShardLayout,
    fence: Box<dyn FenceCheck>,
    epoch: u64,
    next_position: u64,
    retry: RetryPolicy,
}

impl WalAppender {
    /// Find the tip (starting from `hint`, a position believed to exist)
    /// and prepare to append after it.
    pub async fn open(
        root: StorageRoot,
        layout: ShardLayout,
        fence: impl FenceCheck + 'static,
        epoch: u64,
        hint: u64,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let next_position = next_free_position(&root, &layout, hint).await?;
        // As after a lost position: a newer writer may have claimed and put
        // its sentinel at or before the tip we just found; only the manifest,
        // read after the search, can tell.
        fence.check(epoch).await?;
        Ok(Self {
            root,
            layout,
            fence: Box::new(fence),
            epoch,
            next_position,
            retry,
        })
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The position the next entry will try first.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    /// Write the data-less entry that fences every older epoch: their next
    /// append collides with it and finds our epoch in the manifest.
    pub async fn write_fence_sentinel(&mut self) -> Result<u64> {
        self.append(encode_fence_sentinel(self.epoch)).await
    }

    /// Append one encoded entry; returns its position.
    ///
    /// A taken position means either a newer epoch (FENCED) or that the tip
    /// moved, in which case the tip is found again. Store errors retry the
    /// same position with backoff; when retries run out the error is
    /// returned and the caller must treat the writer as poisoned.
    pub async fn append(&mut self, entry: impl Into<PutPayload>) -> Result<u64> {
        let entry = entry.into();
        let mut conflicts = 0;
        loop {
            let position = self.next_position;
            match self.create_at(position, &entry).await? {
                Slot::Ours => {
                    self.next_position = position + 1;
                    return Ok(position);
                }
                Slot::Taken => {
                    conflicts += 1;
                    if conflicts > MAX_POSITION_CONFLICTS {
                        return Err(Error::io(format!(
                            "WAL append lost {MAX_POSITION_CONFLICTS} position races in a row at epoch {}; \
                             another process is writing this shard's WAL without claiming it",
                            self.epoch
                        ))
                        .with_shard(self.layout.shard_id()));
                    }
                    let (root, layout) = (&self.root, &self.layout);
                    let next = self
                        .retried(position, || next_free_position(root, layout, position))
                        .await?;
                    if next <= position {
                        // The name is taken, yet no read sees an entry there.
                        let path = root.path(&layout.wal_entry(position));
                        if let Some(what) = root.non_object_at(&path) {
                            return Err(obstruction_error(layout, position, &what));
                        }
                    }
                    // Look at the manifest only after finding the new tip. A newer
                    // writer claims its epoch before it writes its sentinel, so if
                    // that sentinel is among the entries just skipped, its epoch is
                    // in the manifest by now. Checking first would let us append
                    // past a sentinel written in between, where no replay looks.
                    let epoch = self.epoch;
                    let fence = &self.fence;
                    self.retried(position, || fence.check(epoch)).await?;
                    self.next_position = next;
                }
            }
        }
    }

    async fn create_at(&self, position: u64, entry: &PutPayload) -> Result<Slot> {
        let path = self.root.path(&self.layout.wal_entry(position));
        let mut failures = 0u32;
        loop {
            let error = match self.root.put_if_absent(&path, entry.clone()).await {
                Ok(CreateOutcome::Created) => return Ok(Slot::Ours),
                Ok(CreateOutcome::AlreadyExists) if failures == 0 => return Ok(Slot::Taken),
                // An earlier attempt failed ambiguously and may have landed;
                // a failure to look is one more failed attempt, not a verdict.
                Ok(CreateOutcome::AlreadyExists) => match self.root.get(&path).await {
                    Ok(Some(stored)) => return Ok(Self::owner(&stored, entry)),
                    Ok(None) => Error::io(format!("{path} vanished after a taken create")),
                    Err(err) => err,
                },
                Err(err) => err,
            };
            failures += 1;
            // The failed write may still have landed: look before retrying.
            if let Ok(Some(stored)) = self.root.get(&path).await {
                return Ok(Self::owner(&stored, entry));
            }
            self.back_off(position, failures, error).await?;
        }
    }

    /// Run a store read of the append protocol, retrying store errors like
    /// a failed write; verdicts (FENCED, CORRUPT, ...) pass straight through.
    async fn retried<T, F, Fut>(&self, position: u64, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut failures = 0u32;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) if matches!(err.code(), ErrorCode::Io | ErrorCode::NotFound) => {
                    failures += 1;
                    self.back_off(position, failures, err).await?;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Wait before attempt `failures + 1`, or give up with the error that
    /// poisons the writer once the retries are spent.
    async fn back_off(&self, position: u64, failures: u32, error: Error) -> Result<()> {
        if failures > self.retry.max_retries {
            let code = if error.code() == ErrorCode::NotFound {
                ErrorCode::Io
            } else {
                error.code()
            };
            return Err(Error::new(
                code,
                format!(
                    "WAL append at position {position} failed after {failures} attempts; \
                     the writer is poisoned and must be reopened: {}",
                    error.message()
                ),
            )
            .with_shard(self.layout.shard_id()));
        }
        tracing::warn!(
            shard = %self.layout.shard_id(),
            position,
            attempt = failures,
            "WAL append failed, retrying: {error}"
        );
        tokio::time::sleep(self.retry.delay(failures)).await;
        Ok(())
    }

    /// Entries carry their writer's epoch, so equal bytes mean our write.
    fn owner(stored: &Bytes, entry: &PutPayload) -> Slot {
        let mut rest = &stored[..];
        let same = stored.len() == entry.content_length()
            && entry
                .iter()
                .all(|chunk| match rest.split_at_checked(chunk.len()) {
                    Some((head, tail)) if head == &chunk[..] => {
                        rest = tail;
                        true
                    }
                    _ => false,
                });
        if same {
            Slot::Ours
        } else {
            Slot::Taken
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ManifestStore;
    use crate::wal::codec::decode_entry;

    async fn setup(name: &str) -> (StorageRoot, ManifestStore) {
        let root = StorageRoot::open(&format!("memory://{name}")).unwrap();
        let manifests = ManifestStore::new(root.clone(), ShardLayout::new(uuid::Uuid::new_v4()), 2);
        (root, manifests)
    }

    /// An appender for `epoch` at the start of the WAL, fenced by `manifests`.
    async fn open_appender(
        root: &StorageRoot,
        manifests: &ManifestStore,
        epoch: u64,
    ) -> WalAppender {
        let layout = manifests.layout().clone();
        WalAppender::open(root.clone(), layout, manifests.clone(), epoch, 0, RETRY)
            .await
            .unwrap()
    }

    const RETRY: RetryPolicy = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
    };

    #[test]
    fn owner_compares_stored_bytes_with_every_chunk_of_the_entry() {
        let entry: PutPayload = [Bytes::from_static(b"head"), Bytes::from_static(b"body")]
            .into_iter()
            .collect();
        let ours = |stored: &'static [u8]| {
            matches!(
                WalAppender::owner(&Bytes::from_static(stored), &entry),
                Slot::Ours
            )
        };
        assert!(ours(b"headbody"));
        assert!(!ours(b"headbodx"));
        assert!(!ours(b"headbod"));
        assert!(!ours(b"headbodyy"));
        assert!(!ours(b""));
    }

    #[tokio::test]
    async fn appends_are_dense_from_one() {
        let (root, manifests) = setup("app-dense").await;
        let epoch = manifests.claim_epoch(0).await.unwrap().writer_epoch;
        let mut app = open_appender(&root, &manifests, epoch).await;
        for expected in 1..=3 {
            assert_eq!(
                app.append(encode_fence_sentinel(epoch)).await.unwrap(),
                expected
            );
        }
    }

    #[tokio::test]
    async fn a_newer_epoch_sentinel_fences_the_old_appender() {
        let (root, manifests) = setup("app-fence").await;
        let old_epoch = manifests.claim_epoch(0).await.unwrap().writer_epoch;
        let mut old = open_appender(&root, &manifests, old_epoch).await;
        assert_eq!(
            old.append(encode_fence_sentinel(old_epoch)).await.unwrap(),
            1
        );

        let new_epoch = manifests.claim_epoch(0).await.unwrap().writer_epoch;
        let mut new = open_appender(&root, &manifests, new_epoch).await;
        assert_eq!(new.write_fence_sentinel().await.unwrap(), 2);

        let err = old
            .append(encode_fence_sentinel(old_epoch))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fenced);
        assert!(
            err.message()
                .starts_with("Writer fenced: local epoch 1 < stored epoch 2"),
            "{err}"
        );
        let stored = root
            .get(&root.path(&manifests.layout().wal_entry(2)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(decode_entry(2, stored).unwrap().epoch, new_epoch);
    }

    #[tokio::test]
    async fn a_stale_tip_is_rediscovered_within_the_same_epoch() {
        let (root, manifests) = setup("app-stale").await;
        let epoch = manifests.claim_epoch(0).await.unwrap().writer_epoch;
        let mut a = open_appender(&root, &manifests, epoch).await;
        let mut b = open_appender(&root, &manifests, epoch).await;
        assert_eq!(a.append(encode_fence_sentinel(epoch)).await.unwrap(), 1);
        assert_eq!(b.append(encode_fence_sentinel(epoch)).await.unwrap(), 2);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(50),
        };
        assert_eq!(p.delay(1), Duration::from_millis(50));
        assert_eq!(p.delay(2), Duration::from_millis(100));
        assert_eq!(p.delay(3), Duration::from_millis(200));
        assert_eq!(p.delay(30), MAX_BACKOFF);
    }
}
