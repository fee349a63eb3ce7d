//! Holes in the WAL (docs/FORMAT.md §5.4): a position above the replay
//! cursor with no entry while a later position holds one. Positions are
//! created in order, so an entry seen *before* a read missed its
//! predecessor proves the predecessor was lost, never merely late. A reader
//! that stopped at a hole would silently drop everything after it, and a
//! writer that appended after it would make that loss permanent; both fail
//! with CORRUPT instead.

use super::appender::obstruction_error;
use super::discover::listed_positions;
use crate::error::{Error, Result};
use crate::format::layout::ShardLayout;
use crate::store::StorageRoot;

/// The error for a hole at `missing` proven by an entry at `later`; it
/// says what sits there instead when that is a directory or a dangling link.
pub fn hole_error(root: &StorageRoot, layout: &ShardLayout, missing: u64, later: u64) -> Error {
    let instead = root
        .non_object_at(&root.path(&layout.wal_entry(missing)))
        .map(|what| format!(" ({what})"))
        .unwrap_or_default();
    Error::corrupt(format!(
        "WAL entry at position {missing} is missing{instead} while position {later} exists: \
         the entries after the hole cannot be replayed in order, so nothing past \
         position {} is read or written (restore the entry, docs/FORMAT.md §5.4)",
        missing - 1
    ))
    .with_shard(layout.shard_id())
}

/// The lowest position in `cursor + 1 ..= max(listed)` that `listed` lacks
/// and that is still absent when looked at again after the LIST (a writer
/// may have created it while the LIST ran), with the highest listed
/// position. `Ok(None)` when the WAL above the cursor is dense.
pub async fn first_hole(
    root: &StorageRoot,
    layout: &ShardLayout,
    listed: &[u64],
    cursor: u64,
) -> Result<Option<(u64, u64)>> {
    let mut above: Vec<u64> = listed.iter().copied().filter(|&p| p > cursor).collect();
    above.sort_unstable();
    let Some(&max) = above.last() else {
        return Ok(None);
    };
    let mut expected = cursor + 1;
    for &present in &above {
        // Every position in expected..present is missing from the LIST.
        // Only one created during the LIST can exist now, so the first that
        // is still absent is the hole; the loop ends at the first one.
        for position in expected..present {
            if !root.exists(&root.path(&layout.wal_entry(position))).await? {
                return Ok(Some((position, max)));
            }
        }
        expected = present + 1;
    }
    Ok(None)
}

/// One LIST of the WAL: CORRUPT if it has a hole above `cursor`, else the
/// highest position listed (0 for an empty WAL).
pub async fn check_dense(root: &StorageRoot, layout: &ShardLayout, cursor: u64) -> Result<u64> {
    let listed = listed_positions(root, layout).await?;
    if let Some((missing, later)) = first_hole(root, layout, &listed, cursor).await? {
        return Err(hole_error(root, layout, missing, later));
    }
    Ok(listed.into_iter().max().unwrap_or(0))
}

/// What a writer checks before it claims the shard: no hole above
/// `cursor`, and nothing that is not an entry sitting at the next position
/// (a directory or dangling link there takes the name of every create, yet
/// no read sees it). Returns the highest position listed.
pub async fn check_before_claim(
    root: &StorageRoot,
    layout: &ShardLayout,
    cursor: u64,
) -> Result<u64> {
    let listed_max = check_dense(root, layout, cursor).await?;
    let next = listed_max.max(cursor) + 1;
    if let Some(what) = root.non_object_at(&root.path(&layout.wal_entry(next))) {
        return Err(obstruction_error(layout, next, &what));
    }
    Ok(listed_max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    async fn with_entries(positions: &[u64]) -> (StorageRoot, ShardLayout) {
        let root = StorageRoot::open("memory://holes").unwrap();
        let layout = ShardLayout::new(uuid::Uuid::new_v4());
        for &p in positions {
            root.put(&root.path(&layout.wal_entry(p)), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        (root, layout)
    }

    #[tokio::test]
    async fn dense_wals_have_no_hole() {
        for (positions, cursor, max) in [
            (&[][..], 0, 0),
            (&[1, 2, 3][..], 0, 3),
            // Entries at or below the cursor may have been removed.
            (&[4, 5][..], 3, 5),
            (&[1, 4, 5][..], 3, 5),
            (&[2][..], 5, 2),
        ] {
            let (root, layout) = with_entries(positions).await;
            assert_eq!(
                check_dense(&root, &layout, cursor).await.unwrap(),
                max,
                "{positions:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_lowest_missing_position_above_the_cursor_is_named() {
        for (positions, cursor, missing) in [
            (&[1, 2, 4, 5][..], 0, 3),
            (&[2, 3][..], 0, 1),
            (&[1, 2, 3, 6][..], 2, 4),
            (&[1, 2, 5, 9][..], 2, 3),
        ] {
            let (root, layout) = with_entries(positions).await;
            let err = check_dense(&root, &layout, cursor).await.unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::Corrupt);
            assert!(
                err.message()
                    .starts_with(&format!("WAL entry at position {missing} is missing")),
                "{positions:?}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn a_position_created_after_the_listing_is_not_a_hole() {
        let (root, layout) = with_entries(&[1, 2, 3]).await;
        // The LIST missed 2 (as a paged listing can while a writer appends),
        // but it exists when looked at again.
        assert_eq!(first_hole(&root, &layout, &[1, 3], 0).await.unwrap(), None);
    }
}
