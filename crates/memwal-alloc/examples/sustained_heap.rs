//! Sustained ingest with a counting allocator: peak live heap bytes against
//! `max_unflushed_memtable_bytes`, separating what memwal keeps alive from
//! what the allocator keeps mapped (RSS). Run with
//! `cargo run --release -p memwal-alloc --example sustained_heap [dir]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_array::{FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use memwal_alloc::LargeAllocsMapped;
use memwal_core::{OpenOptions, ShardWriter, ShardWriterConfig, StorageRoot};

/// Counts live bytes on top of the large-allocation policy the Node addon
/// uses (with the system allocator for small ones, where the addon has
/// mimalloc). Replacing `INNER` by plain `System` shows what glibc alone
/// keeps resident.
struct Counting;

static INNER: LargeAllocsMapped<System> = LargeAllocsMapped::new(System);

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { INNER.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { INNER.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { INNER.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1 << 20;

fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = status
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn schema() -> Arc<Schema> {
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("vector", DataType::FixedSizeList(item, 128), true),
        Field::new("text", DataType::Utf8, true),
    ]))
}

/// A fresh ~1 MiB batch each call, as a put decoded from JS would be.
fn batch(start: i64, rows: usize) -> RecordBatch {
    let ids = Int64Array::from_iter_values(start..start + rows as i64);
    let values = Float32Array::from_iter_values((0..rows * 128).map(|i| i as f32));
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let vectors = FixedSizeListArray::new(item, 128, Arc::new(values), None);
    let text =
        StringArray::from_iter_values((0..rows).map(|i| format!("row {i} {}", "x".repeat(40))));
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(ids), Arc::new(vectors), Arc::new(text)],
    )
    .unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        std::env::temp_dir()
            .join("memwal-heap")
            .display()
            .to_string()
    });
    let budget = 128 * MIB as u64;
    let root = StorageRoot::open(&dir).unwrap();
    let config = ShardWriterConfig {
        enable_memtable: true,
        durable_write: false,
        max_unflushed_memtable_bytes: budget,
        max_memtable_size: budget / 4,
        ..Default::default()
    };
    let base_live = LIVE.load(Ordering::Relaxed);
    let base_rss = rss();
    PEAK.store(base_live, Ordering::Relaxed);
    let writer = ShardWriter::open(
        root,
        OpenOptions {
            shard_id: None,
            schema: schema(),
            config,
        },
    )
    .await
    .unwrap();
    let rows = 1859;
    let bytes = batch(0, rows).get_array_memory_size();
    let puts = 10 * budget as usize / bytes;
    let mut peak_rss = 0;
    let start = std::time::Instant::now();
    for i in 0..puts {
        writer
            .put(vec![batch((i * rows) as i64, rows)])
            .await
            .unwrap();
        peak_rss = peak_rss.max(rss());
    }
    writer.close().await.unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let stats = writer.stats();
    let peak = PEAK.load(Ordering::Relaxed) - base_live;
    println!(
        "{:.1} MB/s; {} flushes, {:.0} ms each",
        (puts * bytes) as f64 / 1e6 / seconds,
        stats.memtable_flush_count,
        stats.memtable_flush_time_ms / stats.memtable_flush_count.max(1) as f64,
    );
    println!(
        "{puts} puts of {:.2} MiB; peak live heap {:.1} MiB above start; peak RSS {:.1} MiB above start; budget {} MiB",
        bytes as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        (peak_rss - base_rss) as f64 / MIB as f64,
        budget / MIB as u64,
    );
}
