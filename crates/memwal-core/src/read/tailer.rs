//! Reading a shard's WAL from outside the writer (change data capture,
//! replay tools, other-language readers). It lives in `read`, not `wal`,
//! because it consults the manifest (replay cursor, tip hint): `wal` itself
//! never reads manifests.
//!
//! A read that misses a position must tell the tip (nothing written there
//! yet) from a hole (the entry was lost while later ones exist,
//! docs/FORMAT.md §5.4). The tailer remembers the highest position it has
//! seen: a miss below it is a hole. Above it, a miss is almost always the
//! tip, so the WAL is LISTed at most once per [`RELIST_AFTER`], never on
//! every poll, and less often (up to [`RELIST_AFTER_MAX`]) while the LISTs
//! keep finding nothing past the tip: a follower idle at the tip of a long
//! WAL must not cost a full LIST every few seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::layout::ShardLayout;
use crate::manifest::ManifestStore;
use crate::store::StorageRoot;
use crate::wal::codec::{decode_entry, WalEntry};
use crate::wal::discover::{listed_positions, next_free_position};
use crate::wal::holes::{first_hole, hole_error};
use crate::wal::FIRST_POSITION;

/// How long a LIST of the WAL answers "is anything written past this miss?".
const RELIST_AFTER: Duration = Duration::from_secs(10);
/// The longest that answer is kept, after LISTs that found nothing new.
const RELIST_AFTER_MAX: Duration = Duration::from_secs(600);

/// What every clone of one tailer has learnt about the WAL.
#[derive(Debug, Default)]
struct Known {
    /// Highest position seen holding an entry (0 = none).
    highest: AtomicU64,
    /// A replay cursor read from the manifest; it only ever grows, so a
    /// stale value is a lower bound.
    cursor: AtomicU64,
    /// When the WAL was last LISTed, and how long that answer holds.
    last_list: Mutex<Option<(Instant, Duration)>>,
}

impl Known {
    fn saw(&self, position: u64) {
        self.highest.fetch_max(position, Ordering::AcqRel);
    }

    /// Whether a miss should LIST the WAL now; claims the LIST if so. Each
    /// LIST holds twice as long as the one before, until one finds entries
    /// past the miss ([`Known::listed_news`]).
    fn list_due(&self) -> bool {
        let mut last = self.last_list.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|(at, hold)| at.elapsed() < hold) {
            return false;
        }
        *last = Some((Instant::now(), next_hold(last.map(|(_, hold)| hold))));
        true
    }

    /// A LIST found entries past the miss: list again at the base period.
    fn listed_news(&self) {
        let mut last = self.last_list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, hold)) = last.as_mut() {
            *hold = RELIST_AFTER;
        }
    }
}

/// How long the next LIST holds, after one that held `previous` (`None`:
/// the first LIST).
fn next_hold(previous: Option<Duration>) -> Duration {
    previous.map_or(RELIST_AFTER, |hold| (hold * 2).min(RELIST_AFTER_MAX))
}

/// Read-only access to one shard's WAL entries.
#[derive(Debug, Clone)]
pub struct WalTailer {
    root: StorageRoot,
    manifests: ManifestStore,
    known: Arc<Known>,
}

impl WalTailer {
    pub fn new(root: StorageRoot, shard_id: uuid::Uuid) -> Self {
        let manifests = ManifestStore::new(root.clone(), ShardLayout::new(shard_id), 2);
        Self {
            root,
            manifests,
            known: Arc::default(),
        }
    }

    /// A tailer of an existing shard: NOT_FOUND if it has no manifest version
    /// (every writer claims the shard before it writes an entry). Only the
    /// versions are listed: the WAL stays readable when the latest manifest
    /// does not decode.
    pub async fn open(root: StorageRoot, shard_id: uuid::Uuid) -> Result<Self> {
        let tailer = Self::new(root, shard_id);
        if tailer.manifests.list_versions().await?.is_empty() {
            return Err(Error::not_found(format!(
                "Shard {shard_id} has no manifest under {}",
                tailer.root.uri()
            ))
            .with_shard(shard_id));
        }
        Ok(tailer)
    }

    /// Tell the tailer that every position below `next` holds an entry
    /// right now (a writer that has just found the tip): a miss below it is
    /// a hole, and a miss at or above it needs no LIST for a while.
    pub fn knowing_tip(self, next: u64) -> Self {
        self.known.saw(next.saturating_sub(1));
        *self
            .known
            .last_list
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), RELIST_AFTER));
        self
    }

    pub fn shard_id(&self) -> uuid::Uuid {
        self.manifests.layout().shard_id()
    }

    fn layout(&self) -> &ShardLayout {
        self.manifests.layout()
    }

    async fn fetch(&self, position: u64) -> Result<Option<WalEntry>> {
        let path = self.root.path(&self.layout().wal_entry(position));
        match self.root.get(&path).await? {
            Some(bytes) => {
                let entry =
                    decode_entry(position, bytes).map_err(|e| e.with_shard(self.shard_id()))?;
                self.known.saw(position);
                Ok(Some(entry))
            }
            None => Ok(None),
        }
    }

    /// The entry at `position`, or `None` if nothing has been written there
    /// yet (or it was removed at or below the replay cursor). CORRUPT if the
    /// position is a hole: missing while a later position holds an entry.
    pub async fn read_entry(&self, position: u64) -> Result<Option<WalEntry>> {
        if position < FIRST_POSITION {
            return Err(Error::invalid_input(format!(
                "WAL positions start at {FIRST_POSITION}; got {position}"
            )));
        }
        // Seen before the read below: a later entry that existed before the
        // read proves this one was lost, not late.
        let seen = self.known.highest.load(Ordering::Acquire);
        if let Some(entry) = self.fetch(position).await? {
            return Ok(Some(entry));
        }
        if seen > position {
            return self.missing(position, seen).await;
        }
        if !self.known.list_due() {
            return Ok(None);
        }
        let later = listed_positions(&self.root, self.layout())
            .await?
            .into_iter()
            .max()
            .unwrap_or(0);
        self.known.saw(later);
        if later <= position {
            return Ok(None);
        }
        self.known.listed_news();
        // The LIST ran after the read: the entry may have been written since.
        if let Some(entry) = self.fetch(position).await? {
            return Ok(Some(entry));
        }
        self.missing(position, later).await
    }

    /// `position` is absent while `later` exists: `None` if the replay
    /// cursor covers it (generations hold its rows and it may have been
    /// removed), the entry if a second read finds it (a store may answer a
    /// read with a cached "not found" for a while), else the hole error.
    async fn missing(&self, position: u64, later: u64) -> Result<Option<WalEntry>> {
        if position <= self.known.cursor.load(Ordering::Acquire)
            || position <= self.cursor().await?
        {
            return Ok(None);
        }
        if let Some(entry) = self.fetch(position).await? {
            return Ok(Some(entry));
        }
        Err(hole_error(&self.root, self.layout(), position, later))
    }

    /// The replay cursor of the latest manifest (0 without one).
    async fn cursor(&self) -> Result<u64> {
        let cursor = self
            .manifests
            .read_latest()
            .await?
            .map_or(0, |m| m.replay_after_wal_entry_position);
        self.known.cursor.fetch_max(cursor, Ordering::AcqRel);
        Ok(cursor)
    }

    /// The lowest position still stored (1 for an empty WAL). CORRUPT if
    /// the WAL has a hole above the replay cursor.
    pub async fn first_position(&self) -> Result<u64> {
        let listed = listed_positions(&self.root, self.layout()).await?;
        *self
            .known
            .last_list
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), RELIST_AFTER));
        if let Some(&max) = listed.iter().max() {
            self.known.saw(max);
        }
        let cursor = self.cursor().await?;
        if let Some((missing, later)) =
            first_hole(&self.root, self.layout(), &listed, cursor).await?
        {
            return Err(hole_error(&self.root, self.layout(), missing, later));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_lists_hold_longer_up_to_the_cap_and_news_resets_them() {
        let mut holds = vec![next_hold(None)];
        while holds.len() < 12 {
            holds.push(next_hold(holds.last().copied()));
        }
        assert_eq!(holds[0], RELIST_AFTER);
        assert_eq!(holds[1], RELIST_AFTER * 2);
        assert!(holds.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(holds[11], RELIST_AFTER_MAX);

        let known = Known::default();
        assert!(known.list_due(), "the first miss lists");
        assert!(!known.list_due(), "a fresh LIST answers the next miss");
        *known.last_list.lock().unwrap() = Some((Instant::now(), RELIST_AFTER_MAX));
        known.listed_news();
        let hold = known.last_list.lock().unwrap().map(|(_, hold)| hold);
        assert_eq!(hold, Some(RELIST_AFTER));
    }
}
