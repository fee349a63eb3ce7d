//! Store faults: random errors and latency on every kind of call, and
//! writes that land but report failure. Writes either succeed or fail with
//! a clear error, flushes retry, and once the faults stop everything that
//! was acknowledged is readable exactly once.

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::fault_store::{FaultStore, Op, RandomFaults};
use common::*;
use memwal_core::read::scan::ScanRequest;
use memwal_core::read::shard_reader::ShardReader;
use memwal_core::{ErrorCode, OpenOptions, ShardWriter, ShardWriterConfig, StorageRoot};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;

const ROWS_PER_PUT: usize = 20;
const CONCURRENT_PUTS: usize = 4;

/// What one chaos run saw.
#[derive(Debug, Default)]
struct Report {
    acked_rows: usize,
    failed_puts: usize,
    failed_opens: usize,
    reopens: usize,
    injected: usize,
}

fn chaos_config(enable_memtable: bool) -> ShardWriterConfig {
    ShardWriterConfig {
        enable_memtable,
        max_wal_flush_interval: None,
        stats_log_interval: None,
        wal_persist_retry_base_delay: Duration::from_millis(1),
        // Small MemTables, so Parquet flushes run (and fail, and retry)
        // many times during the run.
        max_memtable_batches: 8,
        ..Default::default()
    }
}

/// Faults the writer must report as a store problem, never as anything
/// that blames the caller or another writer.
fn assert_store_error(err: &memwal_core::Error) {
    assert_eq!(
        err.code(),
        ErrorCode::Io,
        "unexpected error under faults: {err}"
    );
    assert!(!err.message().is_empty());
}

/// Put `rounds` × `CONCURRENT_PUTS` durable puts through a store injecting
/// `faults`, reopening the shard whenever the writer is poisoned (opens
/// can fail too: a store error fails an open, and the caller retries);
/// then stop the faults and check what is readable.
async fn chaos(
    inner: Arc<dyn ObjectStore>,
    faults: RandomFaults,
    enable_memtable: bool,
    rounds: usize,
) -> Report {
    let store = Arc::new(FaultStore::passthrough(inner.clone()));
    let root = StorageRoot::new(store.clone(), Path::default(), "memory://chaos");
    let clean = StorageRoot::new(inner, Path::default(), "memory://chaos-clean");
    let shard = uuid::Uuid::new_v4();
    let options = || OpenOptions {
        shard_id: Some(shard),
        schema: schema(),
        config: chaos_config(enable_memtable),
    };
    // The first open is clean; takeovers later open under faults.
    let mut writer = Some(ShardWriter::open(root.clone(), options()).await.unwrap());
    store.set_random(Some(faults));

    let mut report = Report::default();
    let mut acked = Vec::new();
    let mut attempted = HashSet::new();
    let mut next_id = 0i64;
    for _ in 0..rounds {
        let current = match &writer {
            Some(w) => w,
            None => match ShardWriter::open(root.clone(), options()).await {
                Ok(w) => writer.insert(w),
                Err(err) => {
                    assert_store_error(&err);
                    report.failed_opens += 1;
                    continue;
                }
            },
        };
        let starts: Vec<i64> = (0..CONCURRENT_PUTS)
            .map(|k| next_id + (k * ROWS_PER_PUT) as i64)
            .collect();
        next_id += (CONCURRENT_PUTS * ROWS_PER_PUT) as i64;
        let results = futures::future::join_all(
            starts
                .iter()
                .map(|start| current.put(vec![batch(*start, ROWS_PER_PUT)])),
        )
        .await;
        let mut poisoned = false;
        for (start, result) in starts.iter().zip(results) {
            attempted.extend(*start..*start + ROWS_PER_PUT as i64);
            match result {
                Ok(_) => acked.extend(*start..*start + ROWS_PER_PUT as i64),
                Err(err) => {
                    assert_store_error(&err);
                    report.failed_puts += 1;
                    poisoned |= err.message().contains("poisoned");
                }
            }
        }
        if poisoned {
            // A poisoned writer keeps refusing; a new one takes over.
            let _ = current.close().await;
            writer = None;
            report.reopens += 1;
        }
    }
    store.set_random(None);
    report.injected = store.injected.load(Ordering::SeqCst);
    if let Some(w) = writer {
        w.close().await.unwrap();
    }

    // Read back through the raw store: a fresh reader and a replaying writer.
    assert_kept(&reader_ids(&clean, shard).await, &acked, &attempted);
    let replayed = ShardWriter::open(clean.clone(), options()).await.unwrap();
    if enable_memtable {
        replayed.wait_for_flush_drain().await.unwrap();
    }
    replayed.put(vec![batch(next_id, 1)]).await.unwrap();
    acked.push(next_id);
    attempted.insert(next_id);
    replayed.close().await.unwrap();
    assert_kept(&reader_ids(&clean, shard).await, &acked, &attempted);
    report.acked_rows = acked.len();
    report
}

fn file_store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    (dir, Arc::new(store))
}

#[tokio::test]
async fn ten_percent_errors_on_every_call_lose_no_acknowledged_row_in_memtable_mode() {
    for seed in 0..3 {
        let report = chaos(
            Arc::new(InMemory::new()),
            RandomFaults::everywhere(0.10, seed),
            true,
            300,
        )
        .await;
        eprintln!("memtable mode, memory store, seed {seed}: {report:?}");
        assert!(report.injected > 15, "too few faults injected: {report:?}");
        assert!(report.acked_rows > 0);
    }
}

#[tokio::test]
async fn writers_poisoned_by_failing_wal_writes_are_taken_over_without_loss() {
    // Half of all WAL writes fail (half of those after landing): enough
    // for some appends to exhaust their retries and poison the writer.
    let mut reopens = 0;
    for seed in 20..23 {
        let faults = RandomFaults {
            ops: vec![Op::Put],
            path_fragment: "/wal/".into(),
            error_rate: 0.5,
            ..RandomFaults::everywhere(0.0, seed)
        };
        let report = chaos(Arc::new(InMemory::new()), faults, true, 100).await;
        eprintln!("50% failing WAL writes, seed {seed}: {report:?}");
        reopens += report.reopens;
    }
    assert!(reopens > 0, "no writer was ever poisoned");
}

#[tokio::test]
async fn ten_percent_errors_on_every_call_lose_no_acknowledged_row_in_wal_only_mode() {
    for seed in 10..13 {
        let report = chaos(
            Arc::new(InMemory::new()),
            RandomFaults::everywhere(0.10, seed),
            false,
            300,
        )
        .await;
        eprintln!("WAL-only mode, memory store, seed {seed}: {report:?}");
        assert!(report.injected > 15, "too few faults injected: {report:?}");
        assert!(report.acked_rows > 0);
    }
}

#[tokio::test]
async fn ten_percent_errors_with_latency_on_the_local_filesystem() {
    let (_dir, inner) = file_store();
    let faults = RandomFaults {
        max_latency: Duration::from_millis(3),
        write_latency: Duration::from_millis(2),
        ..RandomFaults::everywhere(0.10, 42)
    };
    let report = chaos(inner, faults, true, 150).await;
    eprintln!("memtable mode, local filesystem, latency: {report:?}");
    assert!(report.injected > 15, "too few faults injected: {report:?}");
}

#[tokio::test]
async fn writes_that_land_but_report_errors_are_never_a_false_fence_nor_a_duplicate() {
    // Every third write of any kind (WAL entry, Parquet file, manifest,
    // hint) lands and then reports a failure; nothing else fails.
    let faults = RandomFaults {
        ops: vec![Op::Put],
        error_rate: 0.33,
        land_then_error_rate: 1.0,
        max_latency: Duration::ZERO,
        ..RandomFaults::everywhere(0.0, 7)
    };
    let report = chaos(Arc::new(InMemory::new()), faults, true, 60).await;
    eprintln!("ambiguous writes: {report:?}");
    assert!(report.injected > 20, "{report:?}");
    // `chaos` asserts every error is IO, so none of them was FENCED.
    assert!(report.acked_rows > 0);
}

#[tokio::test]
async fn under_read_faults_readers_and_opens_see_everything_or_fail_with_io() {
    let store = Arc::new(FaultStore::passthrough(Arc::new(InMemory::new())));
    let root = StorageRoot::new(store.clone(), Path::default(), "memory://read-faults");
    let writer = open(&root, None, chaos_config(true)).await;
    for k in 0..30 {
        writer.put(vec![batch(k * 10, 10)]).await.unwrap();
    }
    let shard = writer.shard_id();
    drop(writer);
    let expected: Vec<i64> = (0..300).collect();
    store.set_random(Some(RandomFaults {
        ops: vec![Op::Get, Op::List],
        error_rate: 0.05,
        ..RandomFaults::everywhere(0.0, 99)
    }));
    let (mut whole, mut failed) = (0, 0);
    for _ in 0..40 {
        let read = async {
            let reader = ShardReader::open(root.clone(), shard).await?;
            reader.scan(&ScanRequest::default()).await
        };
        match read.await {
            Ok((_, batches)) => {
                let mut got = ids(&batches);
                got.sort();
                assert_eq!(got, expected, "a reader that succeeds sees every row");
                whole += 1;
            }
            Err(err) => {
                assert_store_error(&err);
                failed += 1;
            }
        }
        match ShardWriter::open(
            root.clone(),
            OpenOptions {
                shard_id: Some(shard),
                schema: schema(),
                config: chaos_config(true),
            },
        )
        .await
        {
            Ok(w) => {
                // The writer holds the unflushed tail: the newest rows.
                let mut got = ids(&w.visible_batches().unwrap());
                got.sort();
                assert_eq!(got, expected[expected.len() - got.len()..], "replayed tail");
                whole += 1;
            }
            Err(err) => {
                assert_store_error(&err);
                failed += 1;
            }
        }
    }
    eprintln!(
        "read faults: {whole} complete reads and opens, {failed} failed with IO, {} injected",
        store.injected.load(Ordering::SeqCst)
    );
    assert!(whole > 0 && failed > 0, "{whole} complete, {failed} failed");
}

#[tokio::test]
async fn flushes_retry_until_the_store_heals() {
    let store = Arc::new(FaultStore::passthrough(Arc::new(InMemory::new())));
    let root = StorageRoot::new(store.clone(), Path::default(), "memory://flush-heal");
    let writer = open(&root, None, chaos_config(true)).await;
    // Parquet files always fail, so nothing can flush.
    store.set_random(Some(RandomFaults {
        ops: vec![Op::Put],
        path_fragment: "_gen_".into(),
        error_rate: 1.0,
        land_then_error_rate: 0.0,
        ..RandomFaults::everywhere(0.0, 1)
    }));
    for k in 0..20 {
        writer.put(vec![batch(k * 50, 50)]).await.unwrap();
    }
    let mut progress = writer.watch_flush_progress().unwrap();
    within(
        "a failed flush attempt",
        progress.wait_for(|p| p.last_error.is_some()),
    )
    .await
    .unwrap();
    assert_eq!(
        writer.manifest().await.unwrap().flushed_generations.len(),
        0
    );
    store.set_random(None);
    within("the flush backlog to drain", writer.wait_for_flush_drain())
        .await
        .unwrap();
    assert!(!writer
        .manifest()
        .await
        .unwrap()
        .flushed_generations
        .is_empty());
    writer.close().await.unwrap();
    let all: Vec<i64> = (0..1000).collect();
    let mut present = reader_ids(&root, writer.shard_id()).await;
    present.sort();
    assert_eq!(present, all);
}
