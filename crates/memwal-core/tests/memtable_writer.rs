//! Behaviour of the MemTable-mode shard writer: freezes, Parquet flushes,
//! replay, backpressure, and the reference implementation's old bugs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fault_store::{FailMode, FaultStore};
use common::*;
use memwal_core::format::layout::ShardLayout;
use memwal_core::manifest::{ManifestStore, ShardManifest};
use memwal_core::wal::encode_entry;
use memwal_core::WalTailer;
use memwal_core::{ErrorCode, OpenOptions, ShardWriter, ShardWriterConfig, StorageRoot};
use object_store::memory::InMemory;
use object_store::path::Path;

fn flaky_root(fragment: &str) -> (StorageRoot, Arc<FaultStore>) {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let flaky = Arc::new(FaultStore::new(inner, fragment, 0, FailMode::Refuse));
    (
        StorageRoot::new(flaky.clone(), Path::default(), "memory://flaky"),
        flaky,
    )
}

async fn manifest(root: &StorageRoot, shard: uuid::Uuid) -> ShardManifest {
    ManifestStore::new(root.clone(), ShardLayout::new(shard), 2)
        .read_latest()
        .await
        .unwrap()
        .unwrap()
}

/// Ids in every data entry of the WAL, in WAL order.
async fn wal_ids(root: &StorageRoot, shard: uuid::Uuid) -> Vec<i64> {
    let tailer = WalTailer::new(root.clone(), shard);
    let mut out = Vec::new();
    let mut position = 1;
    while let Some(entry) = tailer.read_entry(position).await.unwrap() {
        out.extend(ids(&entry.batches));
        position += 1;
    }
    out
}

#[tokio::test]
async fn puts_get_global_positions_and_are_counted() {
    let root = test_root("mt-basic");
    let writer = open(&root, None, memtable()).await;
    assert_eq!(
        writer
            .put(vec![batch(0, 10)])
            .await
            .unwrap()
            .batch_positions,
        0..1
    );
    let multi = writer
        .put(vec![batch(10, 5), batch(15, 5), batch(20, 5)])
        .await
        .unwrap();
    assert_eq!(multi.batch_positions, 1..4);
    let stats = writer.memtable_stats().unwrap();
    assert_eq!(
        (stats.row_count, stats.batch_count, stats.generation),
        (25, 4, 1)
    );
    assert!(stats.estimated_size > 0);
    assert_eq!(
        ids(&writer.visible_batches().unwrap()),
        (0..25).collect::<Vec<_>>()
    );
    writer.close().await.unwrap();
}

#[tokio::test]
async fn close_flushes_the_active_memtable() {
    let root = test_root("mt-close");
    let writer = open(&root, None, memtable()).await;
    writer.put(vec![batch(0, 7)]).await.unwrap();
    writer.put(vec![batch(7, 3)]).await.unwrap();
    writer.close().await.unwrap();
    let m = manifest(&root, writer.shard_id()).await;
    assert_eq!(m.current_generation, 2);
    assert_eq!(m.flushed_generations.len(), 1);
    assert_eq!(m.flushed_generations[0].generation, 1);
    assert_eq!(m.flushed_generations[0].physical_rows, Some(10));
    assert!(m.flushed_generations[0].path.ends_with("_gen_1"));
    assert_eq!(m.flushed_generations[0].path.len(), "12345678_gen_1".len());
    assert_eq!(m.replay_after_wal_entry_position, 2);
    assert_eq!(
        ids(&flushed_rows(&root, writer.shard_id()).await),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(writer.stats().memtable_flush_count, 1);
}

#[tokio::test]
async fn auto_flush_by_size_freezes_and_commits_generations() {
    let root = test_root("mt-autoflush");
    let one = memwal_core::memtable::batch_store::estimate_batch_bytes(&batch(0, 100));
    let config = ShardWriterConfig {
        max_memtable_size: one * 3,
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    for i in 0..9 {
        writer.put(vec![batch(i * 100, 100)]).await.unwrap();
    }
    writer.wait_for_flush_drain().await.unwrap();
    let m = manifest(&root, writer.shard_id()).await;
    assert_eq!(m.flushed_generations.len(), 3);
    assert_eq!(writer.memtable_stats().unwrap().generation, 4);
    assert_eq!(
        ids(&flushed_rows(&root, writer.shard_id()).await),
        (0..900).collect::<Vec<_>>()
    );
    writer.close().await.unwrap();
}

async fn thousand_puts_make_many_generations(root: StorageRoot) {
    let one = memwal_core::memtable::batch_store::estimate_batch_bytes(&batch(0, 4));
    let config = ShardWriterConfig {
        max_memtable_size: one * 16,
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    for i in 0..1000 {
        writer.put(vec![batch(i * 4, 4)]).await.unwrap();
    }
    writer.close().await.unwrap();
    let m = manifest(&root, writer.shard_id()).await;
    assert!(
        m.flushed_generations.len() >= 60,
        "{} generations",
        m.flushed_generations.len()
    );
    let generations: Vec<u64> = m.flushed_generations.iter().map(|g| g.generation).collect();
    assert_eq!(
        generations,
        (1..=generations.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(m.current_generation, generations.len() as u64 + 1);
    assert_eq!(
        ids(&flushed_rows(&root, writer.shard_id()).await),
        (0..4000).collect::<Vec<_>>()
    );
    assert_eq!(
        m.replay_after_wal_entry_position,
        WalTailer::new(root.clone(), writer.shard_id())
            .next_position()
            .await
            .unwrap()
            - 1
    );
}

#[tokio::test]
async fn a_thousand_puts_with_a_tiny_memtable_on_memory() {
    thousand_puts_make_many_generations(test_root("mt-1000")).await;
}

#[tokio::test]
async fn a_thousand_puts_with_a_tiny_memtable_on_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    thousand_puts_make_many_generations(StorageRoot::open(dir.path().to_str().unwrap()).unwrap())
        .await;
}

#[tokio::test]
async fn replay_recovers_unflushed_writes_after_a_drop() {
    let root = test_root("mt-replay");
    let shard = uuid::Uuid::new_v4();
    {
        let writer = open(&root, Some(shard), memtable()).await;
        writer.put(vec![batch(0, 5)]).await.unwrap();
        writer.put(vec![batch(5, 5), batch(10, 5)]).await.unwrap();
        // Dropped without close, as a crash would leave it.
    }
    let writer = open(&root, Some(shard), memtable()).await;
    let stats = writer.memtable_stats().unwrap();
    assert_eq!(
        (stats.row_count, stats.batch_count, stats.generation),
        (15, 3, 1)
    );
    assert_eq!(
        ids(&writer.visible_batches().unwrap()),
        (0..15).collect::<Vec<_>>()
    );
    // New puts continue after the replayed positions.
    assert_eq!(
        writer
            .put(vec![batch(15, 1)])
            .await
            .unwrap()
            .batch_positions,
        3..4
    );
    writer.close().await.unwrap();
    assert_eq!(
        ids(&flushed_rows(&root, shard).await),
        (0..16).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn replayed_batches_are_not_appended_again() {
    let root = test_root("mt-reappend");
    let shard = uuid::Uuid::new_v4();
    {
        let writer = open(&root, Some(shard), memtable()).await;
        writer.put(vec![batch(0, 5)]).await.unwrap();
    }
    let writer = open(&root, Some(shard), memtable()).await;
    assert_eq!(writer.memtable_stats().unwrap().row_count, 5);
    writer.close().await.unwrap();
    // One data entry (the original) plus the sentinel; close added nothing.
    assert_eq!(wal_ids(&root, shard).await, (0..5).collect::<Vec<_>>());
    assert_eq!(writer.stats().wal_flush_count, 0);
    assert_eq!(
        ids(&flushed_rows(&root, shard).await),
        (0..5).collect::<Vec<_>>()
    );
    let reopened = open(&root, Some(shard), memtable()).await;
    assert_eq!(
        reopened.memtable_stats().unwrap().row_count,
        0,
        "flushed rows replayed again"
    );
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn replay_is_a_no_op_on_a_fresh_shard() {
    let root = test_root("mt-fresh");
    let writer = open(&root, None, memtable()).await;
    let stats = writer.memtable_stats().unwrap();
    assert_eq!(
        (stats.row_count, stats.frozen_count, stats.generation),
        (0, 0, 1)
    );
    writer.close().await.unwrap();
    assert!(manifest(&root, writer.shard_id())
        .await
        .flushed_generations
        .is_empty());
}

#[tokio::test]
async fn replay_splits_across_generations_when_capacity_is_exceeded() {
    let root = test_root("mt-split");
    let shard = uuid::Uuid::new_v4();
    {
        let writer = open(&root, Some(shard), memtable()).await;
        for i in 0..10 {
            writer.put(vec![batch(i * 2, 2)]).await.unwrap();
        }
    }
    let config = ShardWriterConfig {
        max_memtable_batches: 4,
        ..memtable()
    };
    let writer = open(&root, Some(shard), config).await;
    writer.wait_for_flush_drain().await.unwrap();
    assert_eq!(writer.memtable_stats().unwrap().batch_count, 2);
    writer.close().await.unwrap();
    let m = manifest(&root, shard).await;
    assert_eq!(m.flushed_generations.len(), 3);
    assert_eq!(
        ids(&flushed_rows(&root, shard).await),
        (0..20).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn replay_skips_entries_covered_before_an_external_drain() {
    let root = test_root("mt-drain");
    let shard = uuid::Uuid::new_v4();
    let writer = open(&root, Some(shard), memtable()).await;
    writer.put(vec![batch(0, 5)]).await.unwrap();
    writer.close().await.unwrap();
    // A compactor claims the shard and drains the generation list.
    let manifests = ManifestStore::new(root.clone(), ShardLayout::new(shard), 2);
    let claimed = manifests.claim_epoch(0).await.unwrap();
    manifests
        .commit_update(claimed.writer_epoch, |m| ShardManifest {
            flushed_generations: vec![],
            ..m.clone()
        })
        .await
        .unwrap();
    let writer = open(&root, Some(shard), memtable()).await;
    assert_eq!(writer.memtable_stats().unwrap().row_count, 0);
    writer.close().await.unwrap();
}

#[tokio::test]
async fn replay_aborts_on_an_entry_from_a_newer_epoch() {
    let root = test_root("mt-newer");
    let shard = uuid::Uuid::new_v4();
    let writer = open(&root, Some(shard), memtable()).await;
    writer.close().await.unwrap();
    let layout = ShardLayout::new(shard);
    let next = WalTailer::new(root.clone(), shard)
        .next_position()
        .await
        .unwrap();
    let entry = encode_entry(99, &schema(), &[batch(0, 1)]).unwrap();
    root.put(&root.path(&layout.wal_entry(next)), entry)
        .await
        .unwrap();
    let err = ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: Some(shard),
            schema: schema(),
            config: memtable(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Fenced);
    assert!(err.message().starts_with("WAL replay aborted"), "{err}");
}

#[tokio::test]
async fn force_seal_and_drain_flush_and_drop_the_frozen_memtable() {
    let root = test_root("mt-seal");
    let writer = open(&root, None, memtable()).await;
    assert!(
        !writer.force_seal_active().await.unwrap(),
        "an empty MemTable is not sealed"
    );
    writer.put(vec![batch(0, 10)]).await.unwrap();
    assert!(writer.force_seal_active().await.unwrap());
    writer.wait_for_flush_drain().await.unwrap();
    let stats = writer.memtable_stats().unwrap();
    assert_eq!(
        (stats.frozen_count, stats.generation, stats.row_count),
        (0, 2, 0)
    );
    assert_eq!(
        manifest(&root, writer.shard_id())
            .await
            .flushed_generations
            .len(),
        1
    );
    writer.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_flush_keeps_the_memtable_readable_and_is_retried() {
    let (root, flaky) = flaky_root("_gen_");
    let writer = open(&root, None, memtable()).await;
    writer.put(vec![batch(0, 10)]).await.unwrap();
    flaky.arm(2);
    writer.force_seal_active().await.unwrap();
    writer.wait_for_flush_drain().await.unwrap();
    assert_eq!(writer.flush_progress().unwrap().committed_generations, 1);
    assert!(
        flaky
            .matching_writes
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 3,
        "the flush was not retried"
    );
    assert_eq!(
        ids(&flushed_rows(&root, writer.shard_id()).await),
        (0..10).collect::<Vec<_>>()
    );
    writer.close().await.unwrap();
}

#[tokio::test]
async fn frozen_memtable_is_retained_while_flushes_fail() {
    let (root, flaky) = flaky_root("_gen_");
    let writer = open(&root, None, memtable()).await;
    writer.put(vec![batch(0, 10)]).await.unwrap();
    flaky.arm(usize::MAX);
    writer.force_seal_active().await.unwrap();
    // Wait (on the progress channel) until a flush attempt has failed.
    let mut progress = writer.watch_flush_progress().unwrap();
    within(
        "a failed flush attempt",
        progress.wait_for(|p| p.last_error.is_some()),
    )
    .await
    .unwrap();
    let stats = writer.memtable_stats().unwrap();
    assert_eq!(stats.frozen_count, 1);
    assert_eq!(
        ids(&writer.visible_batches().unwrap()),
        (0..10).collect::<Vec<_>>()
    );
    assert!(manifest(&root, writer.shard_id())
        .await
        .flushed_generations
        .is_empty());
    flaky.arm(0);
    writer.wait_for_flush_drain().await.unwrap();
    assert_eq!(writer.memtable_stats().unwrap().frozen_count, 0);
    writer.close().await.unwrap();
}

#[tokio::test]
async fn a_later_generation_never_commits_before_a_failed_earlier_one() {
    let (root, flaky) = flaky_root("_gen_1/");
    let config = ShardWriterConfig {
        max_memtable_batches: 1,
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    flaky.arm(usize::MAX);
    writer.put(vec![batch(0, 5)]).await.unwrap(); // generation 1 freezes (full)
    writer.put(vec![batch(5, 5)]).await.unwrap(); // generation 2 freezes (full)
    let mut progress = writer.watch_flush_progress().unwrap();
    within(
        "a failed flush of generation 1",
        progress.wait_for(|p| p.last_error.is_some()),
    )
    .await
    .unwrap();
    assert_eq!(writer.memtable_stats().unwrap().frozen_count, 2);
    let m = manifest(&root, writer.shard_id()).await;
    assert!(
        m.flushed_generations.is_empty(),
        "generation 2 committed past a failed generation 1"
    );
    assert_eq!(m.replay_after_wal_entry_position, 0);
    flaky.arm(0);
    writer.close().await.unwrap();
    let m = manifest(&root, writer.shard_id()).await;
    assert_eq!(
        m.flushed_generations
            .iter()
            .map(|g| g.generation)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[tokio::test]
async fn close_reports_a_flush_that_keeps_failing_and_loses_nothing() {
    let (root, flaky) = flaky_root("_gen_");
    let shard = uuid::Uuid::new_v4();
    let writer = open(&root, Some(shard), memtable()).await;
    writer.put(vec![batch(0, 10)]).await.unwrap();
    flaky.arm(usize::MAX);
    let err = writer.close().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    flaky.arm(0);
    // The WAL still holds the rows: the next writer replays them.
    let next = open(&root, Some(shard), memtable()).await;
    assert_eq!(next.memtable_stats().unwrap().row_count, 10);
    next.close().await.unwrap();
    assert_eq!(
        ids(&flushed_rows(&root, shard).await),
        (0..10).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_fenced_flush_fails_the_drain_and_keeps_the_rows() {
    let root = test_root("mt-fenced-flush");
    let shard = uuid::Uuid::new_v4();
    let a = open(&root, Some(shard), memtable()).await;
    a.put(vec![batch(0, 10)]).await.unwrap();
    let b = open(&root, Some(shard), memtable()).await;
    assert_eq!(
        b.memtable_stats().unwrap().row_count,
        10,
        "B replays A's acknowledged rows"
    );
    // A cannot seal (fenced up front) …
    assert_eq!(
        a.force_seal_active().await.unwrap_err().code(),
        ErrorCode::Fenced
    );
    // … and its close fails with FENCED instead of claiming success.
    assert_eq!(a.close().await.unwrap_err().code(), ErrorCode::Fenced);
    b.close().await.unwrap();
    assert_eq!(
        ids(&flushed_rows(&root, shard).await),
        (0..10).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn backpressure_waits_for_flushes_and_recovers() {
    let root = test_root("mt-backpressure");
    let one = memwal_core::memtable::batch_store::estimate_batch_bytes(&batch(0, 200));
    let config = ShardWriterConfig {
        durable_write: false,
        max_memtable_size: one * 2,
        max_unflushed_memtable_bytes: one * 4,
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    for i in 0..60 {
        writer.put(vec![batch(i * 200, 200)]).await.unwrap();
        let stats = writer.memtable_stats().unwrap();
        assert!(
            stats.estimated_size + stats.frozen_bytes <= one * 6,
            "memory grew past the budget"
        );
    }
    assert!(writer.stats().backpressure_count > 0);
    writer.close().await.unwrap();
    assert_eq!(
        ids(&flushed_rows(&root, writer.shard_id()).await),
        (0..12000).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_put_right_after_a_freeze_is_not_acknowledged_early() {
    let root = test_root("mt-early-ack");
    let config = ShardWriterConfig {
        max_memtable_batches: 3,
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let range = writer.put(vec![batch(i, 1)]).await.unwrap().batch_positions;
                // When the put resolves, its batch is below the durable watermark.
                assert!(writer.wal_stats().durable_batch_position >= range.end);
                i
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    writer.close().await.unwrap();
    let mut wal = wal_ids(&root, writer.shard_id()).await;
    wal.sort_unstable();
    assert_eq!(wal, (0..60).collect::<Vec<_>>());
    let mut flushed = ids(&flushed_rows(&root, writer.shard_id()).await);
    flushed.sort_unstable();
    assert_eq!(flushed, (0..60).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_size_trigger_keeps_firing_after_freezes() {
    let root = test_root("mt-size-after-freeze");
    let one = memwal_core::memtable::batch_store::estimate_batch_bytes(&batch(0, 50));
    let config = ShardWriterConfig {
        durable_write: false,
        max_wal_buffer_size: one * 2,
        max_memtable_batches: 4,
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    for round in 0..6u64 {
        writer.put(vec![batch(0, 50)]).await.unwrap();
        let second = writer.put(vec![batch(50, 50)]).await.unwrap();
        within(
            "size-triggered append",
            writer.wait_durable(second.batch_positions.end),
        )
        .await
        .unwrap();
        assert!(writer.wal_stats().entries_written > round);
    }
    assert!(
        writer.memtable_stats().unwrap().generation > 2,
        "no freeze happened"
    );
    writer.close().await.unwrap();
}

#[tokio::test]
async fn wal_entries_never_span_two_generations() {
    let root = test_root("mt-boundaries");
    let config = ShardWriterConfig {
        durable_write: false,
        max_memtable_batches: 5,
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    for i in 0..23 {
        writer.put(vec![batch(i, 1)]).await.unwrap();
    }
    writer.close().await.unwrap();
    // Each generation holds 5 batches, so entries hold at most 5 and never
    // straddle a multiple of 5.
    let tailer = WalTailer::new(root.clone(), writer.shard_id());
    let mut seen = 0i64;
    let mut position = 1;
    while let Some(entry) = tailer.read_entry(position).await.unwrap() {
        let entry_ids = ids(&entry.batches);
        if let (Some(first), Some(last)) = (entry_ids.first(), entry_ids.last()) {
            assert_eq!(
                first / 5,
                last / 5,
                "entry {position} spans generations: {entry_ids:?}"
            );
            seen += entry_ids.len() as i64;
        }
        position += 1;
    }
    assert_eq!(seen, 23);
    assert_eq!(
        ids(&flushed_rows(&root, writer.shard_id()).await),
        (0..23).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn scans_in_durable_mode_see_only_wal_durable_rows() {
    let (root, flaky) = flaky_root("/wal/");
    let config = ShardWriterConfig {
        max_wal_persist_retries: 50,
        wal_persist_retry_base_delay: Duration::from_millis(20),
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    writer.put(vec![batch(0, 3)]).await.unwrap();
    flaky.arm(5);
    let pending = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.put(vec![batch(3, 3)]).await })
    };
    // While the second put's append keeps failing, it is not visible.
    within("the retried append", async {
        while flaky
            .matching_writes
            .load(std::sync::atomic::Ordering::SeqCst)
            < 3
        {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(ids(&writer.visible_batches().unwrap()), vec![0, 1, 2]);
    pending.await.unwrap().unwrap();
    assert_eq!(
        ids(&writer.visible_batches().unwrap()),
        (0..6).collect::<Vec<_>>()
    );
    writer.close().await.unwrap();
}

#[tokio::test]
async fn memtable_methods_fail_in_wal_only_mode() {
    let root = test_root("mt-walonly");
    let writer = open(&root, None, wal_only()).await;
    assert_eq!(
        writer.memtable_stats().unwrap_err().code(),
        ErrorCode::WalOnlyMode
    );
    assert_eq!(
        writer.force_seal_active().await.unwrap_err().code(),
        ErrorCode::WalOnlyMode
    );
    assert_eq!(
        writer.wait_for_flush_drain().await.unwrap_err().code(),
        ErrorCode::WalOnlyMode
    );
    assert_eq!(
        writer.visible_batches().unwrap_err().code(),
        ErrorCode::WalOnlyMode
    );
    writer.close().await.unwrap();
}

#[tokio::test]
async fn committing_the_same_generation_twice_lists_it_once() {
    let root = test_root("mt-idempotent");
    let shard = uuid::Uuid::new_v4();
    let manifests = ManifestStore::new(root.clone(), ShardLayout::new(shard), 2);
    let epoch = manifests.claim_epoch(0).await.unwrap().writer_epoch;
    let generation = |path: &str| memwal_core::manifest::FlushedGeneration {
        generation: 1,
        path: path.to_string(),
        ..Default::default()
    };
    memwal_core::flush::commit_generation(&manifests, epoch, generation("aaaaaaaa_gen_1"), 3)
        .await
        .unwrap();
    // A retry after a commit that landed but reported an error.
    let m =
        memwal_core::flush::commit_generation(&manifests, epoch, generation("bbbbbbbb_gen_1"), 3)
            .await
            .unwrap();
    assert_eq!(m.flushed_generations.len(), 1);
    assert_eq!(m.flushed_generations[0].path, "aaaaaaaa_gen_1");
    assert_eq!(manifests.list_versions().await.unwrap(), vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_generation_is_written_while_the_one_before_is_still_being_written() {
    let (root, store) = flaky_root("no faults here");
    let (gen2_started, gen2_has_started) = tokio::sync::oneshot::channel::<()>();
    // Generation 1's Parquet write waits until generation 2's has begun, so
    // a flusher that writes one generation at a time never finishes.
    store.before_first_put(
        "_gen_1/",
        Box::new(move || {
            Box::pin(async move {
                let _ = gen2_has_started.await;
            })
        }),
    );
    store.before_first_put(
        "_gen_2/",
        Box::new(move || {
            Box::pin(async move {
                let _ = gen2_started.send(());
            })
        }),
    );
    let config = ShardWriterConfig {
        max_memtable_batches: 1,
        ..memtable()
    };
    let writer = open(&root, None, config).await;
    writer.put(vec![batch(0, 5)]).await.unwrap(); // generation 1 freezes (full)
    writer.put(vec![batch(5, 7)]).await.unwrap(); // generation 2 freezes (full)
    within(
        "generations 1 and 2 written side by side",
        writer.wait_for_flush_drain(),
    )
    .await
    .unwrap();
    // Written out of order, committed in order.
    let m = manifest(&root, writer.shard_id()).await;
    let committed: Vec<_> = m
        .flushed_generations
        .iter()
        .map(|g| (g.generation, g.physical_rows))
        .collect();
    assert_eq!(committed, vec![(1, Some(5)), (2, Some(7))]);
    writer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_flush_is_already_counted_in_the_stats() {
    let root = test_root("mt-stats-order");
    let writer = open(&root, None, memtable()).await;
    for i in 1..=iterations(40) as u64 {
        writer.put(vec![batch(i as i64, 2)]).await.unwrap();
        assert!(writer.force_seal_active().await.unwrap());
        writer.wait_for_flush_drain().await.unwrap();
        let stats = writer.stats();
        assert_eq!(stats.memtable_flush_count, i, "after flush {i}");
        assert_eq!(stats.memtable_flush_rows, 2 * i);
    }
    writer.close().await.unwrap();
}

/// `schema()` with `name` as Int64: the same shard opened with this must be
/// refused before it claims anything.
fn other_schema() -> arrow_schema::SchemaRef {
    use arrow_schema::{DataType, Field, Schema};
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Int64, true),
    ]))
}

/// `schema()` with `id` marked as the primary key.
fn keyed_schema() -> arrow_schema::SchemaRef {
    use arrow_schema::Schema;
    let mut fields: Vec<arrow_schema::Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[0] = fields[0]
        .clone()
        .with_metadata(std::collections::HashMap::from([(
            memwal_core::format::primary_key::PRIMARY_KEY_METADATA.to_string(),
            "true".to_string(),
        )]));
    Arc::new(Schema::new(fields))
}

async fn open_err(
    root: &StorageRoot,
    shard: uuid::Uuid,
    schema: arrow_schema::SchemaRef,
    config: ShardWriterConfig,
) -> memwal_core::Error {
    ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: Some(shard),
            schema,
            config,
        },
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn a_doomed_open_with_another_schema_never_fences_the_writer() {
    let root = test_root("mt-doomed-schema");
    let shard = uuid::Uuid::new_v4();
    let a = open(&root, Some(shard), memtable()).await;
    a.put(vec![batch(0, 10)]).await.unwrap();
    for config in [memtable(), wal_only()] {
        let err = open_err(&root, shard, other_schema(), config).await;
        assert_eq!(err.code(), ErrorCode::SchemaMismatch, "{err}");
        assert!(err.message().contains("WAL entry at position 1"), "{err}");
    }
    assert_eq!(manifest(&root, shard).await.writer_epoch, 1);
    a.put(vec![batch(10, 5)]).await.unwrap();
    a.close().await.unwrap();
    assert_eq!(
        ids(&flushed_rows(&root, shard).await),
        (0..15).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_doomed_open_with_another_primary_key_never_fences_the_writer() {
    let root = test_root("mt-doomed-key");
    let shard = uuid::Uuid::new_v4();
    let a = open_with_schema(&root, Some(shard), keyed_schema(), memtable()).await;
    a.put(vec![batch(0, 10)]).await.unwrap();
    let err = open_err(&root, shard, schema(), memtable()).await;
    assert_eq!(err.code(), ErrorCode::SchemaMismatch, "{err}");
    assert!(err.message().contains("primary key"), "{err}");
    assert_eq!(manifest(&root, shard).await.writer_epoch, 1);
    a.put(vec![batch(10, 5)]).await.unwrap();
    a.close().await.unwrap();
}

#[tokio::test]
async fn another_schema_after_a_flush_is_refused_and_the_shard_stays_readable() {
    let root = test_root("mt-schema-after-flush");
    let shard = uuid::Uuid::new_v4();
    let a = open(&root, Some(shard), memtable()).await;
    a.put(vec![batch(0, 10)]).await.unwrap();
    a.close().await.unwrap();
    // Every row is in a generation now: nothing past the replay cursor.
    let m = manifest(&root, shard).await;
    assert_eq!(m.flushed_generations.len(), 1);
    for config in [memtable(), wal_only()] {
        let err = open_err(&root, shard, other_schema(), config).await;
        assert_eq!(err.code(), ErrorCode::SchemaMismatch, "{err}");
        assert!(err.message().contains("generation 1"), "{err}");
    }
    // Nor may a key be added once rows are flushed without one.
    let err = open_err(&root, shard, keyed_schema(), memtable()).await;
    assert_eq!(err.code(), ErrorCode::SchemaMismatch, "{err}");
    assert!(err.message().contains("primary key"), "{err}");
    assert_eq!(manifest(&root, shard).await.version, m.version);
    let reader = memwal_core::read::shard_reader::ShardReader::open(root.clone(), shard)
        .await
        .unwrap();
    let (_, rows) = reader.scan(&Default::default()).await.unwrap();
    assert_eq!(ids(&rows), (0..10).collect::<Vec<_>>());
    // The same schema still takes the shard over.
    let b = open(&root, Some(shard), memtable()).await;
    b.put(vec![batch(10, 1)]).await.unwrap();
    b.close().await.unwrap();
}

/// Nullability counts both ways: a looser writer's nulls would break the
/// shard reader (it reads with the first data's schema), a stricter one
/// could not replay the shard's rows. Refused before the claim, with rows
/// only in the WAL and again once they are flushed.
#[tokio::test]
async fn an_open_that_changes_only_nullability_is_refused_before_the_claim() {
    use arrow_schema::{DataType, Field, Schema};
    let root = test_root("mt-doomed-nullability");
    let shard = uuid::Uuid::new_v4();
    let with_nullability = |id: bool, name: bool| {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, id),
            Field::new("name", DataType::Utf8, name),
        ]))
    };
    let a = open(&root, Some(shard), memtable()).await;
    a.put(vec![batch(0, 10)]).await.unwrap();
    for flushed in [false, true] {
        for other in [with_nullability(true, true), with_nullability(false, false)] {
            let err = open_err(&root, shard, other, wal_only()).await;
            assert_eq!(err.code(), ErrorCode::SchemaMismatch, "{err}");
            assert!(err.message().contains("nullable"), "{err}");
        }
        assert_eq!(manifest(&root, shard).await.writer_epoch, 1);
        if !flushed {
            a.put(vec![batch(10, 5)]).await.unwrap();
            a.force_seal_active().await.unwrap();
            a.wait_for_flush_drain().await.unwrap();
        }
    }
    a.close().await.unwrap();
    let reader = memwal_core::read::shard_reader::ShardReader::open(root.clone(), shard)
        .await
        .unwrap();
    let (_, rows) = reader.scan(&Default::default()).await.unwrap();
    assert_eq!(ids(&rows), (0..15).collect::<Vec<_>>());
}

/// A decimal key past its precision would be stored changed by the flush,
/// and its tombstone would then delete another key's row.
#[tokio::test]
async fn a_delete_key_beyond_its_decimal_precision_is_refused() {
    use arrow_array::{Decimal128Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    let key = Field::new("k", DataType::Decimal128(9, 2), false).with_metadata(
        std::collections::HashMap::from([(
            memwal_core::format::primary_key::PRIMARY_KEY_METADATA.to_string(),
            "true".to_string(),
        )]),
    );
    let schema = Arc::new(Schema::new(vec![key]));
    let keys = |values: Vec<i128>| {
        let column = Decimal128Array::from(values)
            .with_precision_and_scale(9, 2)
            .unwrap();
        RecordBatch::try_new(schema.clone(), vec![Arc::new(column)]).unwrap()
    };
    let root = test_root("mt-delete-decimal");
    let writer = open_with_schema(&root, None, schema.clone(), memtable()).await;
    writer.put(vec![keys(vec![1, 705_032_704])]).await.unwrap();
    let err = writer
        .delete(vec![keys(vec![5_000_000_000])])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    assert!(err.message().contains("'k'"), "{err}");
    writer.delete(vec![keys(vec![1])]).await.unwrap();
    let shard = writer.shard_id();
    writer.close().await.unwrap();
    let reader = memwal_core::read::shard_reader::ShardReader::open(root.clone(), shard)
        .await
        .unwrap();
    let (_, rows) = reader.scan(&Default::default()).await.unwrap();
    let left: Vec<i128> = rows
        .iter()
        .flat_map(|b| {
            let column = b
                .column(0)
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .unwrap();
            column.values().to_vec()
        })
        .collect();
    assert_eq!(left, vec![705_032_704]);
}

/// Replay runs before the claim: a WAL entry the new writer cannot take
/// (more batches than its maxMemtableBatches) refuses the open without
/// fencing the writer in place.
#[tokio::test]
async fn an_open_that_cannot_replay_an_entry_never_fences_the_writer() {
    let root = test_root("mt-doomed-replay");
    let shard = uuid::Uuid::new_v4();
    let a = open(&root, Some(shard), memtable()).await;
    a.put(vec![batch(0, 2), batch(2, 2), batch(4, 2)])
        .await
        .unwrap();
    let small = ShardWriterConfig {
        max_memtable_batches: 2,
        ..memtable()
    };
    let err = open_err(&root, shard, schema(), small).await;
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    assert!(err.message().contains("maxMemtableBatches"), "{err}");
    assert_eq!(manifest(&root, shard).await.writer_epoch, 1);
    a.put(vec![batch(6, 2)]).await.unwrap();
    a.close().await.unwrap();
    assert_eq!(
        ids(&flushed_rows(&root, shard).await),
        (0..8).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_flush_that_keeps_failing_shows_in_stats_and_health_before_close() {
    use memwal_core::HealthState;
    let (root, flaky) = flaky_root("_gen_");
    let writer = open(&root, None, memtable()).await;
    writer.put(vec![batch(0, 10)]).await.unwrap();
    assert_eq!(writer.health().state, HealthState::Ok);
    flaky.arm(usize::MAX);
    writer.force_seal_active().await.unwrap();
    let mut progress = writer.watch_flush_progress().unwrap();
    within(
        "a failed flush attempt",
        progress.wait_for(|p| p.last_error.is_some()),
    )
    .await
    .unwrap();
    let stats = writer.stats();
    assert!(stats.flush_failures >= 1, "{stats:?}");
    let last = stats.last_flush_error.expect("the last flush error");
    assert_eq!(last.code(), ErrorCode::Io, "{last}");
    let health = writer.health();
    assert_eq!(health.state, HealthState::Degraded, "{health:?}");
    assert!(health.consecutive_flush_failures >= 1);
    assert!(health.failure.is_none());
    flaky.arm(0);
    writer.wait_for_flush_drain().await.unwrap();
    let health = writer.health();
    assert_eq!(
        (health.state, health.consecutive_flush_failures),
        (HealthState::Ok, 0)
    );
    assert!(health.flush_failures >= 1, "the count is kept");
    writer.close().await.unwrap();
}

fn reopen_options(shard: uuid::Uuid) -> OpenOptions {
    OpenOptions {
        shard_id: Some(shard),
        schema: schema(),
        config: memtable(),
    }
}

/// What an aborted open leaves: `check_open` (the half an `AbortSignal`
/// can stop) writes nothing, so dropping it leaves the writer in place
/// untouched; `claim` on a later check takes the shard over.
#[tokio::test]
async fn a_checked_open_writes_nothing_until_it_claims() {
    let root = test_root("mt-checked-open");
    let shard = uuid::Uuid::new_v4();
    let a = open(&root, Some(shard), memtable()).await;
    a.put(vec![batch(0, 4)]).await.unwrap();
    let before = manifest(&root, shard).await;
    let checked = ShardWriter::check_open(root.clone(), reopen_options(shard))
        .await
        .unwrap();
    drop(checked);
    assert_eq!(manifest(&root, shard).await, before);
    a.put(vec![batch(4, 4)]).await.unwrap();
    a.close().await.unwrap();
    let b = ShardWriter::check_open(root.clone(), reopen_options(shard))
        .await
        .unwrap()
        .claim()
        .await
        .unwrap();
    assert_eq!(b.epoch(), before.writer_epoch + 1);
    b.close().await.unwrap();
    assert_eq!(
        ids(&flushed_rows(&root, shard).await),
        (0..8).collect::<Vec<_>>()
    );
}

/// Issue 15, item 3: five entries, no close, entry 3 lost. The open used to
/// replay 1–2, put its sentinel at 6 and let its first flush move the
/// replay cursor over the hole, losing 4–5 for good. Now it names the hole
/// and writes nothing: no claim (the live writer is not fenced), no sentinel.
#[tokio::test]
async fn a_lost_wal_entry_fails_the_open_with_corrupt_and_fences_no_one() {
    let root = test_root("mt-hole");
    let writer = open(&root, None, memtable()).await;
    let shard = writer.shard_id();
    for i in 0..5 {
        writer.put(vec![batch(i * 10, 2)]).await.unwrap();
    }
    assert!(wal_entry_exists(&root, shard, 5).await);
    assert!(!wal_entry_exists(&root, shard, 6).await);
    remove_wal_entry(&root, shard, 3).await;
    let before = manifest(&root, shard).await;

    let err = ShardWriter::open(root.clone(), reopen_options(shard))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert!(
        err.message()
            .contains("position 3 is missing while position 5 exists"),
        "{err}"
    );
    assert_eq!(manifest(&root, shard).await, before, "nothing claimed");
    assert!(!wal_entry_exists(&root, shard, 6).await, "no sentinel");
    writer.check_fenced().await.unwrap();
}

/// The hole may be the very first position after the replay cursor;
/// entries at or below the cursor are covered by generations and may be
/// removed. With the lost entry back, the same shard opens with every row.
#[tokio::test]
async fn a_lost_entry_right_after_the_replay_cursor_is_a_hole_but_covered_ones_are_not() {
    let root = test_root("mt-hole-cursor");
    let writer = open(&root, None, memtable()).await;
    let shard = writer.shard_id();
    writer.put(vec![batch(0, 2)]).await.unwrap();
    writer.put(vec![batch(10, 2)]).await.unwrap();
    assert!(writer.force_seal_active().await.unwrap());
    within("flush drain", writer.wait_for_flush_drain())
        .await
        .unwrap();
    let cursor = manifest(&root, shard).await.replay_after_wal_entry_position;
    assert_eq!(cursor, 2);
    writer.put(vec![batch(20, 2)]).await.unwrap();
    writer.put(vec![batch(30, 2)]).await.unwrap();
    drop(writer);
    // Covered entries removed (as an external compaction may): not a hole.
    remove_wal_entry(&root, shard, 1).await;
    remove_wal_entry(&root, shard, 2).await;
    let lost = remove_wal_entry(&root, shard, cursor + 1).await;

    let err = ShardWriter::open(root.clone(), reopen_options(shard))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert!(err.message().contains("position 3 is missing"), "{err}");

    root.put(
        &root.path(&ShardLayout::new(shard).wal_entry(cursor + 1)),
        lost,
    )
    .await
    .unwrap();
    let writer = ShardWriter::open(root.clone(), reopen_options(shard))
        .await
        .unwrap();
    writer.close().await.unwrap();
    let mut got = reader_ids(&root, shard).await;
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 10, 11, 20, 21, 30, 31]);
}

/// The open replays the WAL before it claims, so an entry removed after
/// that (here: just before the fence sentinel) is already in the new
/// writer's MemTables: its rows are flushed with the rest, none is lost.
#[tokio::test]
async fn an_entry_lost_after_the_open_replayed_it_keeps_its_rows() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let store = Arc::new(FaultStore::passthrough(inner.clone()));
    let root = StorageRoot::new(store.clone(), Path::default(), "memory://replay-hole");
    let clean = StorageRoot::new(inner, Path::default(), "memory://replay-hole-clean");
    let writer = open(&clean, None, memtable()).await;
    let shard = writer.shard_id();
    for i in 0..5 {
        writer.put(vec![batch(i * 10, 2)]).await.unwrap();
    }
    drop(writer);
    let lost = clean.clone();
    store.before_first_put(
        &ShardLayout::new(shard).wal_entry(6),
        Box::new(move || {
            Box::pin(async move {
                remove_wal_entry(&lost, shard, 3).await;
            })
        }),
    );
    let writer = ShardWriter::open(root, reopen_options(shard))
        .await
        .unwrap();
    writer.close().await.unwrap();
    let expected: Vec<i64> = (0..5).flat_map(|i| [i * 10, i * 10 + 1]).collect();
    assert_eq!(ids(&flushed_rows(&clean, shard).await), expected);
}
