//! Finding the WAL tip. Positions are dense (entry N+1 exists only after N),
//! so the first free position can be found by galloping from a known
//! entry and bisecting, instead of listing the whole directory.

use super::names::parse_bit_reversed_name;
use super::{FIRST_POSITION, WAL_EXT};
use crate::error::Result;
use crate::layout::ShardLayout;
use crate::store::StorageRoot;

async fn entry_exists(root: &StorageRoot, layout: &ShardLayout, position: u64) -> Result<bool> {
    root.exists(&root.path(&layout.wal_entry(position))).await
}

/// Positions of every entry present (LIST; order as parsed, unsorted).
pub async fn listed_positions(root: &StorageRoot, layout: &ShardLayout) -> Result<Vec<u64>> {
    let names = root.list_names(&root.path(&layout.wal_dir())).await?;
    Ok(names
        .iter()
        .filter_map(|n| parse_bit_reversed_name(n, WAL_EXT))
        .collect())
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
