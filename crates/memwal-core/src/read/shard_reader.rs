//! Reading a whole shard from outside its writer: the flushed Parquet
//! generations plus the WAL entries after the replay cursor, merged.
//!
//! Opening takes a snapshot: one manifest version (its generations and its
//! replay cursor) and the WAL entries after that cursor, up to the first
//! missing position. Flushes never delete WAL entries and a generation's rows
//! are exactly the entries up to the cursor it committed, so each row of the
//! snapshot is either in a listed generation or in the tail, never both and
//! never neither, whatever a writer commits meanwhile.
//!
//! With a primary key the newest row per key wins (higher generation, then
//! later position; the WAL tail is newest) and tombstones delete. A scan
//! first reads only the key columns of every source, newest first, to learn
//! which rows survive; then it streams the requested columns oldest first,
//! one batch at a time, skipping Parquet row groups whose statistics rule the
//! filter out. Memory holds one bit per row and the distinct keys, plus the
//! WAL tail (bounded by the writer's unflushed budget) and the batch in hand.

// parquet 60 deprecates `ParquetObjectReader` in favour of hand-written
// `AsyncFileReader`s; it still reads ranges through object_store correctly,
// and replacing it is tracked in docs/FORMAT.md's open points.
#![allow(deprecated)]

use std::sync::Arc;

use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use futures::StreamExt;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{
    ParquetObjectReader, ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder,
};
use parquet::arrow::ProjectionMask;

use super::newest::NewestPerKey;
use super::scan::{ScanPlan, ScanRequest};
use super::tailer::WalTailer;
use crate::error::{Error, ErrorCode, Result};
use crate::format::layout::ShardLayout;
use crate::format::primary_key::primary_key_columns;
use crate::format::tombstone::{self, TOMBSTONE_COLUMN};
use crate::manifest::{FlushedGeneration, ManifestStore};
use crate::store::StorageRoot;

mod shard_scan;

pub use shard_scan::ShardScan;

/// One flushed generation as the snapshot lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationInfo {
    pub generation: u64,
    /// Folder relative to the shard directory.
    pub path: String,
    /// Rows in the Parquet file (from the manifest, else the file footer).
    pub rows: u64,
}

/// What a scan did, for callers that want to see the pruning work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanMetrics {
    pub row_groups_total: u64,
    pub row_groups_read: u64,
}

struct Generation {
    info: GenerationInfo,
    metadata: ArrowReaderMetadata,
    location: object_store::path::Path,
}

/// A consistent snapshot of one shard. Cheap to clone.
#[derive(Clone)]
pub struct ShardReader {
    snapshot: Arc<Snapshot>,
}

impl std::ops::Deref for ShardReader {
    type Target = Snapshot;
    fn deref(&self) -> &Snapshot {
        &self.snapshot
    }
}

/// What a [`ShardReader`] holds.
pub struct Snapshot {
    root: StorageRoot,
    shard_id: uuid::Uuid,
    manifest_version: u64,
    user: SchemaRef,
    stored: SchemaRef,
    primary_key: Vec<String>,
    generations: Vec<Generation>,
    /// WAL entries after the cursor, in the stored schema, oldest first.
    tail: Vec<RecordBatch>,
    tail_positions: Option<(u64, u64)>,
}

impl std::fmt::Debug for ShardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReader")
            .field("shard_id", &self.shard_id)
            .field("manifest_version", &self.manifest_version)
            .field("generations", &self.generations.len())
            .field("tail_batches", &self.tail.len())
            .finish()
    }
}

/// Names, types and nullability of `got` against `want`; metadata aside.
fn same_columns(want: &Schema, got: &Schema) -> bool {
    want.fields().len() == got.fields().len()
        && want
            .fields()
            .iter()
            .zip(got.fields())
            .all(|(w, g)| w.name() == g.name() && w.data_type() == g.data_type())
}

impl ShardReader {
    /// Snapshot the shard `shard_id` under `root`. NOT_FOUND if the shard has
    /// no manifest.
    pub async fn open(root: StorageRoot, shard_id: uuid::Uuid) -> Result<Self> {
        let layout = ShardLayout::new(shard_id);
        let manifests = ManifestStore::new(root.clone(), layout.clone(), 2);
        let manifest = manifests.read_latest().await?.ok_or_else(|| {
            Error::not_found(format!(
                "Shard {shard_id} has no manifest under {}",
                root.uri()
            ))
            .with_shard(shard_id)
        })?;

        let mut listed = manifest.flushed_generations.clone();
        listed.sort_by_key(|g| g.generation);
        let mut generations = Vec::with_capacity(listed.len());
        for g in listed {
            let (location, metadata) = generation_footer(&root, &layout, &g)
                .await
                .map_err(|e| e.with_shard(shard_id))?;
            let rows = g
                .physical_rows
                .unwrap_or_else(|| metadata.metadata().file_metadata().num_rows() as u64);
            generations.push(Generation {
                info: GenerationInfo {
                    generation: g.generation,
                    path: g.path.clone(),
                    rows,
                },
                metadata,
                location,
            });
        }

        let tailer = WalTailer::new(root.clone(), shard_id);
        let mut entries = Vec::new();
        let mut position = manifest.replay_after_wal_entry_position + 1;
        let first = position;
        while let Some(entry) = tailer.read_entry(position).await? {
            if !entry.fence_sentinel {
                entries.push(entry);
            }
            position += 1;
        }
        let tail_positions = (position > first).then(|| (first, position - 1));

        // The schema comes from the data itself: the first generation's
        // embedded Arrow schema, else the first WAL entry's.
        let found: Option<SchemaRef> = generations
            .first()
            .map(|g| g.metadata.schema().clone())
            .or_else(|| entries.first().map(|e| e.schema.clone()));
        let user: SchemaRef = match found {
            Some(schema) => {
                let fields: Vec<_> = schema
                    .fields()
                    .iter()
                    .filter(|f| f.name() != TOMBSTONE_COLUMN)
                    .cloned()
                    .collect();
                let mut metadata = schema.metadata().clone();
                metadata.remove("ARROW:schema");
                Arc::new(Schema::new_with_metadata(fields, metadata))
            }
            None => Arc::new(Schema::empty()),
        };
        let stored = tombstone::stored_schema(&user);
        let primary_key = primary_key_columns(&user);

        for g in &generations {
            let file = g.metadata.schema();
            let matches = same_columns(&stored, file)
                || (tombstone::has_marker(&stored) && same_columns(&user, file));
            if !matches {
                return Err(Error::schema_mismatch(format!(
                    "Generation {} ({}) has schema {:?}, other data of the shard has {:?}",
                    g.info.generation,
                    g.info.path,
                    file.fields(),
                    stored.fields()
                ))
                .with_shard(shard_id));
            }
        }
        let mut tail = Vec::new();
        for entry in entries {
            for batch in entry.batches {
                let batch = tombstone::backfill(&stored, batch)?;
                if !same_columns(&stored, &batch.schema()) {
                    return Err(Error::schema_mismatch(format!(
                        "WAL entry {} does not match the schema of the shard's other data",
                        entry.position
                    ))
                    .with_shard(shard_id));
                }
                tail.push(RecordBatch::try_new(
                    stored.clone(),
                    batch.columns().to_vec(),
                )?);
            }
        }

        let snapshot = Snapshot {
            root,
            shard_id,
            manifest_version: manifest.version,
            user,
            stored,
            primary_key,
            generations,
            tail,
            tail_positions,
        };
        Ok(Self {
            snapshot: Arc::new(snapshot),
        })
    }

    pub fn shard_id(&self) -> uuid::Uuid {
        self.shard_id
    }

    /// The manifest version the snapshot was taken at.
    pub fn manifest_version(&self) -> u64 {
        self.manifest_version
    }

    /// The rows' schema (no `_tombstone`); empty if the shard has no data.
    pub fn schema(&self) -> &SchemaRef {
        &self.user
    }

    pub fn primary_key(&self) -> &[String] {
        &self.primary_key
    }

    /// Flushed generations, oldest first.
    pub fn generations(&self) -> Vec<GenerationInfo> {
        self.generations.iter().map(|g| g.info.clone()).collect()
    }

    /// First and last WAL position of the unflushed tail, if any.
    pub fn tail_positions(&self) -> Option<(u64, u64)> {
        self.tail_positions
    }

    /// Rows in the unflushed WAL tail (tombstones included).
    pub fn tail_rows(&self) -> u64 {
        self.tail.iter().map(|b| b.num_rows() as u64).sum()
    }

    /// Every matching row, collected.
    pub async fn scan(&self, request: &ScanRequest) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let mut scan = self.scan_stream(request)?;
        let mut out = Vec::new();
        while let Some(batch) = scan.next_batch().await? {
            out.push(batch);
        }
        Ok((scan.schema().clone(), out))
    }

    /// The same rows one batch at a time.
    pub fn scan_stream(&self, request: &ScanRequest) -> Result<ShardScan> {
        // Read only what the output and the filter need, in schema order.
        let plan_all =
            ScanPlan::new(&self.user, request).map_err(|e| e.with_shard(self.shard_id))?;
        let mut needed: Vec<String> = match &request.columns {
            Some(columns) => columns.clone(),
            None => self
                .user
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        };
        if let Some(filter) = plan_all.filter() {
            needed.extend(filter.columns());
        }
        let indices: Vec<usize> = (0..self.user.fields().len())
            .filter(|&i| needed.contains(self.user.field(i).name()))
            .collect();
        let read_schema = Arc::new(self.user.project(&indices)?);
        let plan = ScanPlan::new(&read_schema, request)?;
        Ok(ShardScan::new(self.clone(), plan, indices, read_schema))
    }

    fn has_key(&self) -> bool {
        !self.primary_key.is_empty()
    }

    /// Keep-masks for every source, oldest first: one per generation (over
    /// its rows in file order) and one per tail batch.
    async fn survivor_masks(&self) -> Result<Masks> {
        let mut newest = NewestPerKey::new(&self.stored, &self.primary_key)?;
        let tail = newest.keep_newest_all(&self.tail)?;
        let mut generations = Vec::with_capacity(self.generations.len());
        for g in self.generations.iter().rev() {
            let columns = newest.columns();
            let file = g.metadata.schema();
            let roots: Vec<usize> = (0..file.fields().len())
                .filter(|&i| columns.contains(file.field(i).name()))
                .collect();
            let mask = ProjectionMask::roots(g.metadata.parquet_schema(), roots);
            let mut stream = self.open_generation(g, mask, None)?;
            let mut batches = Vec::new();
            while let Some(batch) = stream.next().await {
                batches.push(batch.map_err(|e| self.read_error(g, e))?);
            }
            let masks = newest.keep_newest_all(&batches)?;
            let refs: Vec<&dyn Array> = masks.iter().map(|m| m as &dyn Array).collect();
            let joined = if refs.is_empty() {
                BooleanArray::from(Vec::<bool>::new())
            } else {
                arrow_select::concat::concat(&refs)?
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .unwrap()
                    .clone()
            };
            generations.push(joined);
        }
        generations.reverse();
        Ok(Masks { generations, tail })
    }

    fn open_generation(
        &self,
        g: &Generation,
        projection: ProjectionMask,
        row_groups: Option<Vec<usize>>,
    ) -> Result<ParquetRecordBatchStream<ParquetObjectReader>> {
        let reader = ParquetObjectReader::new(self.root.store().clone(), g.location.clone());
        let mut builder =
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader, g.metadata.clone())
                .with_projection(projection);
        if let Some(groups) = row_groups {
            builder = builder.with_row_groups(groups);
        }
        builder.build().map_err(|e| self.read_error(g, e))
    }

    fn read_error(&self, g: &Generation, e: parquet::errors::ParquetError) -> Error {
        Error::new(
            parquet_error_code(&e),
            format!(
                "Cannot read generation {} ({}): {e}",
                g.info.generation, g.info.path
            ),
        )
        .with_shard(self.shard_id)
    }
}

/// Where generation `g`'s Parquet file is, and its footer (schema, row
/// groups, statistics): all an open reads of a generation.
pub(crate) async fn generation_footer(
    root: &StorageRoot,
    layout: &ShardLayout,
    g: &FlushedGeneration,
) -> Result<(object_store::path::Path, ArrowReaderMetadata)> {
    let location = root.path(&layout.generation_file(&g.path));
    let mut reader = ParquetObjectReader::new(root.store().clone(), location.clone());
    let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
        .await
        .map_err(|e| {
            Error::new(
                parquet_error_code(&e),
                format!(
                    "Generation {} ({}): cannot read its Parquet footer: {e}",
                    g.generation, g.path
                ),
            )
        })?;
    Ok((location, metadata))
}

/// A failed store call is IO (worth retrying); anything the decoder
/// rejects is CORRUPT.
pub(crate) fn parquet_error_code(e: &parquet::errors::ParquetError) -> ErrorCode {
    match e {
        parquet::errors::ParquetError::External(source)
            if source.downcast_ref::<object_store::Error>().is_some() =>
        {
            ErrorCode::Io
        }
        _ => ErrorCode::Corrupt,
    }
}

struct Masks {
    generations: Vec<BooleanArray>,
    tail: Vec<BooleanArray>,
}
