//! Fuzz the WAL entry decoder: bytes read from `wal/<position>.arrow`.
#![no_main]

use std::sync::{Arc, Once};

use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::Schema;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use memwal_core::format::primary_key::primary_key_columns;
use memwal_core::format::tombstone;
use memwal_core::format::TOMBSTONE_COLUMN;
use memwal_core::memtable::batch_store::estimate_batch_bytes;
use memwal_core::wal::{decode_entry, encode_entry};

/// Formatting is per value; past this many rows a batch is only sampled.
const FORMAT_ROWS: usize = 4096;

/// libfuzzer-sys aborts on every panic, even one that is caught.
/// `decode_entry` catches panics inside the Arrow IPC reader (arrow-ipc 60
/// still has some, e.g. an offsets buffer whose length is not a multiple of
/// its width, a union type-id buffer shorter than the union) and reports
/// them as CORRUPT, so let panics raised in Arrow code unwind to it. Any
/// other panic aborts here; an Arrow panic that nobody catches aborts in
/// libfuzzer-sys once it unwinds out of the target.
fn tolerate_arrow_panics_that_decode_entry_catches() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_arrow = info
                .location()
                .is_some_and(|l| l.file().contains("/arrow-"));
            if !in_arrow {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_arrow_panics_that_decode_entry_catches();
    let Ok(entry) = decode_entry(5, Bytes::copy_from_slice(data)) else {
        return;
    };
    assert_eq!(entry.position, 5);
    if entry.fence_sentinel {
        assert!(entry.batches.is_empty() && entry.schema.fields().is_empty());
    }

    // What the tailer reports and the writer charges for each batch.
    let rows = entry.num_rows();
    let mut bytes = 0u64;
    for batch in &entry.batches {
        assert_eq!(batch.schema(), entry.schema);
        bytes += estimate_batch_bytes(batch);
        for column in batch.columns() {
            assert_eq!(column.len(), batch.num_rows());
            column
                .to_data()
                .validate_full()
                .expect("decoded columns are valid");
            let _ = column.get_array_memory_size();
            let _ = column.logical_null_count();
            let options = FormatOptions::default().with_display_error(true);
            if let Ok(formatter) = ArrayFormatter::try_new(column.as_ref(), &options) {
                let mut text = String::new();
                for row in 0..column.len().min(FORMAT_ROWS) {
                    text.clear();
                    let _ = std::fmt::Write::write_fmt(
                        &mut text,
                        format_args!("{}", formatter.value(row)),
                    );
                }
            }
        }
    }
    std::hint::black_box((rows, bytes));

    // What the shard reader and replay do with the rows: derive the stored
    // layout from the entry's own schema (keyed schemas gain `_tombstone`)
    // and bring every batch to it.
    let user: Vec<_> = entry
        .schema
        .fields()
        .iter()
        .filter(|f| f.name() != TOMBSTONE_COLUMN)
        .cloned()
        .collect();
    let user = Arc::new(Schema::new_with_metadata(
        user,
        entry.schema.metadata().clone(),
    ));
    let _ = primary_key_columns(&user);
    let stored = tombstone::stored_schema(&user);
    for batch in &entry.batches {
        if let Ok(b) = tombstone::backfill(&stored, batch.clone()) {
            assert_eq!(b.num_rows(), batch.num_rows());
        }
    }

    // The tailer hands entries on as IPC, and a writer that replays them
    // writes their rows again: what decoded must encode and decode back.
    if !entry.batches.is_empty() {
        let again = encode_entry(entry.epoch, &entry.schema, &entry.batches)
            .expect("a decoded entry re-encodes");
        let back = decode_entry(6, again).expect("a re-encoded entry decodes");
        assert_eq!(back.epoch, entry.epoch);
        assert_eq!(back.schema, entry.schema);
        assert_eq!(back.batches.len(), entry.batches.len());
        for (a, b) in back.batches.iter().zip(&entry.batches) {
            assert_eq!(a.num_rows(), b.num_rows());
        }
    }
});
