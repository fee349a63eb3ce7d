//! The MemTable's batch store: a fixed number of slots that one writer fills
//! front to back while any number of readers look at the filled prefix,
//! without locks on either side.
//!
//! How it stays consistent:
//!
//! - Slot `i` is written exactly once, by the appender, while `i >= len`.
//!   Nobody reads such a slot, because readers only look below a `len` they
//!   loaded themselves.
//! - An append writes all of its slots first and then moves `len` past them
//!   with a single `Release` store. A reader loads `len` with `Acquire`, so
//!   everything the appender wrote before that store is visible to it: a
//!   reader sees every batch of an append or none of them.
//! - A slot below `len` is never written again; it is dropped only when the
//!   store itself is, which needs `&mut self` and so excludes all readers.
//! - Appends must come one at a time (the caller serializes them, normally
//!   under the writer's lock). A flag checked on entry turns an overlapping
//!   append into a panic instead of a data race.
//!
//! When the store cannot take a whole append, it hands the batches back so
//! the caller can freeze this MemTable and retry on a fresh store.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ops::Range;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arrow_array::{Array, RecordBatch};

/// One batch as kept by the store, with the bookkeeping computed on append.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub batch: RecordBatch,
    /// Rows stored in this store before this batch.
    pub row_offset: u64,
    /// Writer-global batch position, as assigned by the caller.
    pub position: u64,
    /// What this batch is charged for, see [`estimate_batch_bytes`].
    pub estimated_bytes: u64,
}

impl StoredBatch {
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Rows `[row_offset, row_offset + num_rows)` of the store.
    pub fn row_range(&self) -> Range<u64> {
        self.row_offset..self.row_offset + self.batch.num_rows() as u64
    }
}

type Slot = UnsafeCell<MaybeUninit<StoredBatch>>;

// `UnsafeCell` and `MaybeUninit` are both `repr(transparent)`, so a run of
// initialised slots can be viewed as a `[StoredBatch]`; `snapshot` and `Drop`
// rely on that. Checked here so a surprise would fail the build.
const _: () = assert!(
    size_of::<Slot>() == size_of::<StoredBatch>()
        && align_of::<Slot>() == align_of::<StoredBatch>()
);

/// Fixed-capacity append-only array of record batches: one writer, many
/// lock-free readers. See the module docs for the protocol.
pub struct BatchStore {
    slots: Box<[Slot]>,
    /// Published slots; `[0, len)` are initialised and never change again.
    len: AtomicUsize,
    /// Rows over all batches appended so far.
    total_rows: AtomicU64,
    /// Sum of the stored batches' `estimated_bytes`.
    estimated_bytes: AtomicU64,
    /// Held for the duration of one `try_append`.
    appending: AtomicBool,
}

// SAFETY: a shared `&BatchStore` gives two kinds of access to the slots.
// Readers (`snapshot`, `get`, `iter`) only form shared references to slots
// below a `len` loaded with `Acquire`; those slots were completely written
// before the `Release` store that made `len` cover them, and nothing writes
// them afterwards, so there is no concurrent write and their contents are
// visible. The single appender writes only slots at or above the current
// `len`, which no reader can reach until the appender's own `Release` store.
// Two appenders never overlap: `try_append` claims `appending` with an
// `Acquire` swap and panics if it was already set, and gives it back with a
// `Release` store, so each append also happens-after the previous one and
// sees its `len` and totals. `Drop` needs `&mut self`, so no reader is left
// then. Handing `&StoredBatch` to other threads needs `StoredBatch: Sync`,
// and moving batches in on one thread and dropping them on another needs
// `StoredBatch: Send`; both hold (asserted below). `Send` for the store itself
// is derived automatically from its fields.
unsafe impl Sync for BatchStore {}

const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<StoredBatch>();
    send_and_sync::<BatchStore>();
};

impl BatchStore {
    /// A store with room for `capacity` batches, all allocated up front.
    ///
    /// A zero capacity is allowed; such a store refuses every non-empty append.
    pub fn with_capacity(capacity: usize) -> Self {
        let slots = (0..capacity)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        Self {
            slots,
            len: AtomicUsize::new(0),
            total_rows: AtomicU64::new(0),
            estimated_bytes: AtomicU64::new(0),
            appending: AtomicBool::new(false),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Append `batches` as one unit and return the slots they now occupy.
    ///
    /// Batch `i` of the vector gets position `first_position + i`. Positions
    /// are expected to grow from one append to the next.
    ///
    /// All or nothing: if the batches do not all fit in the remaining slots,
    /// they come back unchanged in `Err` and the store is left as it was. A
    /// vector longer than [`capacity`](Self::capacity) can never fit, not even
    /// in an empty store, so the caller has to check for that itself. An empty
    /// vector is accepted and changes nothing.
    ///
    /// # Single writer
    ///
    /// Appends must not overlap; the caller is responsible for serializing
    /// them. Readers may run at any time. An append that starts while another
    /// is still running panics rather than corrupting the store.
    pub fn try_append(
        &self,
        batches: Vec<RecordBatch>,
        first_position: u64,
    ) -> Result<Range<usize>, Vec<RecordBatch>> {
        let sizes: Vec<u64> = batches.iter().map(estimate_batch_bytes).collect();
        self.try_append_sized(batches, &sizes, first_position)
    }

    /// [`try_append`](Self::try_append) with each batch's
    /// [`estimate_batch_bytes`] already known, so a caller that needs the
    /// sizes too computes them once.
    pub fn try_append_sized(
        &self,
        batches: Vec<RecordBatch>,
        sizes: &[u64],
        first_position: u64,
    ) -> Result<Range<usize>, Vec<RecordBatch>> {
        assert_eq!(batches.len(), sizes.len(), "one size per batch");
        let _claim = AppendClaim::take(&self.appending);
        // Only appends change `len` and the totals, and the claim orders this
        // append after the previous one, so relaxed loads see current values.
        let start = self.len.load(Ordering::Relaxed);
        if batches.len() > self.capacity() - start {
            return Err(batches);
        }
        if batches.is_empty() {
            return Ok(start..start);
        }
        debug_assert!(
            start == 0 || self.published(start)[start - 1].position < first_position,
            "batch positions must increase from one append to the next"
        );

        // Everything that could panic happens here, before any slot is
        // touched: a panic then leaves the store exactly as it was.
        let first_row = self.total_rows.load(Ordering::Relaxed);
        let mut next_row = first_row;
        let mut added_bytes = 0;
        let prepared: Vec<StoredBatch> = batches
            .into_iter()
            .zip(first_position..)
            .zip(sizes)
            .map(|((batch, position), &estimated_bytes)| {
                let row_offset = next_row;
                next_row += batch.num_rows() as u64;
                added_bytes += estimated_bytes;
                StoredBatch {
                    batch,
                    row_offset,
                    position,
                    estimated_bytes,
                }
            })
            .collect();
        let end = start + prepared.len();

        for (slot, stored) in self.slots[start..end].iter().zip(prepared) {
            // SAFETY: the slot lies at or above `len`, so no reader looks at
            // it, and the claim makes this the only append running. It has
            // never been written (slots are filled once, in order), so there
            // is no old value that would need dropping.
            unsafe { slot.get().cast::<StoredBatch>().write(stored) };
        }

        // The totals move before `len` does, so a reader that sees the new
        // batches also sees totals that include them.
        self.total_rows
            .fetch_add(next_row - first_row, Ordering::Relaxed);
        self.estimated_bytes
            .fetch_add(added_bytes, Ordering::Relaxed);
        self.len.store(end, Ordering::Release);
        Ok(start..end)
    }

    /// Published batches.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    pub fn remaining_capacity(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Every batch published so far, as one consistent slice. Later appends
    /// do not show up in a slice already taken.
    pub fn snapshot(&self) -> &[StoredBatch] {
        self.published(self.len())
    }

    /// The batch in slot `index`, if it has been published.
    pub fn get(&self, index: usize) -> Option<&StoredBatch> {
        self.snapshot().get(index)
    }

    /// Iterate over the batches published when this is called, oldest first
    /// (`.rev()` gives newest first).
    pub fn iter(&self) -> std::slice::Iter<'_, StoredBatch> {
        self.snapshot().iter()
    }

    /// Rows appended so far.
    ///
    /// This and [`estimated_bytes`](Self::estimated_bytes) are running totals
    /// that an append bumps just before it publishes its batches. They are
    /// never behind what [`len`](Self::len) shows, but while an append is in
    /// progress they may already include batches that are not yet visible.
    /// For figures that match a snapshot exactly, derive them from it.
    pub fn total_rows(&self) -> u64 {
        self.total_rows.load(Ordering::Relaxed)
    }

    /// Estimated memory of the stored batches, counted by slice; see
    /// [`total_rows`](Self::total_rows) on how current it is.
    pub fn estimated_bytes(&self) -> u64 {
        self.estimated_bytes.load(Ordering::Relaxed)
    }

    /// The first `len` slots as batches.
    ///
    /// Callers must pass a `len` that was published: either loaded from
    /// `self.len` with `Acquire`, or read by the running appender.
    fn published(&self, len: usize) -> &[StoredBatch] {
        debug_assert!(len <= self.capacity());
        // SAFETY: slots `[0, len)` are initialised, their writes are visible
        // to us (see the `Sync` argument), and they are never written again
        // while `&self` lives. The layout of a slot equals that of a
        // `StoredBatch` (checked above), and the pointer comes from the whole
        // slot slice, so it covers these `len` elements.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<StoredBatch>(), len) }
    }
}

impl Drop for BatchStore {
    fn drop(&mut self) {
        let len = *self.len.get_mut();
        let initialised =
            ptr::slice_from_raw_parts_mut(self.slots.as_mut_ptr().cast::<StoredBatch>(), len);
        // SAFETY: exactly the slots below `len` hold a value (an append writes
        // only what it then publishes), and `&mut self` means nobody else can
        // observe them while they are dropped. The rest stay uninitialised
        // and are freed with the box without being touched.
        unsafe { ptr::drop_in_place(initialised) };
    }
}

impl<'a> IntoIterator for &'a BatchStore {
    type Item = &'a StoredBatch;
    type IntoIter = std::slice::Iter<'a, StoredBatch>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for BatchStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchStore")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("total_rows", &self.total_rows())
            .field("estimated_bytes", &self.estimated_bytes())
            .finish()
    }
}

/// Marks an append as running; released on drop, also during unwinding.
struct AppendClaim<'a>(&'a AtomicBool);

impl<'a> AppendClaim<'a> {
    fn take(flag: &'a AtomicBool) -> Self {
        if flag.swap(true, Ordering::Acquire) {
            panic!(
                "BatchStore::try_append called while another append was running; \
                 appends must be serialized by the caller"
            );
        }
        Self(flag)
    }
}

impl Drop for AppendClaim<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Memory a batch is charged for in size-based triggers.
///
/// Counts the bytes of the rows the batch actually covers, so a zero-copy
/// slice of a large batch costs what its own rows would cost rather than the
/// full buffers it shares with its parent. Parts Arrow cannot measure by
/// slice (the values of a list or dictionary column, for instance) are
/// counted whole, which errs on the high side. If a column cannot be measured
/// by slice at all, its full memory size is used instead.
pub fn estimate_batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|column| column_bytes(column.as_ref()))
        .sum()
}

fn column_bytes(column: &dyn Array) -> u64 {
    let by_slice = column.to_data().get_slice_memory_size();
    by_slice.unwrap_or_else(|_| column.get_array_memory_size()) as u64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::thread;

    use arrow_array::{ArrayRef, Int64Array, ListArray, StringArray};
    use arrow_buffer::{Buffer, OffsetBuffer};
    use arrow_data::ArrayData;
    use arrow_schema::{DataType, Field, Schema, SchemaRef};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("group", DataType::Int64, false),
            Field::new("part", DataType::Int64, false),
        ]))
    }

    /// A batch of `rows` rows, every row carrying `group` and `part`.
    fn batch(group: i64, part: i64, rows: usize) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(vec![group; rows])),
                Arc::new(Int64Array::from(vec![part; rows])),
            ],
        )
        .unwrap()
    }

    fn int_column(batch: &RecordBatch, index: usize) -> &Int64Array {
        batch
            .column(index)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
    }

    #[test]
    fn append_publishes_and_get_reads_back() {
        let store = BatchStore::with_capacity(4);
        assert_eq!(store.capacity(), 4);
        assert!(store.is_empty());
        assert!(store.get(0).is_none());

        let range = store
            .try_append(vec![batch(7, 0, 3), batch(7, 1, 5)], 0)
            .unwrap();
        assert_eq!(range, 0..2);
        assert_eq!(store.len(), 2);
        assert!(!store.is_empty());
        assert!(!store.is_full());
        assert_eq!(store.remaining_capacity(), 2);
        assert_eq!(store.total_rows(), 8);

        let second = store.get(1).unwrap();
        assert_eq!(second.num_rows(), 5);
        assert_eq!(int_column(&second.batch, 0).value(0), 7);
        assert_eq!(int_column(&second.batch, 1).value(4), 1);
        assert!(store.get(2).is_none());
        assert!(store.get(usize::MAX).is_none());

        let range = store.try_append(vec![batch(8, 0, 1)], 2).unwrap();
        assert_eq!(range, 2..3);
        let parts: Vec<i64> = store
            .iter()
            .map(|stored| int_column(&stored.batch, 1).value(0))
            .collect();
        assert_eq!(parts, [0, 1, 0]);
        assert_eq!(store.snapshot().len(), 3);
        assert_eq!((&store).into_iter().rev().count(), 3);
    }

    #[test]
    fn empty_append_changes_nothing() {
        let store = BatchStore::with_capacity(2);
        store.try_append(vec![batch(0, 0, 1)], 0).unwrap();
        assert_eq!(store.try_append(Vec::new(), 1), Ok(1..1));
        assert_eq!(store.len(), 1);
        assert_eq!(store.total_rows(), 1);
    }

    #[test]
    fn append_that_does_not_fit_returns_the_batches_untouched() {
        let store = BatchStore::with_capacity(3);
        store
            .try_append(vec![batch(0, 0, 2), batch(0, 1, 2)], 0)
            .unwrap();
        let rows_before = store.total_rows();
        let bytes_before = store.estimated_bytes();

        let offered = vec![batch(1, 0, 4), batch(1, 1, 4)];
        let originals: Vec<ArrayRef> = offered.iter().map(|b| b.column(0).clone()).collect();
        let returned = store.try_append(offered, 2).unwrap_err();
        assert_eq!(returned.len(), 2);
        for (batch, original) in returned.iter().zip(&originals) {
            assert!(Arc::ptr_eq(batch.column(0), original));
        }
        assert_eq!(store.len(), 2);
        assert!(store.get(2).is_none());
        assert_eq!(store.total_rows(), rows_before);
        assert_eq!(store.estimated_bytes(), bytes_before);

        // One batch still fits; after it the store is full.
        store.try_append(vec![batch(2, 0, 1)], 2).unwrap();
        assert!(store.is_full());
        assert_eq!(store.remaining_capacity(), 0);
        assert!(store.try_append(vec![batch(3, 0, 1)], 3).is_err());

        // A group larger than the whole store never fits.
        let empty = BatchStore::with_capacity(2);
        let too_many = vec![batch(0, 0, 1), batch(0, 1, 1), batch(0, 2, 1)];
        assert_eq!(empty.try_append(too_many, 0).unwrap_err().len(), 3);
        assert!(empty.is_empty());

        let none = BatchStore::with_capacity(0);
        assert!(none.is_full());
        assert!(none.try_append(vec![batch(0, 0, 1)], 0).is_err());
        assert_eq!(none.try_append(Vec::new(), 0), Ok(0..0));
    }

    #[test]
    fn positions_and_row_offsets() {
        let store = BatchStore::with_capacity(8);
        store
            .try_append(vec![batch(0, 0, 10), batch(0, 1, 20)], 100)
            .unwrap();
        store
            .try_append(vec![batch(1, 0, 1), batch(1, 1, 4), batch(1, 2, 5)], 102)
            .unwrap();

        let positions: Vec<u64> = store.iter().map(|s| s.position).collect();
        assert_eq!(positions, [100, 101, 102, 103, 104]);
        let offsets: Vec<u64> = store.iter().map(|s| s.row_offset).collect();
        assert_eq!(offsets, [0, 10, 30, 31, 35]);
        assert_eq!(store.get(4).unwrap().row_range(), 35..40);
        assert_eq!(store.total_rows(), 40);

        let charged: u64 = store.iter().map(|s| s.estimated_bytes).sum();
        assert_eq!(store.estimated_bytes(), charged);
        assert_eq!(
            store.get(1).unwrap().estimated_bytes,
            estimate_batch_bytes(&store.get(1).unwrap().batch)
        );
    }

    #[test]
    fn iteration_keeps_the_length_it_started_with() {
        let store = BatchStore::with_capacity(4);
        store.try_append(vec![batch(0, 0, 1)], 0).unwrap();
        let before = store.iter();
        let snapshot = store.snapshot();
        store
            .try_append(vec![batch(1, 0, 1), batch(1, 1, 1)], 1)
            .unwrap();
        assert_eq!(before.count(), 1);
        assert_eq!(snapshot.len(), 1);
        assert_eq!(store.iter().count(), 3);
    }

    #[test]
    fn slices_are_charged_for_their_own_rows() {
        let rows = 100_000;
        let parent = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(Int64Array::from_iter_values(0..rows)),
            ],
        )
        .unwrap();
        let slice = parent.slice(5_000, 10);

        let parent_bytes = estimate_batch_bytes(&parent);
        let slice_bytes = estimate_batch_bytes(&slice);
        assert!(parent_bytes >= 2 * 8 * rows as u64, "parent {parent_bytes}");
        assert_eq!(slice_bytes, 2 * 8 * 10);
        assert!(slice_bytes * 1_000 < parent_bytes);
        // The shared buffers make the whole-array measure useless for slices.
        let whole: usize = slice
            .columns()
            .iter()
            .map(|c| c.get_array_memory_size())
            .sum();
        assert!(whole as u64 >= parent_bytes);

        let store = BatchStore::with_capacity(1);
        store.try_append(vec![slice], 0).unwrap();
        assert_eq!(store.estimated_bytes(), slice_bytes);

        // Variable-width values are counted by the slice's own value range.
        let strings = StringArray::from_iter_values((0..1_000).map(|i| format!("value-{i:05}")));
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
        let parent = RecordBatch::try_new(schema, vec![Arc::new(strings)]).unwrap();
        let slice = parent.slice(10, 2);
        assert_eq!(estimate_batch_bytes(&slice), 3 * 4 + 2 * 11);
        assert!(estimate_batch_bytes(&parent) > 11_000);
    }

    #[test]
    fn strings_read_without_offsets_are_measured() {
        // Arrow allows a zero-length string array with an empty offsets
        // buffer (IPC readers produce it), and `get_slice_memory_size` would
        // panic on such raw data. The typed array normalises it to a single
        // zero offset, so what reaches the estimate is always measurable.
        let data = ArrayData::try_new(
            DataType::Utf8,
            0,
            None,
            0,
            vec![
                Buffer::from(Vec::<i32>::new()),
                Buffer::from(Vec::<u8>::new()),
            ],
            vec![],
        )
        .unwrap();
        let strings: ArrayRef = Arc::new(StringArray::from(data));
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let empty = RecordBatch::try_new(schema, vec![strings.clone()]).unwrap();
        assert_eq!(estimate_batch_bytes(&empty), 4);

        // The same array as the values of two empty lists.
        let item = Arc::new(Field::new("item", DataType::Utf8, true));
        let lists = ListArray::new(
            item.clone(),
            OffsetBuffer::new(vec![0, 0, 0].into()),
            strings,
            None,
        );
        let schema = Arc::new(Schema::new(vec![Field::new(
            "l",
            DataType::List(item),
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(lists)]).unwrap();
        assert_eq!(estimate_batch_bytes(&batch), 3 * 4 + 4);
    }

    #[test]
    fn drop_releases_exactly_the_stored_batches() {
        let column: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let make = || RecordBatch::try_new(schema.clone(), vec![column.clone()]).unwrap();

        let store = BatchStore::with_capacity(8);
        store.try_append(vec![make(), make()], 0).unwrap();
        store.try_append(vec![make()], 2).unwrap();
        let refused = store.try_append((0..6).map(|_| make()).collect(), 3);
        assert_eq!(Arc::strong_count(&column), 1 + 3 + 6);
        drop(refused);
        assert_eq!(Arc::strong_count(&column), 1 + 3);

        let shared = Arc::new(store);
        let reader = {
            let shared = shared.clone();
            thread::spawn(move || shared.iter().map(|s| s.num_rows()).sum::<usize>())
        };
        assert_eq!(reader.join().unwrap(), 9);
        drop(shared);
        assert_eq!(Arc::strong_count(&column), 1);

        drop(BatchStore::with_capacity(4));
    }

    #[test]
    #[should_panic(expected = "appends must be serialized")]
    fn overlapping_append_panics() {
        let store = BatchStore::with_capacity(2);
        // Pretend another thread is in the middle of an append.
        store.appending.store(true, Ordering::SeqCst);
        let _ = store.try_append(vec![batch(0, 0, 1)], 0);
    }

    #[test]
    fn claim_is_released_after_every_append() {
        let store = BatchStore::with_capacity(1);
        store.try_append(vec![batch(0, 0, 1)], 0).unwrap();
        store.try_append(vec![batch(1, 0, 1)], 1).unwrap_err();
        store.try_append(Vec::new(), 1).unwrap();
        assert!(!store.appending.load(Ordering::SeqCst));
    }

    /// Check that `snapshot` is made of whole groups of `group_size` batches,
    /// in order, with consistent positions and row offsets.
    fn assert_whole_groups(snapshot: &[StoredBatch], group_size: usize) {
        assert_eq!(
            snapshot.len() % group_size,
            0,
            "saw {} batches, a partial group",
            snapshot.len()
        );
        let mut next_row = 0;
        for (index, stored) in snapshot.iter().enumerate() {
            let group = (index / group_size) as i64;
            let part = (index % group_size) as i64;
            assert_eq!(stored.position, index as u64);
            assert_eq!(stored.row_offset, next_row);
            next_row += stored.num_rows() as u64;
            let groups = int_column(&stored.batch, 0);
            let parts = int_column(&stored.batch, 1);
            assert!(groups.values().iter().all(|&g| g == group));
            assert!(parts.values().iter().all(|&p| p == part));
        }
    }

    #[test]
    fn readers_never_see_a_partial_append() {
        const GROUP_SIZE: usize = 3;
        const READERS: usize = 3;
        #[cfg(not(miri))]
        const ROUNDS: usize = 100;
        #[cfg(not(miri))]
        const GROUPS: usize = 500;
        #[cfg(miri)]
        const ROUNDS: usize = 1;
        #[cfg(miri)]
        const GROUPS: usize = 6;

        for _ in 0..ROUNDS {
            let store = Arc::new(BatchStore::with_capacity(GROUPS * GROUP_SIZE));
            let done = Arc::new(AtomicBool::new(false));

            let readers: Vec<_> = (0..READERS)
                .map(|_| {
                    let store = store.clone();
                    let done = done.clone();
                    thread::spawn(move || {
                        let mut last_len = 0;
                        loop {
                            // Read `done` first: once it is set, the snapshot
                            // taken after it must contain everything.
                            let finished = done.load(Ordering::Acquire);
                            let snapshot = store.snapshot();
                            assert!(snapshot.len() >= last_len, "the store shrank");
                            last_len = snapshot.len();
                            assert_whole_groups(snapshot, GROUP_SIZE);
                            let rows: u64 = snapshot.iter().map(|s| s.num_rows() as u64).sum();
                            let bytes: u64 = snapshot.iter().map(|s| s.estimated_bytes).sum();
                            assert!(store.total_rows() >= rows);
                            assert!(store.estimated_bytes() >= bytes);
                            if finished {
                                assert!(store.is_full());
                                assert_eq!(store.total_rows(), rows);
                                break;
                            }
                            thread::yield_now();
                        }
                    })
                })
                .collect();

            let writer = {
                let store = store.clone();
                let done = done.clone();
                thread::spawn(move || {
                    for group in 0..GROUPS {
                        let batches = (0..GROUP_SIZE)
                            .map(|part| batch(group as i64, part as i64, 1 + (group + part) % 4))
                            .collect();
                        let range = store
                            .try_append(batches, (group * GROUP_SIZE) as u64)
                            .expect("the store is sized for every group");
                        assert_eq!(range.len(), GROUP_SIZE);
                    }
                    done.store(true, Ordering::Release);
                })
            };

            writer.join().unwrap();
            for reader in readers {
                reader.join().unwrap();
            }
        }
    }
}
