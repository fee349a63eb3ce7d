//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod flaky_store;

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use memwal_core::{OpenOptions, ShardWriter, ShardWriterConfig, StorageRoot};

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// A batch with ids `start..start+rows`.
pub fn batch(start: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (start..start + rows as i64).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("name-{i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

/// WAL-only config with the timer off, so only explicit triggers append.
pub fn wal_only() -> ShardWriterConfig {
    ShardWriterConfig {
        enable_memtable: false,
        max_wal_flush_interval: None,
        stats_log_interval: None,
        ..Default::default()
    }
}

pub fn memory_root(test: &str) -> StorageRoot {
    StorageRoot::open(&format!("memory://{test}-{}", uuid::Uuid::new_v4())).unwrap()
}

pub async fn open(
    root: &StorageRoot,
    shard: Option<uuid::Uuid>,
    config: ShardWriterConfig,
) -> ShardWriter {
    ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: shard,
            schema: schema(),
            config,
        },
    )
    .await
    .unwrap()
}

/// Fails the test instead of hanging when an awaited event never comes.
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
