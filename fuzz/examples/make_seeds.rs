//! Writes the seed corpora in `fuzz/seeds/<target>/` with the production
//! encoders: `cargo run --example make_seeds` (from `fuzz/`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    StructArray,
};
use arrow_schema::{DataType, Field, Schema};
use memwal_core::format::primary_key::PRIMARY_KEY_METADATA;
use memwal_core::format::TOMBSTONE_COLUMN;
use memwal_core::manifest::{FlushedGeneration, ShardFieldEntry, ShardManifest, ShardStatus};
use memwal_core::wal::{encode_entry, encode_fence_sentinel};
use memwal_fuzz::{MANIFEST_SHARD, MANIFEST_VERSION, MAX_LEN};
use prost::Message;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    assert!(bytes.len() <= MAX_LEN, "{name} is longer than MAX_LEN");
    std::fs::write(dir.join(name), bytes).expect("seed written");
    println!("{}/{name}: {} bytes", dir.display(), bytes.len());
}

fn plain_entry() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let batch = |ids: &[i64]| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
                Arc::new(StringArray::from_iter(
                    ids.iter().map(|i| (i % 3 != 0).then(|| format!("row {i}"))),
                )),
                Arc::new(Float64Array::from_iter(
                    ids.iter().map(|i| (i % 2 == 0).then_some(*i as f64 / 4.0)),
                )),
            ],
        )
        .unwrap()
    };
    encode_entry(4, &schema, &[batch(&[1, 2, 3]), batch(&[4, 5])])
        .unwrap()
        .to_vec()
}

/// A Lance-style keyed entry: primary-key field metadata and `_tombstone`.
fn keyed_entry() -> Vec<u8> {
    let key = HashMap::from([(PRIMARY_KEY_METADATA.to_string(), "true".to_string())]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false).with_metadata(key),
        Field::new("value", DataType::Int32, true),
        Field::new(TOMBSTONE_COLUMN, DataType::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(BooleanArray::from(vec![false, false, true])),
        ],
    )
    .unwrap();
    encode_entry(2, &schema, &[batch]).unwrap().to_vec()
}

/// A keyed entry from before deletes existed: no `_tombstone` column, so
/// readers add one.
fn keyed_entry_without_marker() -> Vec<u8> {
    let key = HashMap::from([(PRIMARY_KEY_METADATA.to_string(), "true".to_string())]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false).with_metadata(key),
        Field::new("note", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![7, 8])) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("seven"), None])),
        ],
    )
    .unwrap();
    encode_entry(1, &schema, &[batch]).unwrap().to_vec()
}

/// Nested and dictionary columns: the IPC paths with child arrays and
/// dictionary batches.
fn nested_entry() -> Vec<u8> {
    let mut tags = ListBuilder::new(StringDictionaryBuilder::<Int32Type>::new());
    for row in [&["x", "y"][..], &[], &["y", "y", "z"]] {
        for tag in row {
            tags.values().append_value(tag);
        }
        tags.append(true);
    }
    let tags: ArrayRef = Arc::new(tags.finish());
    let point: ArrayRef = Arc::new(StructArray::from(vec![
        (
            Arc::new(Field::new("x", DataType::Int32, false)),
            Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("label", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![Some("p"), None, Some("q")])) as ArrayRef,
        ),
    ]));
    let schema = Arc::new(Schema::new(vec![
        Field::new("tags", tags.data_type().clone(), true),
        Field::new("point", point.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(schema.clone(), vec![tags, point]).unwrap();
    encode_entry(9, &schema, &[batch]).unwrap().to_vec()
}

fn manifest(sealed: bool) -> Vec<u8> {
    let mut m = ShardManifest::fresh(MANIFEST_SHARD, 1, 5);
    m.version = MANIFEST_VERSION;
    m.replay_after_wal_entry_position = 12;
    m.wal_entry_position_last_seen = 14;
    m.current_generation = 3;
    m.flushed_generations = vec![
        FlushedGeneration {
            generation: 1,
            path: "0badc0de_gen_1".to_string(),
            in_memory_bytes: Some(4096),
            physical_rows: Some(100),
            primary_key_bytes: None,
        },
        FlushedGeneration {
            generation: 2,
            path: "12345678_gen_2".to_string(),
            in_memory_bytes: None,
            physical_rows: Some(7),
            primary_key_bytes: Some(56),
        },
    ];
    m.shard_field_entries = vec![ShardFieldEntry {
        field_id: "region".to_string(),
        value: b"eu".to_vec(),
    }];
    if sealed {
        m.status = ShardStatus::Sealed as i32;
    }
    m.encode_to_vec()
}

fn main() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let wal = seeds.join("wal_entry");
    let manifests = seeds.join("manifest");
    std::fs::create_dir_all(&wal).unwrap();
    std::fs::create_dir_all(&manifests).unwrap();

    write(&wal, "plain", &plain_entry());
    write(&wal, "keyed", &keyed_entry());
    write(&wal, "keyed_without_marker", &keyed_entry_without_marker());
    write(&wal, "nested", &nested_entry());
    write(&wal, "fence_sentinel", &encode_fence_sentinel(6));

    let mut fresh = ShardManifest::fresh(MANIFEST_SHARD, 0, 1);
    fresh.version = MANIFEST_VERSION;
    write(&manifests, "fresh", &fresh.encode_to_vec());
    write(&manifests, "generations", &manifest(false));
    write(&manifests, "sealed", &manifest(true));
}
