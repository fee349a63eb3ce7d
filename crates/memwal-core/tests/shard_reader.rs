//! The shard reader and primary-key semantics across tiers: newest row per
//! key, deletes, snapshots taken during flushes, row-group pruning.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use common::fault_store::{FailMode, FaultStore};
use common::*;
use memwal_core::format::primary_key::PRIMARY_KEY_METADATA;
use memwal_core::read::scan::ScanRequest;
use memwal_core::read::shard_reader::ShardReader;
use memwal_core::{ErrorCode, OpenOptions, ShardWriter, ShardWriterConfig, StorageRoot};
use object_store::memory::InMemory;
use object_store::path::Path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn keyed_schema() -> SchemaRef {
    let pk = HashMap::from([(PRIMARY_KEY_METADATA.to_string(), "true".to_string())]);
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false).with_metadata(pk),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn rows(schema: &SchemaRef, rows: &[(i64, String)]) -> RecordBatch {
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.as_str()),
            )),
        ],
    )
    .unwrap()
}

fn keys(ids: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))]).unwrap()
}

fn pairs(batches: &[RecordBatch]) -> Vec<(i64, String)> {
    batches
        .iter()
        .flat_map(|b| {
            let ids = b.column_by_name("id").unwrap();
            let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap().clone();
            let names = b.column_by_name("name").unwrap();
            let names = names
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            (0..b.num_rows())
                .map(move |i| (ids.value(i), names.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn open_keyed(
    root: &StorageRoot,
    shard: Option<uuid::Uuid>,
    config: ShardWriterConfig,
) -> ShardWriter {
    open_with_schema(root, shard, keyed_schema(), config).await
}

fn small_memtables() -> ShardWriterConfig {
    ShardWriterConfig {
        max_memtable_size: 4 * 1024,
        ..memtable()
    }
}

async fn reader_pairs(root: &StorageRoot, shard: uuid::Uuid) -> Vec<(i64, String)> {
    let reader = ShardReader::open(root.clone(), shard).await.unwrap();
    let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    pairs(&batches)
}

fn sorted(mut v: Vec<(i64, String)>) -> Vec<(i64, String)> {
    v.sort();
    v
}

#[tokio::test]
async fn reader_and_writer_scan_match_a_model_through_random_operations() {
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let root = test_root("reader-model");
        let mut writer = open_keyed(&root, None, small_memtables()).await;
        let shard = writer.shard_id();
        let schema = keyed_schema();
        let mut model: BTreeMap<i64, String> = BTreeMap::new();
        for step in 0..iterations(120) {
            match rng.random_range(0..100) {
                0..=54 => {
                    let n = rng.random_range(1..6);
                    let batch: Vec<(i64, String)> = (0..n)
                        .map(|i| (rng.random_range(0..25), format!("s{seed}-{step}-{i}")))
                        .collect();
                    writer.put(vec![rows(&schema, &batch)]).await.unwrap();
                    for (id, name) in batch {
                        model.insert(id, name);
                    }
                }
                55..=74 => {
                    let n = rng.random_range(1..4);
                    let ids: Vec<i64> = (0..n).map(|_| rng.random_range(0..25)).collect();
                    writer.delete(vec![keys(&ids)]).await.unwrap();
                    for id in ids {
                        model.remove(&id);
                    }
                }
                75..=84 => {
                    writer.force_seal_active().await.unwrap();
                }
                85..=92 => {
                    writer.force_seal_active().await.unwrap();
                    writer.wait_for_flush_drain().await.unwrap();
                }
                _ => {
                    // Crash (drop without close) or clean close, then reopen.
                    if rng.random_bool(0.5) {
                        writer.close().await.unwrap();
                    }
                    drop(writer);
                    writer = open_keyed(&root, Some(shard), small_memtables()).await;
                }
            }
            let expected: Vec<(i64, String)> = model.clone().into_iter().collect();
            assert_eq!(
                sorted(reader_pairs(&root, shard).await),
                expected,
                "reader, seed {seed} step {step}"
            );
            let (_, scanned) = writer.scan(&ScanRequest::default()).unwrap();
            let in_memory = pairs(&scanned);
            // The writer sees only its MemTables: every key it returns must
            // hold the model's value (newer than anything flushed).
            for (id, name) in &in_memory {
                assert_eq!(
                    model.get(id),
                    Some(name),
                    "writer scan, seed {seed} step {step}"
                );
            }
            let distinct: BTreeSet<i64> = in_memory.iter().map(|p| p.0).collect();
            assert_eq!(
                distinct.len(),
                in_memory.len(),
                "one row per key, seed {seed} step {step}"
            );
        }
        writer.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_put_after_a_delete_brings_the_key_back_in_every_tier() {
    let root = test_root("reader-revive");
    let writer = open_keyed(&root, None, memtable()).await;
    let schema = keyed_schema();
    writer
        .put(vec![rows(&schema, &[(1, "a".into()), (2, "b".into())])])
        .await
        .unwrap();
    writer.delete(vec![keys(&[1])]).await.unwrap();
    let (_, scanned) = writer.scan(&ScanRequest::default()).unwrap();
    assert_eq!(pairs(&scanned), vec![(2, "b".into())]);
    // Flushed: the tombstone is in Parquet, and still deletes.
    writer.force_seal_active().await.unwrap();
    writer.wait_for_flush_drain().await.unwrap();
    assert_eq!(
        reader_pairs(&root, writer.shard_id()).await,
        vec![(2, "b".into())]
    );
    writer
        .put(vec![rows(&schema, &[(1, "again".into())])])
        .await
        .unwrap();
    assert_eq!(
        sorted(reader_pairs(&root, writer.shard_id()).await),
        vec![(1, "again".into()), (2, "b".into())]
    );
    let (_, scanned) = writer.scan(&ScanRequest::default()).unwrap();
    assert_eq!(pairs(&scanned), vec![(1, "again".into())]);
    writer.close().await.unwrap();
}

#[tokio::test]
async fn delete_without_a_primary_key_is_invalid_input_and_harmless() {
    let root = test_root("reader-nokey");
    let writer = open(&root, None, memtable()).await;
    writer.put(vec![batch(0, 3)]).await.unwrap();
    let err = writer.delete(vec![keys(&[1])]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    writer.put(vec![batch(3, 2)]).await.unwrap();
    writer.close().await.unwrap();
    let reader = ShardReader::open(root.clone(), writer.shard_id())
        .await
        .unwrap();
    let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    assert_eq!(ids(&batches), vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn a_reader_opened_while_a_flush_cannot_commit_sees_each_row_once() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let flaky = Arc::new(FaultStore::new(inner, "/manifest/", 0, FailMode::Refuse));
    let root = StorageRoot::new(flaky.clone(), Path::default(), "memory://flaky-reader");
    // Flushes retry without limit until the writer closes.
    let writer = open(&root, None, memtable()).await;
    let shard = writer.shard_id();
    writer.put(vec![batch(0, 10)]).await.unwrap();
    writer.force_seal_active().await.unwrap();
    writer.wait_for_flush_drain().await.unwrap();
    writer.put(vec![batch(10, 10)]).await.unwrap();

    // The second generation's Parquet file lands; its manifest commit does not.
    flaky.arm(usize::MAX);
    let before = flaky
        .matching_writes
        .load(std::sync::atomic::Ordering::SeqCst);
    writer.force_seal_active().await.unwrap_or(false);
    let mut progress = writer.watch_flush_progress().unwrap();
    within("a refused manifest commit", async {
        while flaky
            .matching_writes
            .load(std::sync::atomic::Ordering::SeqCst)
            == before
        {
            progress.changed().await.unwrap();
        }
    })
    .await;
    let reader = ShardReader::open(root.clone(), shard).await.unwrap();
    assert_eq!(reader.generations().len(), 1);
    let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    assert_eq!(
        ids(&batches),
        (0..20).collect::<Vec<_>>(),
        "uncommitted generation"
    );

    flaky.arm(0);
    within("the flush to commit", writer.wait_for_flush_drain())
        .await
        .unwrap();
    let reader = ShardReader::open(root.clone(), shard).await.unwrap();
    assert_eq!(reader.generations().len(), 2);
    assert_eq!(reader.tail_rows(), 0);
    let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    assert_eq!(
        ids(&batches),
        (0..20).collect::<Vec<_>>(),
        "committed generation"
    );
    writer.close().await.unwrap();
}

#[tokio::test]
async fn readers_racing_flushes_see_every_row_exactly_once() {
    let root = test_root("reader-race");
    let writer = open(&root, None, small_memtables()).await;
    let shard = writer.shard_id();
    let mut written = 0i64;
    for round in 0..iterations(30) {
        writer.put(vec![batch(written, 40)]).await.unwrap();
        written += 40;
        let sealing = {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer.force_seal_active().await.unwrap();
                writer.wait_for_flush_drain().await.unwrap();
            })
        };
        for _ in 0..3 {
            let reader = ShardReader::open(root.clone(), shard).await.unwrap();
            let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
            assert_eq!(
                ids(&batches),
                (0..written).collect::<Vec<_>>(),
                "round {round}"
            );
            tokio::task::yield_now().await;
        }
        sealing.await.unwrap();
    }
    writer.close().await.unwrap();
}

#[tokio::test]
async fn filters_skip_row_groups_by_statistics_and_match_the_unpruned_result() {
    let root = test_root("reader-prune");
    let writer = open(&root, None, memtable()).await;
    for g in 0..4 {
        writer.put(vec![batch(g * 100, 100)]).await.unwrap();
        writer.force_seal_active().await.unwrap();
        writer.wait_for_flush_drain().await.unwrap();
    }
    writer.put(vec![batch(400, 10)]).await.unwrap();
    writer.close().await.unwrap();
    let reader = ShardReader::open(root.clone(), writer.shard_id())
        .await
        .unwrap();
    assert_eq!(
        reader
            .generations()
            .iter()
            .map(|g| g.rows)
            .collect::<Vec<_>>(),
        vec![100, 100, 100, 100, 10]
    );
    let request = ScanRequest {
        filter: Some("id >= 250 AND id < 305".into()),
        columns: Some(vec!["name".into(), "id".into()]),
        ..Default::default()
    };
    let mut scan = reader.scan_stream(&request).unwrap();
    let mut out = Vec::new();
    while let Some(b) = scan.next_batch().await.unwrap() {
        out.push(b);
    }
    assert_eq!(scan.metrics().row_groups_total, 5);
    assert_eq!(
        scan.metrics().row_groups_read,
        2,
        "generations 3 and 4 only"
    );
    let got: Vec<i64> = out
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(got, (250..305).collect::<Vec<_>>());
    assert_eq!(out[0].schema().field(0).name(), "name");

    let limited = reader
        .scan(&ScanRequest {
            filter: Some("id IN (5, 399) OR name = 'name-402'".into()),
            offset: 1,
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .1;
    assert_eq!(ids(&limited), vec![399]);
}

#[tokio::test]
async fn an_unknown_shard_is_not_found_and_a_fresh_one_is_empty() {
    let root = test_root("reader-empty");
    let err = ShardReader::open(root.clone(), uuid::Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let writer = open(&root, None, memtable()).await;
    let reader = ShardReader::open(root.clone(), writer.shard_id())
        .await
        .unwrap();
    let (schema, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    assert!(batches.is_empty());
    assert_eq!(schema.fields().len(), 0);
    writer.close().await.unwrap();
}

#[tokio::test]
async fn wal_rows_without_the_marker_are_live_and_lance_markers_are_accepted() {
    // A keyed writer reopening a shard whose older entries lack `_tombstone`
    // (written before it had a key) back-fills them as live rows.
    let root = test_root("reader-backfill");
    let plain = open(&root, None, memtable()).await;
    let shard = plain.shard_id();
    plain.put(vec![batch(1, 2)]).await.unwrap();
    drop(plain);
    let keyed = ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: Some(shard),
            schema: Arc::new(Schema::new(vec![
                keyed_schema().field(0).clone(),
                Field::new("name", DataType::Utf8, true),
            ])),
            config: memtable(),
        },
    )
    .await
    .unwrap();
    keyed.delete(vec![keys(&[1])]).await.unwrap();
    let (_, scanned) = keyed.scan(&ScanRequest::default()).unwrap();
    assert_eq!(ids(&scanned), vec![2]);
    keyed.close().await.unwrap();
    let reader = ShardReader::open(root.clone(), shard).await.unwrap();
    let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    assert_eq!(ids(&batches), vec![2]);
    assert!(batches[0].schema().column_with_name("_tombstone").is_none());
    assert_eq!(batches[0].column(1).null_count(), 0);
}

/// Issue 15, item 3: the snapshot used to stop at a lost entry and show
/// the rows before it as the whole shard. A missing position above the
/// replay cursor while a later one exists fails the open with CORRUPT, both
/// in the tail after a flush and from position 1 of an unflushed WAL.
#[tokio::test]
async fn a_lost_wal_entry_fails_the_snapshot_instead_of_hiding_later_rows() {
    let root = test_root("reader-hole");
    let writer = open(&root, None, memtable()).await;
    let shard = writer.shard_id();
    for i in 0..2 {
        writer.put(vec![batch(i * 10, 2)]).await.unwrap();
    }
    assert!(writer.force_seal_active().await.unwrap());
    within("flush drain", writer.wait_for_flush_drain())
        .await
        .unwrap();
    for i in 2..5 {
        writer.put(vec![batch(i * 10, 2)]).await.unwrap();
    }
    let lost = remove_wal_entry(&root, shard, 4).await;
    let err = ShardReader::open(root.clone(), shard).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert!(
        err.message()
            .contains("position 4 is missing while position 5 exists"),
        "{err}"
    );
    // Entries covered by the flushed generation may go: not a hole.
    root.put(
        &root.path(&memwal_core::ShardLayout::new(shard).wal_entry(4)),
        lost,
    )
    .await
    .unwrap();
    remove_wal_entry(&root, shard, 1).await;
    let mut ids = reader_ids(&root, shard).await;
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 10, 11, 20, 21, 30, 31, 40, 41]);
    writer.close().await.unwrap();

    let root = test_root("reader-hole-first");
    let writer = open(&root, None, wal_only()).await;
    let shard = writer.shard_id();
    for i in 0..3 {
        writer.put(vec![batch(i, 1)]).await.unwrap();
    }
    remove_wal_entry(&root, shard, 1).await;
    let err = ShardReader::open(root.clone(), shard).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert!(err.message().contains("position 1 is missing"), "{err}");
}

/// Issue 15: opening to read never creates anything. A local root that
/// does not exist is NOT_FOUND for readers (the writer still creates it).
#[tokio::test]
async fn opening_a_missing_local_root_to_read_is_not_found_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never/created");
    let uri = format!("file://{}", missing.display());
    let err = StorageRoot::open_existing_with(&uri, &Default::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    assert!(!dir.path().join("never").exists());
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err =
        StorageRoot::open_existing_with(file.to_str().unwrap(), &Default::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    // The writer's open still makes the root.
    StorageRoot::open(&uri).unwrap();
    assert!(missing.is_dir());
    let root = StorageRoot::open_existing_with(&uri, &Default::default()).unwrap();
    // An unknown shard is NOT_FOUND for the tailer, as for the reader.
    let shard = uuid::Uuid::new_v4();
    let err = memwal_core::WalTailer::open(root.clone(), shard)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    let err = ShardReader::open(root, shard).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
}
