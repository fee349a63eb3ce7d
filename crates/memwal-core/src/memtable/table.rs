//! One generation of rows held in memory until its Parquet flush commits.

use std::ops::Range;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::batch_store::{BatchStore, StoredBatch};

/// The rows of one generation, in put order, readable while being written.
///
/// Batches carry writer-global positions; a MemTable holds the contiguous
/// range `[first_position, first_position + len)`.
pub struct MemTable {
    generation: u64,
    first_position: u64,
    schema: SchemaRef,
    store: BatchStore,
}

impl std::fmt::Debug for MemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemTable")
            .field("generation", &self.generation)
            .field("first_position", &self.first_position)
            .field("batches", &self.store.len())
            .finish()
    }
}

impl MemTable {
    pub fn new(generation: u64, first_position: u64, capacity: usize, schema: SchemaRef) -> Self {
        Self {
            generation,
            first_position,
            schema,
            store: BatchStore::with_capacity(capacity),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn first_position(&self) -> u64 {
        self.first_position
    }

    /// One past the position of the newest batch.
    pub fn end_position(&self) -> u64 {
        self.first_position + self.store.len() as u64
    }

    pub fn batch_count(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.store.is_full()
    }

    pub fn remaining_capacity(&self) -> usize {
        self.store.remaining_capacity()
    }

    pub fn capacity(&self) -> usize {
        self.store.capacity()
    }

    pub fn row_count(&self) -> u64 {
        self.store.total_rows()
    }

    pub fn estimated_bytes(&self) -> u64 {
        self.store.estimated_bytes()
    }

    /// Append a put's batches at `first_position` (which must be this
    /// table's end); all or nothing. The caller serialises inserts.
    pub fn try_insert(
        &self,
        batches: Vec<RecordBatch>,
        sizes: &[u64],
        first_position: u64,
    ) -> Result<Range<usize>, Vec<RecordBatch>> {
        debug_assert_eq!(
            first_position,
            self.end_position(),
            "positions must stay contiguous"
        );
        self.store.try_append_sized(batches, sizes, first_position)
    }

    /// The stored batches visible now.
    pub fn stored(&self) -> &[StoredBatch] {
        self.store.snapshot()
    }

    /// Batches with a position below `end`, in put order.
    pub fn batches_before(&self, end: u64) -> impl Iterator<Item = &RecordBatch> {
        self.stored()
            .iter()
            .take_while(move |b| b.position < end)
            .map(|b| &b.batch)
    }
}
