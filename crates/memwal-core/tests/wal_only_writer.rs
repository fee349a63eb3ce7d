//! Behaviour of the WAL-only shard writer against real stores.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::fault_store::{FailMode, FaultStore, Op, RandomFaults};
use common::*;
use memwal_core::format::layout::ShardLayout;
use memwal_core::manifest::ManifestStore;
use memwal_core::WalTailer;
use memwal_core::{
    DurableProgress, ErrorCode, OpenOptions, PutNow, ShardWriter, ShardWriterConfig, StorageRoot,
};
use object_store::memory::InMemory;
use object_store::path::Path;

async fn entries(root: &StorageRoot, shard: uuid::Uuid) -> Vec<memwal_core::WalEntry> {
    let tailer = WalTailer::new(root.clone(), shard);
    let mut out = Vec::new();
    let mut position = tailer.first_position().await.unwrap();
    while let Some(entry) = tailer.read_entry(position).await.unwrap() {
        out.push(entry);
        position += 1;
    }
    out
}

fn data_entries(all: Vec<memwal_core::WalEntry>) -> Vec<memwal_core::WalEntry> {
    all.into_iter().filter(|e| !e.fence_sentinel).collect()
}

#[tokio::test]
async fn two_durable_puts_become_entries_one_and_two() {
    let dir = tempfile::tempdir().unwrap();
    let root = StorageRoot::open(dir.path().to_str().unwrap()).unwrap();
    let writer = open(&root, None, wal_only()).await;
    assert_eq!(writer.epoch(), 1);
    let first = writer.put(vec![batch(0, 3)]).await.unwrap();
    let second = writer.put(vec![batch(3, 2)]).await.unwrap();
    assert_eq!(first.batch_positions, 0..1);
    assert_eq!(second.batch_positions, 1..2);
    writer.close().await.unwrap();

    let all = entries(&root, writer.shard_id()).await;
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(all.iter().all(|e| e.epoch == 1 && !e.fence_sentinel));
    assert_eq!(all[0].batches, vec![batch(0, 3)]);
    assert_eq!(all[1].batches, vec![batch(3, 2)]);
    // Files follow the spec layout on disk.
    let wal_dir = dir
        .path()
        .join(format!("_mem_wal/{}/wal", writer.shard_id()));
    assert!(wal_dir.join(format!("1{}.arrow", "0".repeat(63))).is_file());
    assert!(wal_dir
        .join(format!("01{}.arrow", "0".repeat(62)))
        .is_file());
}

#[tokio::test]
async fn a_reopened_shard_writes_a_sentinel_then_continues_after_it() {
    let root = test_root("reopen");
    let a = open(&root, None, wal_only()).await;
    a.put(vec![batch(0, 1)]).await.unwrap();
    a.close().await.unwrap();
    let b = open(&root, Some(a.shard_id()), wal_only()).await;
    assert_eq!(b.epoch(), 2);
    b.put(vec![batch(1, 1)]).await.unwrap();
    b.close().await.unwrap();
    let all = entries(&root, a.shard_id()).await;
    let shape: Vec<_> = all
        .iter()
        .map(|e| (e.position, e.epoch, e.fence_sentinel))
        .collect();
    assert_eq!(shape, vec![(1, 1, false), (2, 2, true), (3, 2, false)]);
}

#[tokio::test]
async fn non_durable_puts_without_triggers_are_one_entry_at_close() {
    let root = test_root("nondurable");
    let config = ShardWriterConfig {
        durable_write: false,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    for i in 0..10 {
        writer.put(vec![batch(i * 2, 2)]).await.unwrap();
    }
    assert_eq!(writer.wal_stats().entries_written, 0);
    assert_eq!(writer.wal_stats().pending_batches, 10);
    writer.close().await.unwrap();
    let all = data_entries(entries(&root, writer.shard_id()).await);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].batches.len(), 10);
    assert_eq!(all[0].num_rows(), 20);
}

#[tokio::test]
async fn the_size_trigger_fires_on_every_crossing() {
    let root = test_root("size-trigger");
    let one_batch = memwal_core::memtable::batch_store::estimate_batch_bytes(&batch(0, 50));
    let config = ShardWriterConfig {
        durable_write: false,
        max_wal_buffer_size: one_batch * 2,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    for round in 0..5u64 {
        // Below the threshold: nothing happens.
        let first = writer.put(vec![batch(0, 50)]).await.unwrap();
        assert_eq!(writer.wal_stats().entries_written, round);
        // The second batch crosses it: an append follows, also after earlier drains.
        let second = writer.put(vec![batch(50, 50)]).await.unwrap();
        assert_eq!(second.batch_positions.start, first.batch_positions.end);
        within(
            "size-triggered append",
            writer.wait_durable(second.batch_positions.end),
        )
        .await
        .unwrap();
        assert_eq!(writer.wal_stats().entries_written, round + 1);
    }
    writer.close().await.unwrap();
    assert_eq!(
        data_entries(entries(&root, writer.shard_id()).await).len(),
        5
    );
}

#[tokio::test]
async fn the_flush_interval_appends_idle_batches_on_its_own() {
    let root = test_root("ticker");
    let config = ShardWriterConfig {
        durable_write: false,
        max_wal_flush_interval: Some(Duration::from_millis(20)),
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    let put = writer.put(vec![batch(0, 5)]).await.unwrap();
    within(
        "timer-driven append",
        writer.wait_durable(put.batch_positions.end),
    )
    .await
    .unwrap();
    assert_eq!(writer.wal_stats().entries_written, 1);
    assert_eq!(
        data_entries(entries(&root, writer.shard_id()).await).len(),
        1
    );
    writer.close().await.unwrap();
}

#[tokio::test]
async fn concurrent_durable_puts_share_entries_and_resolve_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = StorageRoot::open(dir.path().to_str().unwrap()).unwrap();
    let writer = open(&root, None, wal_only()).await;
    let puts = 200;
    let tasks: Vec<_> = (0..puts)
        .map(|i| {
            let writer = writer.clone();
            let root = root.clone();
            tokio::spawn(async move {
                let result = writer.put(vec![batch(i, 1)]).await.unwrap();
                // At resolution, the entry holding this batch exists.
                let tailer = WalTailer::new(root, writer.shard_id());
                let tip = tailer.next_position().await.unwrap();
                let mut found = false;
                for p in 1..tip {
                    let entry = tailer.read_entry(p).await.unwrap().unwrap();
                    let ids = entry.batches.iter().flat_map(|b| {
                        b.column(0)
                            .as_any()
                            .downcast_ref::<arrow_array::Int64Array>()
                            .unwrap()
                            .values()
                            .to_vec()
                    });
                    if ids.into_iter().any(|id| id == i) {
                        found = true;
                    }
                }
                assert!(found, "put {i} resolved before its entry existed");
                result.batch_positions
            })
        })
        .collect();
    let mut positions = Vec::new();
    for task in tasks {
        positions.push(task.await.unwrap());
    }
    writer.close().await.unwrap();
    positions.sort_by_key(|r| r.start);
    assert_eq!(
        positions,
        (0..puts as u64).map(|p| p..p + 1).collect::<Vec<_>>()
    );
    let all = data_entries(entries(&root, writer.shard_id()).await);
    let rows: usize = all.iter().map(|e| e.num_rows()).sum();
    assert_eq!(rows, puts as usize);
    assert!(
        all.len() < puts as usize,
        "{} entries for {puts} puts: no group commit",
        all.len()
    );
    assert_eq!(writer.stats().wal_flush_count as usize, all.len());
}

#[tokio::test]
async fn a_second_writer_fences_the_first() {
    let root = test_root("fence");
    let a = open(&root, None, wal_only()).await;
    a.put(vec![batch(0, 2)]).await.unwrap();
    let b = open(&root, Some(a.shard_id()), wal_only()).await;
    assert_eq!(b.epoch(), 2);

    let err = a.check_fenced().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Fenced);
    let err = a.put(vec![batch(100, 3)]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Fenced);
    assert_eq!(
        err.message(),
        format!(
            "Writer fenced: local epoch 1 < stored epoch 2 for shard {}",
            a.shard_id()
        )
    );
    assert_eq!(err.shard_id(), Some(a.shard_id().to_string().as_str()));
    // The rejected batches are still held, not silently dropped.
    assert_eq!(a.wal_stats().pending_batches, 1);
    // The fenced writer stays poisoned.
    assert_eq!(
        a.put(vec![batch(200, 1)]).await.unwrap_err().code(),
        ErrorCode::Fenced
    );
    assert_eq!(a.close().await.unwrap_err().code(), ErrorCode::Fenced);

    b.put(vec![batch(10, 1)]).await.unwrap();
    b.check_fenced().await.unwrap();
    b.close().await.unwrap();
    let all = entries(&root, a.shard_id()).await;
    let shape: Vec<_> = all
        .iter()
        .map(|e| (e.epoch, e.fence_sentinel, e.num_rows()))
        .collect();
    assert_eq!(shape, vec![(1, false, 2), (2, true, 0), (2, false, 1)]);
}

#[tokio::test]
async fn transient_errors_are_retried_at_the_same_position() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let flaky = Arc::new(FaultStore::new(inner, "/wal/", 0, FailMode::Refuse));
    let root = StorageRoot::new(flaky.clone(), Path::default(), "memory://flaky-retry");
    let config = ShardWriterConfig {
        wal_persist_retry_base_delay: Duration::from_millis(1),
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    flaky.arm(2);
    writer.put(vec![batch(0, 1)]).await.unwrap();
    writer.close().await.unwrap();
    let all = entries(&root, writer.shard_id()).await;
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1]);
}

#[tokio::test]
async fn exhausted_retries_poison_the_writer_and_keep_the_batches() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let flaky = Arc::new(FaultStore::new(inner, "/wal/", 0, FailMode::Refuse));
    let root = StorageRoot::new(flaky.clone(), Path::default(), "memory://flaky-poison");
    let config = ShardWriterConfig {
        max_wal_persist_retries: 2,
        wal_persist_retry_base_delay: Duration::from_millis(1),
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    flaky.arm(100);
    let err = writer.put(vec![batch(0, 1)]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io);
    assert!(err.message().contains("poisoned"), "{err}");
    assert_eq!(writer.wal_stats().pending_batches, 1);
    // Every later call fails with the same cause, reads included.
    assert_eq!(
        writer.put(vec![batch(1, 1)]).await.unwrap_err().code(),
        ErrorCode::Io
    );
    assert_eq!(
        writer.check_fenced().await.unwrap_err().code(),
        ErrorCode::Io
    );
    assert_eq!(writer.manifest().await.unwrap_err().code(), ErrorCode::Io);
    flaky.arm(0);
    // A new writer recovers: nothing was half-written.
    let next = open(&root, Some(writer.shard_id()), wal_only()).await;
    next.put(vec![batch(5, 1)]).await.unwrap();
    next.close().await.unwrap();
    let data = data_entries(entries(&root, writer.shard_id()).await);
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].batches, vec![batch(5, 1)]);
}

#[tokio::test]
async fn a_write_that_lands_but_reports_an_error_is_not_a_false_fence_or_duplicate() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let flaky = Arc::new(FaultStore::new(inner, "/wal/", 0, FailMode::LandThenError));
    let root = StorageRoot::new(flaky.clone(), Path::default(), "memory://flaky-ambiguous");
    let config = ShardWriterConfig {
        wal_persist_retry_base_delay: Duration::from_millis(1),
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    flaky.arm(1);
    writer.put(vec![batch(0, 1)]).await.unwrap();
    writer.put(vec![batch(1, 1)]).await.unwrap();
    writer.close().await.unwrap();
    let data = data_entries(entries(&root, writer.shard_id()).await);
    assert_eq!(
        data.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(data[0].batches, vec![batch(0, 1)]);
}

#[tokio::test]
async fn calls_after_close_are_closed_and_close_is_idempotent() {
    let root = test_root("closed");
    let writer = open(&root, None, wal_only()).await;
    writer.put(vec![batch(0, 1)]).await.unwrap();
    let (a, b) = tokio::join!(writer.close(), writer.close());
    a.unwrap();
    b.unwrap();
    writer.close().await.unwrap();
    assert_eq!(
        writer.put(vec![batch(1, 1)]).await.unwrap_err().code(),
        ErrorCode::Closed
    );
    assert_eq!(
        writer.check_fenced().await.unwrap_err().code(),
        ErrorCode::Closed
    );
    assert_eq!(
        writer.manifest().await.unwrap_err().code(),
        ErrorCode::Closed
    );
}

#[tokio::test]
async fn non_durable_puts_racing_close_are_either_written_or_rejected() {
    let root = test_root("close-race");
    let config = ShardWriterConfig {
        durable_write: false,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    let putter = {
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut accepted = 0u64;
            for i in 0..2000 {
                match writer.put(vec![batch(i, 1)]).await {
                    Ok(_) => accepted += 1,
                    Err(e) => {
                        assert_eq!(e.code(), ErrorCode::Closed);
                        break;
                    }
                }
                tokio::task::yield_now().await;
            }
            accepted
        })
    };
    tokio::task::yield_now().await;
    writer.close().await.unwrap();
    let accepted = putter.await.unwrap();
    let rows: usize = data_entries(entries(&root, writer.shard_id()).await)
        .iter()
        .map(|e| e.num_rows())
        .sum();
    assert_eq!(rows as u64, accepted);
}

#[tokio::test]
async fn backpressure_waits_for_the_queue_to_drain() {
    let root = test_root("backpressure");
    let one = memwal_core::memtable::batch_store::estimate_batch_bytes(&batch(0, 100));
    let config = ShardWriterConfig {
        durable_write: false,
        max_wal_buffer_size: one * 100,
        max_unflushed_memtable_bytes: one * 3,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    for i in 0..20 {
        writer.put(vec![batch(i * 100, 100)]).await.unwrap();
        assert!(writer.wal_stats().pending_bytes <= one * 4);
    }
    assert!(writer.stats().backpressure_count > 0);
    writer.close().await.unwrap();
    let rows: usize = data_entries(entries(&root, writer.shard_id()).await)
        .iter()
        .map(|e| e.num_rows())
        .sum();
    assert_eq!(rows, 2000);
}

#[tokio::test]
async fn try_put_now_queues_non_durable_puts_and_hands_back_those_that_must_wait() {
    let root = test_root("put-now");
    let one = memwal_core::memtable::batch_store::estimate_batch_bytes(&batch(0, 100));
    let config = ShardWriterConfig {
        durable_write: false,
        max_wal_buffer_size: one * 100,
        max_unflushed_memtable_bytes: one * 3,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    let mut done = 0u64;
    let mut handed_back = 0;
    for i in 0..20 {
        let batches = vec![batch(i * 100, 100)];
        match writer.try_put_now(batches, false).unwrap() {
            PutNow::Done(result) => {
                assert_eq!(result.batch_positions, done..done + 1);
                done += 1;
            }
            PutNow::Queued(_) => panic!("a non-durable put was left to the listener"),
            PutNow::Wait(batches) => {
                // Over the budget: the batches come back as they were and
                // nothing was queued; the waiting put takes them instead.
                assert_eq!(batches.len(), 1);
                assert_eq!(batches[0].num_rows(), 100);
                assert_eq!(writer.wal_stats().next_batch_position, done);
                handed_back += 1;
                writer.put(batches).await.unwrap();
                done += 1;
            }
        }
        assert_eq!(writer.wal_stats().next_batch_position, done);
    }
    assert!(
        handed_back > 0,
        "the budget of 3 batches never held a put back"
    );
    assert_eq!(writer.stats().put_count, 20);
    writer.close().await.unwrap();
    let all = data_entries(entries(&root, writer.shard_id()).await);
    let written: Vec<i64> = all.iter().flat_map(|e| ids(&e.batches)).collect();
    assert_eq!(written, (0..2000).collect::<Vec<_>>());
    assert_eq!(
        writer
            .try_put_now(vec![batch(0, 1)], false)
            .unwrap_err()
            .code(),
        ErrorCode::Closed
    );
}

/// Collects what the `on_durable` listener is told.
fn durable_notes(writer: &ShardWriter) -> tokio::sync::mpsc::UnboundedReceiver<DurableProgress> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    writer.on_durable(Some(Arc::new(move |p: &DurableProgress| {
        let _ = tx.send(p.clone());
    })));
    rx
}

#[tokio::test]
async fn try_put_now_queues_durable_puts_and_the_listener_acknowledges_them() {
    let root = test_root("put-now-durable");
    let writer = open(&root, None, wal_only()).await;
    let mut notes = durable_notes(&writer);
    let mut ends = Vec::new();
    for i in 0..5 {
        match writer.try_put_now(vec![batch(i * 10, 10)], false).unwrap() {
            PutNow::Queued(result) => {
                assert_eq!(result.batch_positions, i as u64..i as u64 + 1);
                ends.push(result.batch_positions.end);
            }
            other => panic!("a durable put was not queued: {other:?}"),
        }
    }
    // Nothing is counted before it is durable; the listener hears of every
    // entry, in order, until every put is covered.
    let mut durable = 0;
    while durable < 5 {
        let note = notes.recv().await.expect("the WAL task stopped early");
        assert!(note.failure.is_none() && !note.stopped);
        assert!(note.durable > durable, "progress went backwards");
        durable = note.durable;
    }
    let written: Vec<i64> = data_entries(entries(&root, writer.shard_id()).await)
        .iter()
        .flat_map(|e| ids(&e.batches))
        .collect();
    assert_eq!(written, (0..50).collect::<Vec<_>>());
    let stats = writer.stats();
    assert_eq!((stats.put_count, stats.put_rows), (5, 50));
    writer.close().await.unwrap();
    let last = notes.recv().await.unwrap();
    assert!(last.stopped && last.failure.is_none() && last.durable == 5);
}

#[tokio::test]
async fn put_admitted_returns_once_queued_and_leaves_the_durable_ack_to_the_listener() {
    let root = test_root("put-admitted");
    let writer = open(&root, None, wal_only()).await;
    let mut notes = durable_notes(&writer);
    let admitted = writer.put_admitted(vec![batch(0, 10)]).await.unwrap();
    assert_eq!(admitted.batch_positions, 0..1);
    // Counted once durable, by the WAL task, before the listener is told.
    let note = notes.recv().await.expect("the WAL task stopped early");
    assert!(note.failure.is_none() && note.durable >= 1);
    assert_eq!(writer.stats().put_count, 1);
    writer.close().await.unwrap();
}

#[tokio::test]
async fn on_a_slow_store_deferred_durable_puts_wait_for_the_next_append_and_share_its_entry() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let slow = Arc::new(FaultStore::passthrough(inner));
    slow.set_random(Some(RandomFaults {
        ops: vec![Op::Put],
        path_fragment: "/wal/".into(),
        error_rate: 0.0,
        land_then_error_rate: 0.0,
        max_latency: Duration::ZERO,
        write_latency: Duration::from_millis(2),
        seed: 1,
    }));
    let root = StorageRoot::new(slow, Path::default(), "memory://slow-appends");
    let config = ShardWriterConfig {
        max_wal_flush_interval: None,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    let mut notes = durable_notes(&writer);
    // One append teaches the writer that appends here are slow.
    writer.put(vec![batch(0, 10)]).await.unwrap();
    for i in 1..4 {
        assert!(matches!(
            writer.try_put_now(vec![batch(i * 10, 10)], true).unwrap(),
            PutNow::Queued(_)
        ));
    }
    // The first put that does not defer takes the deferred ones along.
    writer.try_put_now(vec![batch(40, 10)], false).unwrap();
    within("the deferred puts' acknowledgement", async {
        while notes.recv().await.unwrap().durable < 5 {}
    })
    .await;
    writer.try_put_now(vec![batch(50, 10)], true).unwrap();
    writer.append_now();
    within("the last put's acknowledgement", async {
        while notes.recv().await.unwrap().durable < 6 {}
    })
    .await;
    let batches_per_entry: Vec<usize> = data_entries(entries(&root, writer.shard_id()).await)
        .iter()
        .map(|e| e.batches.len())
        .collect();
    assert_eq!(batches_per_entry, vec![1, 4, 1]);
    writer.close().await.unwrap();
}

#[tokio::test]
async fn on_a_fast_store_a_deferred_durable_put_is_appended_at_once() {
    let root = memory_root("fast-appends");
    let config = ShardWriterConfig {
        max_wal_flush_interval: None,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    let mut notes = durable_notes(&writer);
    // The writer judges the store by its quickest small append. Seed that
    // with many, so that one append slowed by a busy machine (tests run in
    // parallel) cannot make an in-memory store look slow.
    let seeded = 20;
    for i in 0..seeded {
        writer.put(vec![batch(i * 10, 1)]).await.unwrap();
    }
    for i in seeded..seeded + 3 {
        writer.try_put_now(vec![batch(i * 10, 10)], true).unwrap();
        // Acknowledged without append_now: starting the write at once is
        // worth more than a bigger entry when appends cost microseconds.
        within("the deferred put's acknowledgement", async {
            while notes.recv().await.unwrap().durable < i as u64 + 1 {}
        })
        .await;
    }
    writer.close().await.unwrap();
}

#[tokio::test]
async fn a_queued_durable_put_of_a_fenced_writer_is_told_the_fencing_error() {
    let root = test_root("put-now-fenced");
    let first = open(&root, None, wal_only()).await;
    let mut notes = durable_notes(&first);
    first.put(vec![batch(0, 5)]).await.unwrap();
    let _second = open(&root, Some(first.shard_id()), wal_only()).await;
    let PutNow::Queued(queued) = first.try_put_now(vec![batch(5, 5)], false).unwrap() else {
        panic!("the durable put was not queued");
    };
    let note = loop {
        let note = notes
            .recv()
            .await
            .expect("the WAL task stopped without a verdict");
        if note.failure.is_some() {
            break note;
        }
    };
    let failure = note.failure.unwrap();
    assert_eq!(failure.code(), ErrorCode::Fenced);
    assert_eq!(
        failure.shard_id(),
        Some(first.shard_id().to_string().as_str())
    );
    assert!(note.durable < queued.batch_positions.end);
    // Counted: the put awaited before the takeover, not the fenced one.
    assert_eq!(first.stats().put_count, 1);
    assert_eq!(
        first
            .try_put_now(vec![batch(10, 1)], false)
            .unwrap_err()
            .code(),
        ErrorCode::Fenced
    );
}

#[tokio::test]
async fn try_put_now_refuses_bad_input_and_leaves_the_writer_healthy() {
    let root = test_root("put-now-bad-input");
    let config = ShardWriterConfig {
        durable_write: false,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    let other = arrow_array::RecordBatch::try_new(
        Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "x",
            arrow_schema::DataType::Int64,
            false,
        )])),
        vec![Arc::new(arrow_array::Int64Array::from(vec![1]))],
    )
    .unwrap();
    let err = writer.try_put_now(vec![other], false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SchemaMismatch);
    let err = writer.try_put_now(vec![], false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(matches!(
        writer.try_put_now(vec![batch(5, 5)], false).unwrap(),
        PutNow::Done(_)
    ));
    writer.close().await.unwrap();
    let written: Vec<i64> = data_entries(entries(&root, writer.shard_id()).await)
        .iter()
        .flat_map(|e| ids(&e.batches))
        .collect();
    assert_eq!(written, (5..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn bad_puts_get_their_codes_and_leave_the_writer_healthy() {
    let root = test_root("badput");
    let writer = open(&root, None, wal_only()).await;
    let err = writer.put(vec![]).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (ErrorCode::InvalidInput, "Cannot write empty batch list")
    );
    let empty = arrow_array::RecordBatch::new_empty(schema());
    let err = writer.put(vec![batch(0, 1), empty]).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (ErrorCode::InvalidInput, "Batch 1 is empty")
    );
    let other = arrow_array::RecordBatch::try_new(
        Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "x",
            arrow_schema::DataType::Int64,
            false,
        )])),
        vec![Arc::new(arrow_array::Int64Array::from(vec![1]))],
    )
    .unwrap();
    assert_eq!(
        writer.put(vec![other]).await.unwrap_err().code(),
        ErrorCode::SchemaMismatch
    );
    // None of that reached the WAL, and the writer still works.
    writer.put(vec![batch(0, 1)]).await.unwrap();
    writer.close().await.unwrap();
    assert_eq!(
        data_entries(entries(&root, writer.shard_id()).await).len(),
        1
    );
}

#[tokio::test]
async fn invalid_configs_fail_before_claiming() {
    let root = test_root("badconfig");
    let shard = uuid::Uuid::new_v4();
    let healthy = open(&root, Some(shard), wal_only()).await;
    for config in [
        ShardWriterConfig {
            max_memtable_batches: 0,
            ..wal_only()
        },
        ShardWriterConfig {
            max_wal_buffer_size: 0,
            ..wal_only()
        },
        ShardWriterConfig {
            manifest_scan_batch_size: 0,
            ..wal_only()
        },
    ] {
        let err = ShardWriter::open(
            root.clone(),
            OpenOptions {
                shard_id: Some(shard),
                schema: schema(),
                config,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
    }
    // The healthy writer was not fenced by the doomed opens.
    healthy.check_fenced().await.unwrap();
    healthy.put(vec![batch(0, 1)]).await.unwrap();
    assert_eq!(healthy.epoch(), 1);
    healthy.close().await.unwrap();
}

#[tokio::test]
async fn corrupt_and_truncated_entries_are_reported_with_their_position() {
    let root = test_root("corrupt");
    let writer = open(&root, None, wal_only()).await;
    writer.put(vec![batch(0, 4)]).await.unwrap();
    writer.close().await.unwrap();
    let layout = ShardLayout::new(writer.shard_id());
    let good = root
        .get(&root.path(&layout.wal_entry(1)))
        .await
        .unwrap()
        .unwrap();
    root.put(
        &root.path(&layout.wal_entry(2)),
        good.slice(0..good.len() / 2),
    )
    .await
    .unwrap();
    root.put(
        &root.path(&layout.wal_entry(3)),
        Bytes::from_static(b"garbage"),
    )
    .await
    .unwrap();
    let tailer = WalTailer::new(root.clone(), writer.shard_id());
    assert!(tailer.read_entry(1).await.unwrap().is_some());
    for position in [2, 3] {
        let err = tailer.read_entry(position).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt);
        assert!(
            err.message().contains(&format!("position {position}")),
            "{err}"
        );
    }
    assert_eq!(
        tailer.read_entry(0).await.unwrap_err().code(),
        ErrorCode::InvalidInput
    );
    assert!(tailer.read_entry(99).await.unwrap().is_none());
}

#[tokio::test]
async fn a_garbage_manifest_makes_open_fail_cleanly() {
    let root = test_root("badmanifest");
    let writer = open(&root, None, wal_only()).await;
    writer.close().await.unwrap();
    let layout = ShardLayout::new(writer.shard_id());
    let path = format!(
        "{}/{}",
        layout.manifest_dir(),
        memwal_core::format::names::bit_reversed_name(2, "binpb")
    );
    root.put(&root.path(&path), Bytes::from_static(b"\x08\x02\xff\xff"))
        .await
        .unwrap();
    let err = ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: Some(writer.shard_id()),
            schema: schema(),
            config: wal_only(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    let manifests = ManifestStore::new(root.clone(), layout, 2);
    assert_eq!(manifests.list_versions().await.unwrap(), vec![1, 2]);
}

#[tokio::test]
async fn a_put_is_never_split_across_entries() {
    let root = test_root("unsplit");
    let one = memwal_core::memtable::batch_store::estimate_batch_bytes(&batch(0, 20));
    // Entries are capped near 2 x maxWalBufferSize; puts of 3 batches exceed it.
    let config = ShardWriterConfig {
        durable_write: false,
        max_wal_buffer_size: one,
        ..wal_only()
    };
    let writer = open(&root, None, config).await;
    for i in 0..10 {
        writer
            .put(vec![
                batch(i * 60, 20),
                batch(i * 60 + 20, 20),
                batch(i * 60 + 40, 20),
            ])
            .await
            .unwrap();
    }
    writer.close().await.unwrap();
    let data = data_entries(entries(&root, writer.shard_id()).await);
    assert!(data.len() > 1, "the cap never cut an entry");
    for entry in &data {
        assert_eq!(
            entry.batches.len() % 3,
            0,
            "entry {} holds part of a put",
            entry.position
        );
    }
    assert_eq!(data.iter().map(|e| e.num_rows()).sum::<usize>(), 600);
}

#[tokio::test]
async fn reserved_schema_metadata_is_rejected() {
    let root = test_root("reserved");
    for key in ["writer_epoch", "fence_sentinel"] {
        let schema = Arc::new(arrow_schema::Schema::new_with_metadata(
            schema().fields().clone(),
            std::collections::HashMap::from([(key.to_string(), "true".to_string())]),
        ));
        let err = ShardWriter::open(
            root.clone(),
            OpenOptions {
                shard_id: None,
                schema,
                config: wal_only(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert!(err.message().contains(key), "{err}");
    }
}

#[tokio::test]
async fn an_ambiguous_claim_is_a_failure_not_a_shared_epoch() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let flaky = Arc::new(FaultStore::new(inner, ".binpb", 1, FailMode::LandThenError));
    let root = StorageRoot::new(flaky.clone(), Path::default(), "memory://flaky-claim");
    let shard = uuid::Uuid::new_v4();
    let err = ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: Some(shard),
            schema: schema(),
            config: wal_only(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    // The landed claim belongs to nobody; the next open takes the epoch after it.
    let writer = open(&root, Some(shard), wal_only()).await;
    assert_eq!(writer.epoch(), 2);
    writer.close().await.unwrap();
}

/// Found by the racing-processes test: after losing position p, the writer
/// checked the manifest and then looked for the new tip. A rival claiming
/// and writing its fence sentinel in between was skipped over, and the old
/// epoch appended (and acknowledged) after the sentinel, where no replay
/// looks. Here the rival is slipped in at exactly that point.
#[tokio::test]
async fn a_takeover_between_a_lost_position_and_the_new_tip_fences_the_writer() {
    use memwal_core::wal::{encode_entry, encode_fence_sentinel};
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let store = Arc::new(FaultStore::passthrough(inner.clone()));
    let root = StorageRoot::new(store.clone(), Path::default(), "memory://race-tip");
    let clean = StorageRoot::new(inner, Path::default(), "memory://race-tip-clean");
    let writer = open(&root, None, wal_only()).await;
    let shard = writer.shard_id();
    let layout = ShardLayout::new(shard);

    // Someone else's entry takes position 1, so the writer's first append
    // loses it and goes looking for the tip, reading position 2 first...
    let squatter = encode_entry(1, &schema(), &[batch(1000, 1)]).unwrap();
    clean
        .put(&clean.path(&layout.wal_entry(1)), squatter)
        .await
        .unwrap();
    // ...just before which a new writer claims epoch 2 and fences at 2.
    let (rival_root, rival_layout) = (clean.clone(), layout.clone());
    store.before_first_read(
        &layout.wal_entry(2),
        Box::new(move || {
            Box::pin(async move {
                let manifests = ManifestStore::new(rival_root.clone(), rival_layout.clone(), 2);
                assert_eq!(manifests.claim_epoch(0).await.unwrap().writer_epoch, 2);
                rival_root
                    .put(
                        &rival_root.path(&rival_layout.wal_entry(2)),
                        encode_fence_sentinel(2),
                    )
                    .await
                    .unwrap();
            })
        }),
    );

    let err = writer.put(vec![batch(0, 1)]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Fenced, "{err}");
    let tailer = WalTailer::new(clean.clone(), shard);
    assert!(
        tailer.read_entry(3).await.unwrap().is_none(),
        "the fenced writer appended after the sentinel"
    );
}

/// Also found by the racing-processes test: a writer looked for the WAL
/// tip after claiming its epoch but never looked at the manifest again, so
/// a rival that claimed and fenced in between was passed over and both
/// wrote on. The open must end FENCED instead.
#[tokio::test]
async fn a_takeover_between_claim_and_finding_the_tip_fences_the_opening_writer() {
    use memwal_core::wal::encode_fence_sentinel;
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let store = Arc::new(FaultStore::passthrough(inner.clone()));
    let root = StorageRoot::new(store.clone(), Path::default(), "memory://race-open");
    let clean = StorageRoot::new(inner, Path::default(), "memory://race-open-clean");
    let first = open(&clean, None, wal_only()).await;
    let shard = first.shard_id();
    first.put(vec![batch(0, 1)]).await.unwrap();
    first.close().await.unwrap();
    let layout = ShardLayout::new(shard);

    // The opening writer (epoch 2) looks for its tip from entry 1 once it
    // has claimed. Its checks before the claim read entry 1 too, so the
    // hook is armed by the claim's manifest write: just before the opening
    // writer's first read of entry 1 after that, a rival claims epoch 3 and
    // puts its sentinel at position 2.
    let (rival_root, rival_layout) = (clean.clone(), layout.clone());
    let (hooked, first_entry) = (store.clone(), layout.wal_entry(1));
    store.before_first_put(
        &layout.manifest_dir(),
        Box::new(move || {
            Box::pin(async move {
                hooked.before_first_read(
                    &first_entry,
                    Box::new(move || {
                        Box::pin(async move {
                            let manifests =
                                ManifestStore::new(rival_root.clone(), rival_layout.clone(), 2);
                            assert_eq!(manifests.claim_epoch(0).await.unwrap().writer_epoch, 3);
                            rival_root
                                .put(
                                    &rival_root.path(&rival_layout.wal_entry(2)),
                                    encode_fence_sentinel(3),
                                )
                                .await
                                .unwrap();
                        })
                    }),
                );
            })
        }),
    );
    let err = ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: Some(shard),
            schema: schema(),
            config: wal_only(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Fenced, "{err}");
    let tailer = WalTailer::new(clean, shard);
    assert!(
        tailer.read_entry(3).await.unwrap().is_none(),
        "epoch 2 wrote after epoch 3's sentinel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_put_is_already_counted_in_the_stats() {
    let root = test_root("stats-order");
    let writer = open(&root, None, wal_only()).await;
    for i in 1..=iterations(300) as u64 {
        writer.put(vec![batch(i as i64, 1)]).await.unwrap();
        let stats = writer.stats();
        assert_eq!(stats.wal_flush_count, i, "after put {i}");
        assert!(stats.wal_flush_bytes > 0);
    }
    writer.close().await.unwrap();
}

#[tokio::test]
async fn a_wal_only_open_with_another_schema_never_fences_the_writer() {
    use arrow_schema::{DataType, Field, Schema};
    let root = test_root("wal-doomed-schema");
    let shard = uuid::Uuid::new_v4();
    let config = ShardWriterConfig {
        durable_write: true,
        ..wal_only()
    };
    let a = open(&root, Some(shard), config.clone()).await;
    a.put(vec![batch(0, 4)]).await.unwrap();
    let other = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
    let err = ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: Some(shard),
            schema: other,
            config: config.clone(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SchemaMismatch, "{err}");
    a.put(vec![batch(4, 4)]).await.unwrap();
    a.close().await.unwrap();
    let ids: Vec<i64> = entries(&root, shard)
        .await
        .iter()
        .flat_map(|e| common::ids(&e.batches))
        .collect();
    assert_eq!(ids, (0..8).collect::<Vec<_>>());
}

fn wal_only_options(shard: uuid::Uuid) -> OpenOptions {
    OpenOptions {
        shard_id: Some(shard),
        schema: schema(),
        config: wal_only(),
    }
}

/// A shard whose WAL holds entries 1..=5 (one per put), the writer still open.
async fn five_entries(root: &StorageRoot) -> ShardWriter {
    let writer = open(root, None, wal_only()).await;
    for i in 0..5 {
        writer.put(vec![batch(i * 10, 1)]).await.unwrap();
    }
    assert!(wal_entry_exists(root, writer.shard_id(), 5).await);
    writer
}

fn assert_hole(err: memwal_core::Error, missing: u64, later: u64) {
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert!(
        err.message().contains(&format!(
            "position {missing} is missing while position {later} exists"
        )),
        "{err}"
    );
}

/// Issue 15, item 3: the tailer used to stop at the hole forever (a miss
/// there looked like the tip). Whatever it knew before, a read of the hole
/// and the search for the first position name the hole; the tip is no hole.
#[tokio::test]
async fn the_tailer_names_a_lost_entry_instead_of_waiting_at_it() {
    let root = test_root("wal-tail-hole");
    let writer = five_entries(&root).await;
    let shard = writer.shard_id();
    remove_wal_entry(&root, shard, 3).await;

    // Walking in order, as follow() does.
    let tailer = WalTailer::new(root.clone(), shard);
    assert!(tailer.read_entry(1).await.unwrap().is_some());
    assert!(tailer.read_entry(2).await.unwrap().is_some());
    assert_hole(tailer.read_entry(3).await.unwrap_err(), 3, 5);
    // Knowing nothing: the miss itself looks past the hole.
    let fresh = WalTailer::new(root.clone(), shard);
    assert_hole(fresh.read_entry(3).await.unwrap_err(), 3, 5);
    // Having seen a later entry first.
    let ahead = WalTailer::new(root.clone(), shard);
    assert!(ahead.read_entry(4).await.unwrap().is_some());
    assert_hole(ahead.read_entry(3).await.unwrap_err(), 3, 4);
    assert_hole(
        WalTailer::new(root.clone(), shard)
            .first_position()
            .await
            .unwrap_err(),
        3,
        5,
    );
    assert!(tailer.read_entry(6).await.unwrap().is_none());
    assert!(tailer.read_entry(7).await.unwrap().is_none());
    drop(writer);

    // The first position is a hole too when position 1 is lost.
    remove_wal_entry(&root, shard, 1).await;
    assert_hole(
        WalTailer::new(root.clone(), shard)
            .first_position()
            .await
            .unwrap_err(),
        1,
        5,
    );
}

/// Entries written after the tailer's look at the WAL (one LIST at its
/// first miss) are new entries, not holes: a tailer waiting at the tip
/// takes them as they come.
#[tokio::test]
async fn a_tailer_waiting_at_the_tip_takes_new_entries_as_they_come() {
    let root = test_root("wal-tail-tip");
    let writer = open(&root, None, wal_only()).await;
    let shard = writer.shard_id();
    writer.put(vec![batch(0, 1)]).await.unwrap();
    let tailer = WalTailer::new(root.clone(), shard);
    assert!(tailer.read_entry(1).await.unwrap().is_some());
    assert!(tailer.read_entry(2).await.unwrap().is_none());
    for i in 1..4 {
        writer.put(vec![batch(i * 10, 1)]).await.unwrap();
    }
    for position in 2..5 {
        assert!(tailer.read_entry(position).await.unwrap().is_some());
    }
    assert!(tailer.read_entry(5).await.unwrap().is_none());
    // Out of order: a later entry read first, then the earlier one.
    let other = WalTailer::new(root.clone(), shard);
    assert!(other.read_entry(4).await.unwrap().is_some());
    assert!(other.read_entry(2).await.unwrap().is_some());
    writer.close().await.unwrap();
}

/// The WAL-only writer has no replay, yet it must not write past a hole:
/// the open names it and claims nothing.
#[tokio::test]
async fn a_wal_only_writer_does_not_open_past_a_lost_entry() {
    let root = test_root("wal-open-hole");
    let writer = five_entries(&root).await;
    let shard = writer.shard_id();
    remove_wal_entry(&root, shard, 2).await;
    remove_wal_entry(&root, shard, 3).await;
    let manifests = ManifestStore::new(root.clone(), ShardLayout::new(shard), 2);
    let before = manifests.read_latest().await.unwrap();
    let err = ShardWriter::open(root.clone(), wal_only_options(shard))
        .await
        .unwrap_err();
    assert_hole(err, 2, 5);
    assert_eq!(manifests.read_latest().await.unwrap(), before);
    assert!(!wal_entry_exists(&root, shard, 6).await);
    writer.check_fenced().await.unwrap();
}

/// Issue 15: a directory or dangling symbolic link at the next WAL position
/// takes the name of every create, yet no read sees an entry there. The
/// open and the live writer used to fail with "lost 64 position races…
/// another process is writing"; now both say what is in the way (CORRUPT:
/// retrying cannot help, someone must remove it), and the open claims nothing.
#[tokio::test]
async fn a_directory_or_dangling_link_at_the_next_position_is_named() {
    type Obstruct = fn(&std::path::Path);
    let kinds: [(&str, Obstruct); 2] = [
        ("is a directory", |p| std::fs::create_dir(p).unwrap()),
        ("is a dangling symbolic link", |p| {
            std::os::unix::fs::symlink("/nonexistent/memwal-target", p).unwrap()
        }),
    ];
    for (what, obstruct) in kinds {
        let dir = tempfile::tempdir().unwrap();
        let root = StorageRoot::open(dir.path().to_str().unwrap()).unwrap();
        let in_the_way = |shard: uuid::Uuid| {
            let path = dir.path().join(ShardLayout::new(shard).wal_entry(2));
            obstruct(&path);
            path.display().to_string()
        };
        let check = |err: memwal_core::Error, path: &str| {
            assert_eq!(err.code(), ErrorCode::Corrupt, "{what}: {err}");
            assert!(err.message().contains(&format!("{path} {what}")), "{err}");
        };

        // A live writer whose next entry is blocked.
        let writer = open(&root, None, wal_only()).await;
        writer.put(vec![batch(0, 1)]).await.unwrap();
        let path = in_the_way(writer.shard_id());
        check(writer.put(vec![batch(1, 1)]).await.unwrap_err(), &path);

        // An open whose sentinel would be blocked.
        let writer = open(&root, None, wal_only()).await;
        let shard = writer.shard_id();
        writer.put(vec![batch(0, 1)]).await.unwrap();
        writer.close().await.unwrap();
        let path = in_the_way(shard);
        let manifests = ManifestStore::new(root.clone(), ShardLayout::new(shard), 2);
        let before = manifests.read_latest().await.unwrap();
        let err = ShardWriter::open(root.clone(), wal_only_options(shard))
            .await
            .unwrap_err();
        check(err, &path);
        assert_eq!(manifests.read_latest().await.unwrap(), before);
    }
}
