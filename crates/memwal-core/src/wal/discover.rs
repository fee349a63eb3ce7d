//! Finding the WAL tip. Positions are dense (entry N+1 exists only after N),
//! so the first free position can be found by galloping from a known
//! entry and bisecting, instead of listing the whole directory.

use super::FIRST_POSITION;
use crate::error::{Error, Result};
use crate::format::layout::{wal_position_of, ShardLayout};
use crate::store::StorageRoot;

async fn entry_exists(root: &StorageRoot, layout: &ShardLayout, position: u64) -> Result<bool> {
    root.exists(&root.path(&layout.wal_entry(position))).await
}

/// Positions count up by one from 1; a store claiming more is broken.
const MAX_POSITION: u64 = i64::MAX as u64;

/// Positions of every entry present (LIST; order as parsed, unsorted).
pub async fn listed_positions(root: &StorageRoot, layout: &ShardLayout) -> Result<Vec<u64>> {
    let names = root.list_names(&root.path(&layout.wal_dir())).await?;
    Ok(names.iter().filter_map(|n| wal_position_of(n)).collect())
}

/// The first position with no entry. `hint` is a position believed to hold
/// an entry (0 = no idea); a wrong hint only costs a LIST.
pub async fn next_free_position(
    root: &StorageRoot,
    layout: &ShardLayout,
    hint: u64,
) -> Result<u64> {
    if hint < FIRST_POSITION || !entry_exists(root, layout, hint).await? {
        let listed = listed_positions(root, layout).await?;
        return Ok(listed
            .into_iter()
            .max()
            .map_or(FIRST_POSITION, |max| max + 1));
    }
    let mut present = hint;
    let mut step = 1u64;
    let absent = loop {
        let probe = present.saturating_add(step);
        if probe > MAX_POSITION {
            // Only a store that answers every HEAD gets here (the gallop
            // used to spin forever at u64::MAX); one HEAD of a name nobody
            // wrote says so.
            let what = format!("the WAL tip of shard {}", layout.shard_id());
            root.check_reports_absence(&root.path(&layout.wal_dir()), &what)
                .await?;
            return Err(Error::corrupt(format!(
                "WAL of shard {} in '{}' reports an entry past position 2^63-1 ({present})",
                layout.shard_id(),
                root.uri()
            ))
            .with_shard(layout.shard_id()));
        }
        if entry_exists(root, layout, probe).await? {
            present = probe;
            step = step.saturating_mul(2);
        } else {
            break probe;
        }
    };
    let (mut lo, mut hi) = (present, absent);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if entry_exists(root, layout, mid).await? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    async fn fill(root: &StorageRoot, layout: &ShardLayout, upto: u64) {
        for p in 1..=upto {
            root.put(&root.path(&layout.wal_entry(p)), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn empty_wal_starts_at_one() {
        let root = StorageRoot::open("memory://disc-empty").unwrap();
        let layout = ShardLayout::new(uuid::Uuid::new_v4());
        assert_eq!(next_free_position(&root, &layout, 0).await.unwrap(), 1);
        assert_eq!(next_free_position(&root, &layout, 5).await.unwrap(), 1);
    }

    /// The gallop doubled to u64::MAX and then probed it forever when
    /// every HEAD succeeded; now it stops within 64 doublings.
    #[tokio::test]
    async fn a_store_that_finds_every_entry_fails_after_bounded_probes() {
        use object_store::{ObjectStore, PutPayload};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        // Every name exists: a path with no extension would do, but the
        // gallop HEADs real entry names, so answer those from one object.
        #[derive(Debug)]
        struct Everything(Arc<dyn ObjectStore>, object_store::path::Path, AtomicUsize);
        impl std::fmt::Display for Everything {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Everything")
            }
        }
        #[async_trait::async_trait]
        impl ObjectStore for Everything {
            async fn put_opts(
                &self,
                l: &object_store::path::Path,
                p: PutPayload,
                o: object_store::PutOptions,
            ) -> object_store::Result<object_store::PutResult> {
                self.0.put_opts(l, p, o).await
            }
            async fn put_multipart_opts(
                &self,
                l: &object_store::path::Path,
                o: object_store::PutMultipartOptions,
            ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
                self.0.put_multipart_opts(l, o).await
            }
            async fn get_opts(
                &self,
                l: &object_store::path::Path,
                o: object_store::GetOptions,
            ) -> object_store::Result<object_store::GetResult> {
                // Bounded, so that a search that never stops fails the
                // test instead of hanging it.
                if self.2.fetch_add(1, Ordering::Relaxed) >= 10_000 {
                    return self.0.get_opts(l, o).await;
                }
                let mut found = self.0.get_opts(&self.1, o).await?;
                found.meta.location = l.clone();
                Ok(found)
            }
            fn delete_stream(
                &self,
                l: futures::stream::BoxStream<
                    'static,
                    object_store::Result<object_store::path::Path>,
                >,
            ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>
            {
                self.0.delete_stream(l)
            }
            fn list(
                &self,
                p: Option<&object_store::path::Path>,
            ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
            {
                self.0.list(p)
            }
            async fn list_with_delimiter(
                &self,
                p: Option<&object_store::path::Path>,
            ) -> object_store::Result<object_store::ListResult> {
                self.0.list_with_delimiter(p).await
            }
            async fn copy_opts(
                &self,
                f: &object_store::path::Path,
                t: &object_store::path::Path,
                o: object_store::CopyOptions,
            ) -> object_store::Result<()> {
                self.0.copy_opts(f, t, o).await
            }
        }

        let honest = StorageRoot::open("memory://disc-everything").unwrap();
        let layout = ShardLayout::new(uuid::Uuid::new_v4());
        fill(&honest, &layout, 1).await;
        let one = honest.path(&layout.wal_entry(1));
        let liar = Arc::new(Everything(honest.store().clone(), one, AtomicUsize::new(0)));
        let root = StorageRoot::new(liar.clone(), Default::default(), "memory://disc-everything");
        let result = next_free_position(&root, &layout, 1).await;
        let heads = liar.2.load(Ordering::Relaxed);
        assert!(heads <= 70, "{heads} HEADs");
        let err = result.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Io, "{err}");
        assert!(err.message().contains("do not exist"), "{err}");
        assert!(err.message().contains("memory://disc-everything"), "{err}");
    }

    #[tokio::test]
    async fn any_hint_finds_the_same_tip() {
        let root = StorageRoot::open("memory://disc-tip").unwrap();
        let layout = ShardLayout::new(uuid::Uuid::new_v4());
        fill(&root, &layout, 37).await;
        for hint in [0, 1, 2, 17, 36, 37, 38, 1000] {
            assert_eq!(
                next_free_position(&root, &layout, hint).await.unwrap(),
                38,
                "hint {hint}"
            );
        }
    }
}
