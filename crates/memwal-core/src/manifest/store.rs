//! Reading and writing manifest versions with create-if-absent semantics.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::future::try_join_all;
use object_store::path::Path;
use prost::Message;

use super::proto::ShardManifest;
use crate::error::{Error, Result};
use crate::format::layout::{manifest_version_of, ShardLayout};
use crate::store::{CreateOutcome, StorageRoot};

const MAX_CLAIM_ATTEMPTS: usize = 16;
const MAX_COMMIT_ATTEMPTS: usize = 10;
/// Versions found by HEAD past the starting point before a LIST is asked.
const PROBE_BUDGET: u64 = 64;
/// LISTs per search; more means the manifest grows faster than it is read.
const MAX_LISTINGS: u32 = 4;

#[derive(serde::Serialize, serde::Deserialize)]
struct VersionHint {
    version: u64,
}

/// The manifest directory of one shard.
#[derive(Debug, Clone)]
pub struct ManifestStore {
    root: StorageRoot,
    layout: ShardLayout,
    scan_batch_size: usize,
}

impl ManifestStore {
    pub fn new(root: StorageRoot, layout: ShardLayout, scan_batch_size: usize) -> Self {
        Self {
            root,
            layout,
            scan_batch_size: scan_batch_size.max(1),
        }
    }

    pub fn layout(&self) -> &ShardLayout {
        &self.layout
    }

    fn version_path(&self, version: u64) -> Path {
        self.root.path(&self.layout.manifest_version(version))
    }

    fn hint_path(&self) -> Path {
        self.root.path(&self.layout.version_hint())
    }

    fn shard_error(&self, err: Error) -> Error {
        err.with_shard(self.layout.shard_id())
    }

    /// Read and validate one version; `None` if it does not exist.
    pub async fn read_version(&self, version: u64) -> Result<Option<ShardManifest>> {
        let Some(bytes) = self.root.get(&self.version_path(version)).await? else {
            return Ok(None);
        };
        self.decode(version, &bytes).map(Some)
    }

    fn decode(&self, version: u64, bytes: &[u8]) -> Result<ShardManifest> {
        decode_manifest(&self.layout.shard_id(), version, bytes)
    }

    /// The version the hint names (1 when it is missing or unreadable: a
    /// wrong hint only costs probes). A store that fails the read fails
    /// the search, rather than spending its whole retry budget twice.
    async fn read_hint(&self) -> Result<u64> {
        Ok(match self.root.get(&self.hint_path()).await? {
            Some(bytes) => serde_json::from_slice::<VersionHint>(&bytes)
                .map(|h| h.version.max(1))
                .unwrap_or(1),
            None => 1,
        })
    }

    /// The highest existing version, or 0 for a shard with no manifest.
    ///
    /// Starts from the hint, then probes `scan_batch_size` versions ahead
    /// concurrently per round until a round finds nothing.
    pub async fn latest_version(&self) -> Result<u64> {
        let hint = self.read_hint().await?;
        let mut latest = if self.root.exists(&self.version_path(hint)).await? {
            hint
        } else if hint > 1 && self.root.exists(&self.version_path(1)).await? {
            1
        } else {
            // No hint to trust and no version 1: the shard is new, unless old
            // versions were removed. One LIST tells them apart.
            match self.list_versions().await?.last() {
                Some(&listed) => listed,
                None => return Ok(0),
            }
        };
        // HEADs alone cannot tell a long run of versions from a store that
        // answers every HEAD; past a budget a LIST (and a HEAD of a name
        // nobody wrote) says where the manifest really ends.
        let mut probed_from = latest;
        let mut listings = 0;
        loop {
            if latest - probed_from >= PROBE_BUDGET {
                latest = self.reconcile_with_listing(latest, &mut listings).await?;
                probed_from = latest;
            }
            if latest > MAX_COUNTER {
                return Err(self.shard_error(Error::corrupt(format!(
                    "Manifest version {latest} of shard {} is beyond 2^63-1",
                    self.layout.shard_id()
                ))));
            }
            let candidates: Vec<u64> =
                (latest + 1..=latest + self.scan_batch_size as u64).collect();
            let found = self.existing(&candidates).await?;
            let Some(&max) = found.last() else {
                return Ok(latest);
            };
            let expected = max - latest;
            if found.len() as u64 != expected {
                // A concurrent writer can make a later HEAD hit while an earlier
                // one missed; ask again before calling it a gap.
                let missing: Vec<u64> = (latest + 1..max).filter(|v| !found.contains(v)).collect();
                let recheck = self.existing(&missing).await?;
                if recheck.len() != missing.len() {
                    let hole = missing
                        .iter()
                        .find(|v| !recheck.contains(v))
                        .copied()
                        .unwrap_or(0);
                    return Err(self.shard_error(Error::corrupt(format!(
                        "Manifest version gap in shard {}: version {max} exists but version {hole} is missing",
                        self.layout.shard_id()
                    ))));
                }
            }
            latest = max;
        }
    }

    /// The probes found `probed`, far past where they started: trust it only
    /// if the store can say "not found" and a LIST shows at least as much.
    async fn reconcile_with_listing(&self, probed: u64, listings: &mut u32) -> Result<u64> {
        let shard = self.layout.shard_id();
        let dir = self.root.path(&self.layout.manifest_dir());
        let what = format!("the latest manifest of shard {shard}");
        self.root
            .check_reports_absence(&dir, &what)
            .await
            .map_err(|e| self.shard_error(e))?;
        *listings += 1;
        let listed = self.list_versions().await?.last().copied().unwrap_or(0);
        if listed < probed {
            return Err(self.shard_error(Error::io(format!(
                "Storage root '{}' is inconsistent: HEAD finds manifest version {probed} of \
                 shard {shard} but LIST shows {}",
                self.root.uri(),
                if listed == 0 {
                    "none".to_string()
                } else {
                    format!("only up to {listed}")
                }
            ))));
        }
        if *listings > MAX_LISTINGS {
            return Err(self.shard_error(Error::io(format!(
                "Manifest of shard {shard} in '{}' kept growing while its latest version was \
                 sought ({listed} versions after {MAX_LISTINGS} listings)",
                self.root.uri()
            ))));
        }
        Ok(listed)
    }

    async fn existing(&self, versions: &[u64]) -> Result<BTreeSet<u64>> {
        let checks = versions.iter().map(|&v| async move {
            Ok::<_, Error>(self.root.exists(&self.version_path(v)).await?.then_some(v))
        });
        Ok(try_join_all(checks).await?.into_iter().flatten().collect())
    }

    /// The newest manifest, or `None` for a shard nobody has claimed.
    pub async fn read_latest(&self) -> Result<Option<ShardManifest>> {
        let version = self.latest_version().await?;
        if version == 0 {
            return Ok(None);
        }
        match self.read_version(version).await? {
            Some(m) => Ok(Some(m)),
            None => Err(self.shard_error(Error::corrupt(format!(
                "Manifest version {version} of shard {} vanished while reading",
                self.layout.shard_id()
            )))),
        }
    }

    /// Every manifest version present, ascending (a LIST).
    pub async fn list_versions(&self) -> Result<Vec<u64>> {
        let dir = self.root.path(&self.layout.manifest_dir());
        let mut versions: Vec<u64> = self
            .root
            .list_names(&dir)
            .await?
            .iter()
            .filter_map(|n| manifest_version_of(n))
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// Create `manifest.version`; `false` if that version already exists.
    ///
    /// A store error is ambiguous (the object may have landed), so the
    /// version is read back: our own bytes there mean success.
    ///
    /// Reading back only proves authorship when no other writer could have
    /// produced the same bytes; two racing claims of one epoch do, so they
    /// pass `unique_content = false` and treat an ambiguous write as failed.
    pub async fn write(&self, manifest: &ShardManifest, unique_content: bool) -> Result<bool> {
        let bytes = Bytes::from(manifest.encode_to_vec());
        let path = self.version_path(manifest.version);
        let outcome = match self.root.put_if_absent(&path, bytes.clone()).await {
            Ok(outcome) => outcome,
            Err(err) if !unique_content => return Err(self.shard_error(err)),
            Err(err) => match self.root.get(&path).await {
                Ok(Some(stored)) if stored == bytes => CreateOutcome::Created,
                Ok(Some(_)) => CreateOutcome::AlreadyExists,
                _ => return Err(self.shard_error(err)),
            },
        };
        match outcome {
            CreateOutcome::Created => {
                let hint = serde_json::to_vec(&VersionHint {
                    version: manifest.version,
                })
                .expect("hint serializes");
                if let Err(err) = self.root.put(&self.hint_path(), Bytes::from(hint)).await {
                    tracing::warn!(shard = %self.layout.shard_id(), "version hint not updated: {err}");
                }
                Ok(true)
            }
            CreateOutcome::AlreadyExists => Ok(false),
        }
    }

    /// Take ownership of the shard: write version+1 with epoch+1.
    pub async fn claim_epoch(&self, shard_spec_id: u32) -> Result<ShardManifest> {
        let shard = self.layout.shard_id();
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            let next = match self.read_latest().await? {
                Some(current) => {
                    if current.is_sealed() {
                        return Err(self.shard_error(Error::invalid_input(format!(
                            "Shard {shard} is sealed; refusing to claim it"
                        ))));
                    }
                    if !current.has_known_status() {
                        // A newer format's state: claiming could break its rules.
                        return Err(self.shard_error(Error::invalid_input(format!(
                            "Shard {shard} has manifest status {}, which this version of memwal \
                             does not know; refusing to claim it",
                            current.status
                        ))));
                    }
                    ShardManifest {
                        version: current.version + 1,
                        writer_epoch: current.writer_epoch + 1,
                        ..current
                    }
                }
                None => ShardManifest::fresh(shard, shard_spec_id, 1),
            };
            if self.write(&next, false).await? {
                return Ok(next);
            }
            if let Some(latest) = self.read_latest().await? {
                if latest.writer_epoch >= next.writer_epoch {
                    return Err(self.shard_error(Error::fenced(format!(
                        "Another writer claimed epoch {} for shard {shard} first",
                        latest.writer_epoch
                    ))));
                }
            }
        }
        Err(self.shard_error(Error::io(format!(
            "Could not claim shard {shard}: manifest kept changing over {MAX_CLAIM_ATTEMPTS} attempts"
        ))))
    }

    /// The latest manifest, or FENCED if a newer epoch owns the shard.
    pub async fn check_fenced(&self, local_epoch: u64) -> Result<ShardManifest> {
        let shard = self.layout.shard_id();
        let latest = self.read_latest().await?.ok_or_else(|| {
            self.shard_error(Error::not_found(format!("Shard {shard} has no manifest")))
        })?;
        if latest.writer_epoch > local_epoch {
            return Err(self.shard_error(fenced_error(local_epoch, latest.writer_epoch, &shard)));
        }
        Ok(latest)
    }

    /// Write a new version derived from the latest one, as the owner of `local_epoch`.
    pub async fn commit_update<F>(&self, local_epoch: u64, mut update: F) -> Result<ShardManifest>
    where
        F: FnMut(&ShardManifest) -> ShardManifest,
    {
        self.commit_update_if(local_epoch, |current| Some(update(current)))
            .await
    }

    /// Like [`Self::commit_update`], but `update` may return `None` when the
    /// latest manifest already says what it wanted (nothing is written).
    pub async fn commit_update_if<F>(
        &self,
        local_epoch: u64,
        mut update: F,
    ) -> Result<ShardManifest>
    where
        F: FnMut(&ShardManifest) -> Option<ShardManifest>,
    {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let current = self.check_fenced(local_epoch).await?;
            let Some(mut next) = update(&current) else {
                return Ok(current);
            };
            next.version = current.version + 1;
            next.writer_epoch = local_epoch;
            if self.write(&next, true).await? {
                return Ok(next);
            }
        }
        Err(self.shard_error(Error::io(format!(
            "Manifest commit for shard {} lost {MAX_COMMIT_ATTEMPTS} races in a row",
            self.layout.shard_id()
        ))))
    }
}

/// Decode the bytes stored as manifest `version` of `shard` and check that
/// they describe that version of that shard. Anything else is `CORRUPT`.
pub fn decode_manifest(shard: &uuid::Uuid, version: u64, bytes: &[u8]) -> Result<ShardManifest> {
    let corrupt = |what: String| {
        Error::corrupt(format!(
            "Manifest version {version} of shard {shard} is corrupt: {what}"
        ))
        .with_shard(shard)
    };
    let manifest = ShardManifest::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
    if manifest.version > MAX_COUNTER || manifest.writer_epoch > MAX_COUNTER {
        return Err(corrupt(format!(
            "version {} or epoch {} is beyond 2^63-1",
            manifest.version, manifest.writer_epoch
        )));
    }
    if manifest.version != version {
        return Err(corrupt(format!("it records version {}", manifest.version)));
    }
    match manifest.shard_uuid() {
        None => return Err(corrupt("missing or malformed shard_id".to_string())),
        Some(id) if id != *shard => {
            return Err(corrupt(format!("it belongs to shard {id}")));
        }
        Some(_) => {}
    }
    // Writers and readers count up from these too (the replay start, the
    // WAL tip probe, new MemTable generations).
    for (name, value) in [
        (
            "replay_after_wal_entry_position",
            manifest.replay_after_wal_entry_position,
        ),
        (
            "wal_entry_position_last_seen",
            manifest.wal_entry_position_last_seen,
        ),
        ("current_generation", manifest.current_generation),
    ] {
        if value > MAX_COUNTER {
            return Err(corrupt(format!("{name} {value} is beyond 2^63-1")));
        }
    }
    Ok(manifest)
}

/// Versions and epochs only ever count up by one; anything past this is
/// damage, and refusing it keeps every `+ 1` and probe from overflowing.
const MAX_COUNTER: u64 = i64::MAX as u64;

/// The FENCED error for a writer whose epoch a newer claim passed
/// (docs/FORMAT.md, section 7.5); the wording is part of the API (README, "Errors").
pub fn fenced_error(local_epoch: u64, stored_epoch: u64, shard: &uuid::Uuid) -> Error {
    Error::fenced(format!(
        "Writer fenced: local epoch {local_epoch} < stored epoch {stored_epoch} for shard {shard}"
    ))
    .with_shard(shard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use object_store::{ObjectStore, ObjectStoreExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn store(name: &str) -> ManifestStore {
        let root = StorageRoot::open(&format!("memory://{name}")).unwrap();
        ManifestStore::new(root, ShardLayout::new(uuid::Uuid::new_v4()), 2)
    }

    #[tokio::test]
    async fn fresh_shard_has_no_manifest_and_first_claim_is_epoch_one() {
        let s = store("m-fresh");
        assert_eq!(s.read_latest().await.unwrap(), None);
        let m = s.claim_epoch(0).await.unwrap();
        assert_eq!((m.version, m.writer_epoch, m.current_generation), (1, 1, 1));
        assert_eq!(s.read_latest().await.unwrap(), Some(m));
    }

    #[tokio::test]
    async fn each_claim_bumps_version_and_epoch() {
        let s = store("m-claims");
        for expected in 1..=5 {
            let m = s.claim_epoch(0).await.unwrap();
            assert_eq!((m.version, m.writer_epoch), (expected, expected));
        }
        assert_eq!(s.list_versions().await.unwrap(), vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn latest_is_found_without_the_hint() {
        let s = store("m-nohint");
        for _ in 0..7 {
            s.claim_epoch(0).await.unwrap();
        }
        s.root.store().delete(&s.hint_path()).await.unwrap();
        assert_eq!(s.latest_version().await.unwrap(), 7);
        // A stale hint is only a starting point.
        s.root
            .put(&s.hint_path(), Bytes::from_static(br#"{"version":3}"#))
            .await
            .unwrap();
        assert_eq!(s.latest_version().await.unwrap(), 7);
        s.root
            .put(&s.hint_path(), Bytes::from_static(b"garbage"))
            .await
            .unwrap();
        assert_eq!(s.latest_version().await.unwrap(), 7);
    }

    #[tokio::test]
    async fn removed_early_versions_do_not_make_the_shard_look_new() {
        let s = store("m-removed");
        for _ in 0..3 {
            s.claim_epoch(0).await.unwrap();
        }
        s.root.store().delete(&s.version_path(1)).await.unwrap();
        s.root.store().delete(&s.hint_path()).await.unwrap();
        assert_eq!(s.latest_version().await.unwrap(), 3);
        assert_eq!(s.claim_epoch(0).await.unwrap().writer_epoch, 4);
    }

    #[tokio::test]
    async fn commit_update_if_writes_nothing_when_told_so() {
        let s = store("m-noop");
        let m = s.claim_epoch(0).await.unwrap();
        let same = s.commit_update_if(m.writer_epoch, |_| None).await.unwrap();
        assert_eq!(same, m);
        assert_eq!(s.list_versions().await.unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn check_fenced_and_commit_refuse_an_older_epoch() {
        let s = store("m-fence");
        let a = s.claim_epoch(0).await.unwrap();
        let b = s.claim_epoch(0).await.unwrap();
        assert_eq!(s.check_fenced(b.writer_epoch).await.unwrap().version, 2);
        let err = s.check_fenced(a.writer_epoch).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fenced);
        assert_eq!(
            err.message(),
            format!(
                "Writer fenced: local epoch 1 < stored epoch 2 for shard {}",
                s.layout.shard_id()
            )
        );
        let err = s
            .commit_update(a.writer_epoch, |m| m.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fenced);
        let m = s
            .commit_update(b.writer_epoch, |m| ShardManifest {
                replay_after_wal_entry_position: 4,
                ..m.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            (m.version, m.writer_epoch, m.replay_after_wal_entry_position),
            (3, 2, 4)
        );
    }

    #[tokio::test]
    async fn sealed_shard_refuses_claims() {
        let s = store("m-sealed");
        let m = s.claim_epoch(0).await.unwrap();
        s.commit_update(m.writer_epoch, |m| ShardManifest {
            status: super::super::ShardStatus::Sealed as i32,
            ..m.clone()
        })
        .await
        .unwrap();
        assert_eq!(
            s.claim_epoch(0).await.unwrap_err().code(),
            ErrorCode::InvalidInput
        );
    }

    #[tokio::test]
    async fn an_unknown_status_from_a_newer_format_refuses_claims() {
        let s = store("m-status");
        let m = s.claim_epoch(0).await.unwrap();
        s.commit_update(m.writer_epoch, |m| ShardManifest {
            status: 2,
            ..m.clone()
        })
        .await
        .unwrap();
        let err = s.claim_epoch(0).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert!(err.message().contains("status 2"), "{err}");
    }

    #[tokio::test]
    async fn epochs_and_versions_near_u64_max_are_corrupt_not_overflows() {
        let s = store("m-overflow");
        let m = s.claim_epoch(0).await.unwrap();
        let huge = ShardManifest {
            version: 2,
            writer_epoch: u64::MAX,
            ..m.clone()
        };
        s.root
            .put(&s.version_path(2), Bytes::from(huge.encode_to_vec()))
            .await
            .unwrap();
        assert_eq!(
            s.claim_epoch(0).await.unwrap_err().code(),
            ErrorCode::Corrupt
        );

        let s = store("m-overflow-version");
        let m = s.claim_epoch(0).await.unwrap();
        let last = ShardManifest {
            version: u64::MAX,
            ..m.clone()
        };
        s.root
            .put(&s.version_path(u64::MAX), Bytes::from(last.encode_to_vec()))
            .await
            .unwrap();
        s.root
            .put(
                &s.hint_path(),
                Bytes::from(format!("{{\"version\":{}}}", u64::MAX)),
            )
            .await
            .unwrap();
        assert_eq!(
            s.latest_version().await.unwrap_err().code(),
            ErrorCode::Corrupt
        );
        assert_eq!(
            s.claim_epoch(0).await.unwrap_err().code(),
            ErrorCode::Corrupt
        );
    }

    #[tokio::test]
    async fn garbage_wrong_version_and_foreign_shard_are_corrupt() {
        let s = store("m-corrupt");
        s.claim_epoch(0).await.unwrap();
        s.root
            .put(&s.version_path(2), Bytes::from_static(b"\xff\xff\xff"))
            .await
            .unwrap();
        let err = s.read_latest().await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");

        let s = store("m-wrongversion");
        let m = s.claim_epoch(0).await.unwrap();
        let liar = ShardManifest {
            version: 9,
            ..m.clone()
        };
        s.root
            .put(&s.version_path(2), Bytes::from(liar.encode_to_vec()))
            .await
            .unwrap();
        assert!(s
            .read_latest()
            .await
            .unwrap_err()
            .message()
            .contains("records version 9"));

        let s = store("m-foreign");
        let other = ShardManifest::fresh(uuid::Uuid::new_v4(), 0, 1);
        s.root
            .put(&s.version_path(1), Bytes::from(other.encode_to_vec()))
            .await
            .unwrap();
        assert!(s
            .read_latest()
            .await
            .unwrap_err()
            .message()
            .contains("belongs to shard"));
    }

    /// Like version and epoch above: a replay cursor, WAL hint or generation
    /// of u64::MAX decoded fine, then overflowed where the writer and the
    /// shard reader add 1 to it (the arithmetic fuzz/fuzz_targets/manifest.rs
    /// repeats on every manifest it decodes).
    #[test]
    fn wal_cursors_and_generation_beyond_2_63_are_corrupt() {
        let shard = uuid::Uuid::new_v4();
        let fresh = ShardManifest::fresh(shard, 0, 1);
        let setters: [fn(&mut ShardManifest, u64); 3] = [
            |m, v| m.replay_after_wal_entry_position = v,
            |m, v| m.wal_entry_position_last_seen = v,
            |m, v| m.current_generation = v,
        ];
        for set in setters {
            let mut m = fresh.clone();
            set(&mut m, i64::MAX as u64);
            assert_eq!(decode_manifest(&shard, 1, &m.encode_to_vec()).unwrap(), m);
            for value in [i64::MAX as u64 + 1, u64::MAX] {
                set(&mut m, value);
                let err = decode_manifest(&shard, 1, &m.encode_to_vec()).unwrap_err();
                assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
                assert!(err.message().contains("beyond 2^63-1"), "{err}");
            }
        }
    }

    /// A store that says every object exists (a misconfigured endpoint or
    /// proxy): the version search ran forever, 315k HEADs in 45 s.
    const LIAR_LIMIT: usize = 10_000;

    /// A store that says every object exists (a misconfigured endpoint or
    /// proxy): the version search ran forever, 315k HEADs in 45 s. Its
    /// first LIAR_LIMIT HEADs answer with the metadata of `.1`, an object
    /// that does exist.
    #[derive(Debug)]
    struct EveryHeadSucceeds(Arc<dyn ObjectStore>, Path, AtomicUsize);

    impl std::fmt::Display for EveryHeadSucceeds {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("EveryHeadSucceeds")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for EveryHeadSucceeds {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.0.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.0.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            // Bounded, so that a search that never stops fails the test
            // instead of hanging it.
            if options.head && self.2.fetch_add(1, Ordering::Relaxed) < LIAR_LIMIT {
                let mut found = self.0.get_opts(&self.1, options).await?;
                found.meta.location = location.clone();
                return Ok(found);
            }
            self.0.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
            self.0.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.0.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.0.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.0.copy_opts(from, to, options).await
        }
    }

    #[tokio::test]
    async fn a_store_where_every_head_succeeds_fails_the_search_after_bounded_probes() {
        let honest = store("m-every-head");
        honest.claim_epoch(0).await.unwrap();
        let liar = Arc::new(EveryHeadSucceeds(
            honest.root.store().clone(),
            honest.version_path(1),
            AtomicUsize::new(0),
        ));
        let s = ManifestStore::new(
            StorageRoot::new(liar.clone(), Path::default(), "memory://m-every-head"),
            honest.layout.clone(),
            2,
        );
        let result = s.latest_version().await;
        let heads = liar.2.load(Ordering::Relaxed);
        assert!(heads <= 72, "{heads} HEADs");
        let err = result.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Io, "{err}");
        assert!(err.message().contains("memory://m-every-head"), "{err}");
        assert!(err.message().contains("do not exist"), "{err}");
    }

    #[tokio::test]
    async fn a_long_run_past_a_stale_hint_is_found_through_one_listing() {
        let s = store("m-long-run");
        for _ in 0..150 {
            s.claim_epoch(0).await.unwrap();
        }
        s.root
            .put(&s.hint_path(), Bytes::from_static(br#"{"version":1}"#))
            .await
            .unwrap();
        assert_eq!(s.latest_version().await.unwrap(), 150);
    }

    #[tokio::test]
    async fn a_version_gap_is_reported() {
        let s = store("m-gap");
        let m = s.claim_epoch(0).await.unwrap();
        let skipped = ShardManifest {
            version: 3,
            ..m.clone()
        };
        s.root
            .put(&s.version_path(3), Bytes::from(skipped.encode_to_vec()))
            .await
            .unwrap();
        let err = s.latest_version().await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt);
        assert!(
            err.message()
                .contains("version 3 exists but version 2 is missing"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn racing_claims_give_distinct_epochs() {
        let s = store("m-race");
        let claims = futures::future::join_all((0..8).map(|_| s.claim_epoch(0))).await;
        let mut epochs: Vec<u64> = claims
            .into_iter()
            .filter_map(|c| c.ok())
            .map(|m| m.writer_epoch)
            .collect();
        let n = epochs.len();
        epochs.sort_unstable();
        epochs.dedup();
        assert_eq!(epochs.len(), n, "two claims returned the same epoch");
        assert!(n >= 1);
    }
}
