//! A scan of a [`ShardReader`] snapshot in progress: survivor masks first
//! (with a primary key), then the requested columns source by source,
//! oldest first, skipping row groups the filter rules out. A child of
//! `shard_reader` so that it reads the snapshot's private parts.

#![allow(deprecated)] // ParquetObjectReader; see shard_reader.rs.

use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use futures::StreamExt;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStream};
use parquet::arrow::ProjectionMask;

use super::{Masks, ScanMetrics, ShardReader};
use crate::error::{Error, Result};
use crate::read::filter::ColumnRange;
use crate::read::scan::{RowWindow, ScanPlan};

/// A generation being streamed: the batches of its selected row groups and
/// the keep-mask restricted to them.
struct OpenGeneration {
    stream: ParquetRecordBatchStream<ParquetObjectReader>,
    mask: Option<BooleanArray>,
    offset: usize,
}

/// A scan in progress; see [`ShardReader::scan_stream`].
pub struct ShardScan {
    reader: ShardReader,
    plan: ScanPlan,
    /// Columns of the user schema read from each source.
    indices: Vec<usize>,
    read_schema: SchemaRef,
    masks: Option<Masks>,
    /// Sources are the generations in order, then the tail batches.
    source: usize,
    current: Option<OpenGeneration>,
    window: RowWindow,
    metrics: ScanMetrics,
}

impl ShardScan {
    pub(super) fn new(
        reader: ShardReader,
        plan: ScanPlan,
        indices: Vec<usize>,
        read_schema: SchemaRef,
    ) -> Self {
        Self {
            reader,
            window: plan.window(),
            plan,
            indices,
            read_schema,
            masks: None,
            source: 0,
            current: None,
            metrics: ScanMetrics::default(),
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        self.plan.output_schema()
    }

    pub fn metrics(&self) -> &ScanMetrics {
        &self.metrics
    }

    /// The next non-empty batch of results, or `None` at the end.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let reader = self.reader.clone();
        if self.masks.is_none() && reader.has_key() {
            self.masks = Some(reader.survivor_masks().await?);
        }
        while !self.window.is_full() {
            let Some((batch, mask)) = self.next_source_batch().await? else {
                return Ok(None);
            };
            let batch = match mask {
                Some(mask) => arrow_select::filter::filter_record_batch(&batch, &mask)?,
                None => batch,
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = RecordBatch::try_new(self.read_schema.clone(), batch.columns().to_vec())?;
            let Some(out) = self.plan.run_unbounded(&batch)? else {
                continue;
            };
            if let Some(out) = self.window.take(out) {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }

    /// The next batch of any source, projected to the read columns, with
    /// its keep-mask.
    async fn next_source_batch(&mut self) -> Result<Option<(RecordBatch, Option<BooleanArray>)>> {
        let reader = self.reader.clone();
        let generations = reader.generations.len();
        loop {
            if let Some(open) = &mut self.current {
                match open.stream.next().await {
                    Some(batch) => {
                        let g = &reader.generations[self.source];
                        let batch = batch.map_err(|e| reader.read_error(g, e))?;
                        let mask = open
                            .mask
                            .as_ref()
                            .map(|m| m.slice(open.offset, batch.num_rows()));
                        open.offset += batch.num_rows();
                        return Ok(Some((batch, mask)));
                    }
                    None => {
                        self.current = None;
                        self.source += 1;
                        continue;
                    }
                }
            }
            if self.source < generations {
                self.current = self.open_next_generation()?;
                if self.current.is_none() {
                    self.source += 1;
                }
                continue;
            }
            let t = self.source - generations;
            let Some(batch) = reader.tail.get(t) else {
                return Ok(None);
            };
            self.source += 1;
            let mask = self.masks.as_ref().map(|m| m.tail[t].clone());
            return Ok(Some((batch.project(&self.indices)?, mask)));
        }
    }

    /// Open the current generation with its surviving row groups, or `None`
    /// if statistics rule every row group out.
    fn open_next_generation(&mut self) -> Result<Option<OpenGeneration>> {
        let reader = self.reader.clone();
        let g = &reader.generations[self.source];
        let metadata = g.metadata.metadata();
        let groups = metadata.row_groups();
        self.metrics.row_groups_total += groups.len() as u64;
        let file_schema = g.metadata.schema();
        let parquet_schema = g.metadata.parquet_schema();
        let selected: Vec<usize> = match self.plan.filter() {
            None => (0..groups.len()).collect(),
            Some(filter) => {
                let bounds: Vec<(String, ArrayRefPair)> = filter
                    .columns()
                    .into_iter()
                    .filter_map(|name| {
                        let converter =
                            StatisticsConverter::try_new(&name, file_schema, parquet_schema)
                                .ok()?;
                        let mins = converter.row_group_mins(groups.iter()).ok()?;
                        let maxes = converter.row_group_maxes(groups.iter()).ok()?;
                        Some((name, (mins, maxes)))
                    })
                    .collect();
                (0..groups.len())
                    .filter(|&i| {
                        filter.may_match(&|column| {
                            bounds
                                .iter()
                                .find(|(n, _)| n == column)
                                .map(|(_, (mins, maxes))| ColumnRange {
                                    min: mins.slice(i, 1),
                                    max: maxes.slice(i, 1),
                                })
                        })
                    })
                    .collect()
            }
        };
        self.metrics.row_groups_read += selected.len() as u64;
        if selected.is_empty() {
            return Ok(None);
        }
        let mask = match &self.masks {
            Some(masks) => {
                let full = &masks.generations[self.source];
                let mut starts = Vec::with_capacity(groups.len());
                let mut start = 0usize;
                for group in groups {
                    starts.push(start);
                    start += group.num_rows() as usize;
                }
                let parts: Vec<BooleanArray> = selected
                    .iter()
                    .map(|&i| full.slice(starts[i], groups[i].num_rows() as usize))
                    .collect();
                let refs: Vec<&dyn Array> = parts.iter().map(|m| m as &dyn Array).collect();
                let joined = arrow_select::concat::concat(&refs)?;
                Some(
                    joined
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .unwrap()
                        .clone(),
                )
            }
            None => None,
        };
        let roots: Vec<usize> = self
            .indices
            .iter()
            .map(|&i| {
                let name = reader.user.field(i).name();
                file_schema.index_of(name).map_err(|_| {
                    Error::schema_mismatch(format!(
                        "Generation {} lacks column '{name}'",
                        g.info.generation
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let projection = ProjectionMask::roots(parquet_schema, roots);
        let stream = reader.open_generation(g, projection, Some(selected))?;
        Ok(Some(OpenGeneration {
            stream,
            mask,
            offset: 0,
        }))
    }
}

type ArrayRefPair = (arrow_array::ArrayRef, arrow_array::ArrayRef);
