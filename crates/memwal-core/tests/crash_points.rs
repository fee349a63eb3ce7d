//! Crash points: the store dies right after its Nth write, for every N in
//! a whole open → put → freeze → flush → manifest → close sequence. A dead
//! store never answers again, which is what a killed process looks like to
//! the storage: later writes simply never happen. Recovery may itself be
//! cut short by a second crash before a clean one finishes.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fault_store::FaultStore;
use common::*;
use memwal_core::{OpenOptions, ShardWriter, ShardWriterConfig, StorageRoot};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;

const PUTS: i64 = 10;
const ROWS: i64 = 5;

fn config() -> ShardWriterConfig {
    ShardWriterConfig {
        max_wal_flush_interval: None,
        stats_log_interval: None,
        wal_persist_retry_base_delay: Duration::from_millis(1),
        // Three batches per MemTable: the ten puts freeze and flush three
        // generations, each followed by a manifest commit.
        max_memtable_batches: 3,
        ..memtable()
    }
}

fn options(shard: uuid::Uuid) -> OpenOptions {
    OpenOptions {
        shard_id: Some(shard),
        schema: schema(),
        config: config(),
    }
}

/// The writing process: sequential durable puts, each recorded once
/// acknowledged, then a drain of the flushes and a close.
async fn workload(root: StorageRoot, shard: uuid::Uuid, acked: Arc<Mutex<Vec<i64>>>) {
    let writer = ShardWriter::open(root, options(shard)).await.unwrap();
    for k in 0..PUTS {
        writer
            .put(vec![batch(k * ROWS, ROWS as usize)])
            .await
            .unwrap();
        acked.lock().unwrap().extend(k * ROWS..(k + 1) * ROWS);
    }
    writer.wait_for_flush_drain().await.unwrap();
    writer.close().await.unwrap();
}

/// Run `work` until it finishes or the store dies under it; true if it died.
async fn run_until_crash(
    store: &Arc<FaultStore>,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> bool {
    let task = tokio::spawn(work);
    let died = tokio::select! {
        finished = task => {
            finished.unwrap();
            false
        }
        _ = store.wait_dead() => true,
    };
    // The writer's background tasks stay parked on the dead store forever,
    // like the threads of a killed process.
    died
}

/// A recovering writer that opens, drains and closes.
async fn recover(root: StorageRoot, shard: uuid::Uuid) {
    let writer = ShardWriter::open(root, options(shard)).await.unwrap();
    writer.wait_for_flush_drain().await.unwrap();
    writer.close().await.unwrap();
}

/// Present ids must be `0..m` for an `m` covering every acknowledged put:
/// puts are sequential, so a later one can only exist after all earlier.
fn assert_prefix(present: &[i64], acked: &[i64]) {
    let mut sorted = present.to_vec();
    sorted.sort();
    let m = sorted.len() as i64;
    assert_eq!(
        sorted,
        (0..m).collect::<Vec<_>>(),
        "present rows are a prefix"
    );
    assert!(
        m >= acked.len() as i64,
        "{m} rows present, {} acknowledged",
        acked.len()
    );
    assert!(
        m <= acked.len() as i64 + ROWS,
        "at most the put in flight is extra"
    );
}

/// Crash after write N for every N of the sequence, on stores `fresh` makes.
async fn crash_at_every_write(fresh: impl Fn() -> Arc<dyn ObjectStore>) {
    // A clean run tells how many writes the sequence makes.
    let probe = Arc::new(FaultStore::passthrough(fresh()));
    let root = StorageRoot::new(probe.clone(), Path::default(), "memory://probe");
    let shard = uuid::Uuid::new_v4();
    workload(root.clone(), shard, Arc::default()).await;
    let total = probe.writes();
    assert!(total >= 2 * PUTS as usize, "only {total} writes");
    let all: HashSet<i64> = (0..PUTS * ROWS).collect();

    let mut crashes = 0;
    let mut recovery_crashes = 0;
    let mut rows_checked = 0;
    // One more than the clean run, so that the last run never dies.
    for n in 1..=total + 1 {
        let inner = fresh();
        let clean = StorageRoot::new(inner.clone(), Path::default(), "memory://clean");
        let dying = Arc::new(FaultStore::passthrough(inner.clone()));
        dying.crash_after_writes(n);
        let root = StorageRoot::new(dying.clone(), Path::default(), "memory://dying");
        let acked = Arc::new(Mutex::new(Vec::new()));
        let died = run_until_crash(&dying, workload(root, shard, acked.clone())).await;
        crashes += died as usize;
        let acked = acked.lock().unwrap().clone();
        if !died {
            assert_eq!(acked.len() as i64, PUTS * ROWS, "the uncut run finishes");
        }

        // The recovering writer dies too, after a few writes of its own.
        let second = Arc::new(FaultStore::passthrough(inner.clone()));
        second.crash_after_writes(n % 5 + 1);
        let second_root = StorageRoot::new(second.clone(), Path::default(), "memory://second");
        recovery_crashes += run_until_crash(&second, recover(second_root, shard)).await as usize;

        if clean_manifest_exists(&clean, shard).await {
            recover(clean.clone(), shard).await;
            let present = reader_ids(&clean, shard).await;
            assert_kept(&present, &acked, &all);
            assert_prefix(&present, &acked);
            rows_checked += present.len();
        } else {
            assert!(
                acked.is_empty(),
                "rows acknowledged before the shard existed"
            );
        }
    }
    eprintln!(
        "{total} writes in the sequence: {crashes} crashes, {recovery_crashes} crashed recoveries, \
         {rows_checked} rows checked"
    );
    assert_eq!(crashes, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_write_to_the_memory_store_keeps_every_acknowledged_row() {
    crash_at_every_write(|| Arc::new(InMemory::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_write_to_the_local_filesystem_keeps_every_acknowledged_row() {
    let dir = tempfile::tempdir().unwrap();
    let next = std::sync::atomic::AtomicUsize::new(0);
    crash_at_every_write(|| {
        let sub = dir.path().join(
            next.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .to_string(),
        );
        std::fs::create_dir_all(&sub).unwrap();
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(sub).unwrap())
    })
    .await;
}

async fn clean_manifest_exists(root: &StorageRoot, shard: uuid::Uuid) -> bool {
    use memwal_core::format::layout::ShardLayout;
    use memwal_core::manifest::ManifestStore;
    ManifestStore::new(root.clone(), ShardLayout::new(shard), 2)
        .read_latest()
        .await
        .unwrap()
        .is_some()
}
