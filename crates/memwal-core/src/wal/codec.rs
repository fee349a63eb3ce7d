//! WAL entry encoding: one Arrow IPC *stream* per entry (schema, batches,
//! end-of-stream marker) whose schema metadata carries the writer's epoch.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::{StreamEncoder, StreamWriter};
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use object_store::{PutPayload, PutPayloadMut};

use crate::error::{Error, Result};

/// Schema metadata key holding the writer epoch as a decimal string.
pub const WRITER_EPOCH_KEY: &str = "writer_epoch";
/// Schema metadata key marking a data-less fence entry.
pub const FENCE_SENTINEL_KEY: &str = "fence_sentinel";

/// The IPC end-of-stream marker: continuation token then a zero length.
const END_OF_STREAM: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// A decoded WAL entry.
#[derive(Debug, Clone)]
pub struct WalEntry {
    pub position: u64,
    pub epoch: u64,
    /// The entry's schema with the WAL bookkeeping keys removed.
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub fence_sentinel: bool,
}

impl WalEntry {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Buffers at least this large go to the store as chunks of their own,
/// shared with the batch; smaller ones (message headers, padding, the
/// columns of small batches) are gathered into blocks, so a WAL entry of
/// many small puts is still a handful of writes.
const SHARED_BUFFER_MIN: usize = 64 * 1024;
/// Size of the blocks small buffers are gathered into.
const GATHER_BLOCK: usize = 256 * 1024;

/// Encode `batches` (all sharing `schema`'s fields) as one entry for
/// `epoch`, as the chunks the store writes one after another.
///
/// Record batch bodies are not copied into one contiguous buffer first:
/// large Arrow buffers become chunks of the payload that point at the
/// batch's own memory, and the bytes on the store are exactly those of
/// Arrow's `StreamWriter` (a test checks this).
pub fn encode_entry_payload(
    epoch: u64,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<PutPayload> {
    if batches.is_empty() {
        return Err(Error::invalid_input("Cannot write empty batch list"));
    }
    let mut metadata = schema.metadata().clone();
    metadata.insert(WRITER_EPOCH_KEY.to_string(), epoch.to_string());
    let entry_schema = Schema::new_with_metadata(schema.fields().clone(), metadata);
    let mut encoder = StreamEncoder::try_new(&entry_schema)
        .map_err(|e| Error::internal(format!("Cannot start WAL entry: {e}")))?;
    let mut payload = PutPayloadMut::new().with_block_size(GATHER_BLOCK);
    let mut add = |buffers: Vec<Buffer>| {
        for buffer in buffers {
            if buffer.len() >= SHARED_BUFFER_MIN {
                payload.push(Bytes::from_owner(buffer));
            } else {
                payload.extend_from_slice(&buffer);
            }
        }
    };
    for batch in batches {
        let buffers = encoder
            .encode(batch)
            .map_err(|e| Error::internal(format!("Cannot encode WAL batch: {e}")))?;
        add(buffers);
    }
    let end = encoder
        .finish()
        .map_err(|e| Error::internal(format!("Cannot finish WAL entry: {e}")))?;
    add(end);
    Ok(payload.freeze())
}

/// [`encode_entry_payload`] as one contiguous buffer, for callers that
/// want the entry's bytes rather than something to write.
pub fn encode_entry(epoch: u64, schema: &Schema, batches: &[RecordBatch]) -> Result<Bytes> {
    encode_entry_payload(epoch, schema, batches).map(Bytes::from)
}

/// The data-less entry a new writer puts at the WAL tip to fence older epochs.
pub fn encode_fence_sentinel(epoch: u64) -> Bytes {
    let metadata = HashMap::from([
        (WRITER_EPOCH_KEY.to_string(), epoch.to_string()),
        (FENCE_SENTINEL_KEY.to_string(), "true".to_string()),
    ]);
    let schema = Schema::new_with_metadata(Vec::<arrow_schema::Field>::new(), metadata);
    let mut out = Vec::with_capacity(256);
    let mut writer = StreamWriter::try_new(&mut out, &schema).expect("empty schema always encodes");
    writer.finish().expect("empty stream always finishes");
    drop(writer);
    Bytes::from(out)
}

/// Decode the entry stored at `position`. Anything that is not a complete,
/// well-formed stream with a numeric epoch is `CORRUPT`.
pub fn decode_entry(position: u64, bytes: Bytes) -> Result<WalEntry> {
    let corrupt = |what: String| {
        Error::corrupt(format!(
            "WAL entry at position {position} is corrupt: {what}"
        ))
    };
    if !bytes.ends_with(&END_OF_STREAM) {
        return Err(corrupt(format!(
            "truncated ({} bytes, no end-of-stream marker)",
            bytes.len()
        )));
    }
    check_framing(&bytes).map_err(corrupt)?;
    let mut buffer = Buffer::from(bytes);
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    // arrow-ipc still panics on some malformed batches that check_framing
    // cannot see without the column types (an offsets buffer whose length
    // is not a multiple of the offset width): that is corrupt too.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
        match decoder.decode(&mut buffer) {
            Ok(Some(batch)) => batches.push(batch),
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }));
    match decoded {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(corrupt(e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            return Err(corrupt(format!("the Arrow reader failed on it: {what}")));
        }
    }
    if !buffer.is_empty() {
        return Err(corrupt(format!(
            "{} bytes after the end-of-stream marker",
            buffer.len()
        )));
    }
    decoder.finish().map_err(|e| corrupt(e.to_string()))?;
    let raw_schema = decoder
        .schema()
        .ok_or_else(|| corrupt("no schema message".to_string()))?;
    let mut metadata = raw_schema.metadata().clone();
    let epoch_text = metadata
        .remove(WRITER_EPOCH_KEY)
        .ok_or_else(|| corrupt(format!("missing '{WRITER_EPOCH_KEY}' metadata")))?;
    let epoch = epoch_text
        .parse::<u64>()
        .map_err(|_| corrupt(format!("non-numeric writer_epoch '{epoch_text}'")))?;
    // Only a data-less entry can be a sentinel: a stray key on a data entry
    // must never make replay skip its rows.
    let fence_sentinel = metadata
        .remove(FENCE_SENTINEL_KEY)
        .is_some_and(|v| v == "true")
        && raw_schema.fields().is_empty()
        && batches.is_empty();
    let schema = Arc::new(Schema::new_with_metadata(
        raw_schema.fields().clone(),
        metadata,
    ));
    let batches = batches
        .into_iter()
        .map(|batch| {
            RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                .map_err(|e| corrupt(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(WalEntry {
        position,
        epoch,
        schema,
        batches,
        fence_sentinel,
    })
}

/// Walk the stream's framing before the Arrow decoder sees it: every
/// message, message body and batch buffer it declares must lie inside the
/// entry. The decoder trusts those sizes: it panics on a buffer that ends
/// past its body, and reserves up to 64 MiB for a message or body declared
/// longer than the bytes that follow it.
fn check_framing(bytes: &[u8]) -> std::result::Result<(), String> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .ok_or_else(|| format!("truncated message header at offset {at}"))
    };
    let mut at = 0;
    loop {
        let mut len = word(at)?;
        at += 4;
        if len == u32::MAX {
            // Continuation marker; the length follows.
            len = word(at)?;
            at += 4;
        }
        if len == 0 {
            return Ok(());
        }
        let len = len as usize;
        let left = bytes.len() - at;
        if len > left {
            return Err(format!(
                "message at offset {at} declares {len} bytes, {left} follow"
            ));
        }
        let message = arrow_ipc::root_as_message(&bytes[at..at + len])
            .map_err(|e| format!("unreadable message at offset {at}: {e}"))?;
        at += len;
        let left = bytes.len() - at;
        let body = message.bodyLength();
        let body = usize::try_from(body)
            .ok()
            .filter(|&b| b <= left)
            .ok_or_else(|| {
                format!("message body at offset {at} declares {body} bytes, {left} follow")
            })?;
        let batch = message
            .header_as_record_batch()
            .or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
        if let Some(buffers) = batch.and_then(|b| b.buffers()) {
            for buffer in buffers.iter() {
                let (offset, length) = (buffer.offset(), buffer.length());
                let inside = offset >= 0
                    && length >= 0
                    && offset
                        .checked_add(length)
                        .is_some_and(|end| end as u64 <= body as u64);
                if !inside {
                    return Err(format!(
                        "buffer at {offset}+{length} lies outside its {body}-byte message body"
                    ));
                }
            }
        }
        at += body;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::format::TOMBSTONE_COLUMN;
    use arrow_array::{BooleanArray, Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new_with_metadata(
            vec![
                Field::new("id", DataType::Int64, false),
                Field::new("name", DataType::Utf8, true),
            ],
            HashMap::from([("app".to_string(), "demo".to_string())]),
        ))
    }

    fn batch(ids: &[i64]) -> RecordBatch {
        let names: Vec<Option<String>> = ids.iter().map(|i| Some(format!("n{i}"))).collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn entry_round_trips_with_epoch_and_order() {
        let bytes = encode_entry(7, &schema(), &[batch(&[1, 2]), batch(&[3])]).unwrap();
        let entry = decode_entry(4, bytes).unwrap();
        assert_eq!(entry.position, 4);
        assert_eq!(entry.epoch, 7);
        assert!(!entry.fence_sentinel);
        assert_eq!(entry.batches, vec![batch(&[1, 2]), batch(&[3])]);
        assert_eq!(entry.schema.metadata().get(WRITER_EPOCH_KEY), None);
        assert_eq!(
            entry.schema.metadata().get("app").map(String::as_str),
            Some("demo")
        );
    }

    /// What Arrow's own stream writer makes of the same entry.
    fn stream_writer_bytes(epoch: u64, schema: &Schema, batches: &[RecordBatch]) -> Vec<u8> {
        let mut metadata = schema.metadata().clone();
        metadata.insert(WRITER_EPOCH_KEY.to_string(), epoch.to_string());
        let schema = Schema::new_with_metadata(schema.fields().clone(), metadata);
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new(&mut out, &schema).unwrap();
        for batch in batches {
            writer.write(batch).unwrap();
        }
        writer.finish().unwrap();
        drop(writer);
        out
    }

    /// A batch with large buffers, nulls, a dictionary column and a list.
    fn wide_batch(rows: usize) -> RecordBatch {
        use arrow_array::builder::{ListBuilder, StringDictionaryBuilder};
        use arrow_array::types::Int32Type;
        use arrow_array::{ArrayRef, Float32Array};
        let ids = Int64Array::from_iter((0..rows as i64).map(|i| (i % 7 != 0).then_some(i)));
        let floats = Float32Array::from_iter_values((0..rows * 32).map(|i| i as f32 * 0.5));
        let vectors = arrow_array::FixedSizeListArray::new(
            Arc::new(Field::new("item", DataType::Float32, true)),
            32,
            Arc::new(floats),
            None,
        );
        let text =
            StringArray::from_iter((0..rows).map(|i| (i % 5 != 0).then(|| format!("row {i}"))));
        let mut tags = StringDictionaryBuilder::<Int32Type>::new();
        let mut lists = ListBuilder::new(arrow_array::builder::Int64Builder::new());
        for i in 0..rows {
            tags.append_value(["red", "green", "blue"][i % 3]);
            lists.values().append_slice(&vec![i as i64; i % 4]);
            lists.append(i % 9 != 0);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids),
            Arc::new(vectors),
            Arc::new(text),
            Arc::new(tags.finish()),
            Arc::new(lists.finish()),
        ];
        RecordBatch::try_from_iter(
            ["id", "vector", "text", "tag", "list"]
                .into_iter()
                .zip(columns),
        )
        .unwrap()
    }

    #[test]
    fn payload_bytes_are_those_of_arrows_stream_writer() {
        let wide = wide_batch(3000);
        let cases: Vec<(Arc<Schema>, Vec<RecordBatch>)> = vec![
            (schema(), vec![batch(&[1, 2]), batch(&[3])]),
            (wide.schema(), vec![wide.clone()]),
            (
                wide.schema(),
                vec![wide.slice(1, 2500), wide.slice(7, 3), wide.clone()],
            ),
        ];
        for (schema, batches) in cases {
            let payload = encode_entry_payload(5, &schema, &batches).unwrap();
            let mut joined = Vec::new();
            for chunk in &payload {
                joined.extend_from_slice(chunk);
            }
            assert_eq!(joined.len(), payload.content_length());
            assert_eq!(joined, stream_writer_bytes(5, &schema, &batches));
            let entry = decode_entry(1, Bytes::from(joined)).unwrap();
            assert_eq!(entry.batches.len(), batches.len());
            for (got, put) in entry.batches.iter().zip(&batches) {
                assert_eq!(got.columns(), put.columns());
            }
        }
    }

    #[test]
    fn large_buffers_are_written_from_the_batch_without_a_copy() {
        let wide = wide_batch(3000);
        let vector_values = wide
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeListArray>()
            .unwrap()
            .values()
            .to_data()
            .buffers()[0]
            .as_ptr();
        let payload = encode_entry_payload(1, &wide.schema(), std::slice::from_ref(&wide)).unwrap();
        assert!(
            payload.iter().any(|chunk| chunk.as_ptr() == vector_values),
            "the 384 KB vector buffer was copied"
        );
        // Small buffers are gathered: a few chunks, not one per buffer.
        let small = encode_entry_payload(1, &schema(), &vec![batch(&[1, 2, 3]); 200]).unwrap();
        assert!(small.iter().count() <= 2, "{} chunks", small.iter().count());
    }

    #[test]
    fn fence_sentinel_has_no_fields_and_no_batches() {
        let entry = decode_entry(9, encode_fence_sentinel(3)).unwrap();
        assert!(entry.fence_sentinel);
        assert_eq!(entry.epoch, 3);
        assert!(entry.batches.is_empty());
        assert!(entry.schema.fields().is_empty());
    }

    #[test]
    fn every_truncation_is_corrupt() {
        let bytes = encode_entry(1, &schema(), &[batch(&[1, 2, 3])]).unwrap();
        for len in 0..bytes.len() {
            let err = decode_entry(2, bytes.slice(0..len)).expect_err("truncated entry decoded");
            assert_eq!(err.code(), ErrorCode::Corrupt, "len {len}: {err}");
            assert!(err.message().contains("position 2"), "{err}");
        }
    }

    #[test]
    fn garbage_and_trailing_bytes_are_corrupt() {
        let garbage = Bytes::from_static(b"definitely not arrow\xff\xff\xff\xff\0\0\0\0");
        assert_eq!(
            decode_entry(1, garbage).unwrap_err().code(),
            ErrorCode::Corrupt
        );
        let good = encode_entry(1, &schema(), &[batch(&[1])]).unwrap();
        let mut doubled = good.to_vec();
        doubled.extend_from_slice(&good);
        assert_eq!(
            decode_entry(1, Bytes::from(doubled)).unwrap_err().code(),
            ErrorCode::Corrupt
        );
    }

    #[test]
    fn epoch_must_be_present_and_numeric() {
        for epoch in [None, Some("x12"), Some("-1")] {
            let mut metadata = HashMap::new();
            if let Some(e) = epoch {
                metadata.insert(WRITER_EPOCH_KEY.to_string(), e.to_string());
            }
            let s = Schema::new_with_metadata(schema().fields().clone(), metadata);
            let mut out = Vec::new();
            let mut w = StreamWriter::try_new(&mut out, &s).unwrap();
            w.write(&batch(&[1])).unwrap();
            w.finish().unwrap();
            drop(w);
            let err = decode_entry(1, Bytes::from(out)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Corrupt, "{epoch:?}");
        }
    }

    #[test]
    fn lance_tombstone_column_is_accepted() {
        let s = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(TOMBSTONE_COLUMN, DataType::Boolean, false),
        ]));
        let b = RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(BooleanArray::from(vec![false, true])),
            ],
        )
        .unwrap();
        let entry =
            decode_entry(1, encode_entry(2, &s, std::slice::from_ref(&b)).unwrap()).unwrap();
        assert_eq!(entry.batches[0].column(1), b.column(1));
    }

    #[test]
    fn a_data_entry_is_never_a_sentinel() {
        let mut metadata = HashMap::new();
        metadata.insert(FENCE_SENTINEL_KEY.to_string(), "true".to_string());
        let s = Schema::new_with_metadata(schema().fields().clone(), metadata);
        let entry = decode_entry(1, encode_entry(3, &s, &[batch(&[1, 2])]).unwrap()).unwrap();
        assert!(!entry.fence_sentinel);
        assert_eq!(entry.num_rows(), 2);
    }

    /// (metadata start, metadata length, body start, body length) of each
    /// message of an entry written by `encode_entry` (always continued).
    fn messages(bytes: &[u8]) -> Vec<(usize, usize, usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            if len == 0 {
                return out;
            }
            let message = arrow_ipc::root_as_message(&bytes[at + 8..at + 8 + len]).unwrap();
            let body = message.bodyLength() as usize;
            out.push((at + 8, len, at + 8 + len, body));
            at += 8 + len + body;
        }
    }

    /// Found by fuzz/fuzz_targets/wal_entry.rs: a record batch buffer that
    /// ends past its message body made arrow-ipc's reader panic
    /// ("the offset of the new Buffer cannot exceed the existing length").
    #[test]
    fn a_buffer_past_its_message_body_is_corrupt_not_a_panic() {
        let good = encode_entry(1, &schema(), &[batch(&[1, 2, 3])]).unwrap();
        let (meta, len, _, body) = messages(&good)[1];
        let message = arrow_ipc::root_as_message(&good[meta..meta + len]).unwrap();
        let buffers = message.header_as_record_batch().unwrap().buffers().unwrap();
        let mut bad = good.to_vec();
        for i in 0..buffers.len() {
            // Each buffer is a 16-byte struct (offset, length) inside the
            // metadata; point one of them past the body.
            let at = std::ptr::from_ref(buffers.get(i)) as usize - good.as_ptr() as usize;
            let mut hostile = bad.clone();
            hostile[at + 8..at + 16].copy_from_slice(&(body as i64 * 1000 + 8).to_le_bytes());
            let err = decode_entry(3, Bytes::from(hostile)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Corrupt, "buffer {i}: {err}");
            assert!(err.message().contains("outside its"), "{err}");
            if i == 0 {
                bad[at..at + 8].copy_from_slice(&i64::MAX.to_le_bytes());
            }
        }
        let err = decode_entry(3, Bytes::from(bad)).unwrap_err();
        assert!(err.message().contains("outside its"), "{err}");
    }

    /// Found by fuzz/fuzz_targets/wal_entry.rs: a message or body declaring
    /// more bytes than follow made arrow-ipc reserve up to 64 MiB for it
    /// before noticing the end of the input. They are now refused first.
    #[test]
    fn sizes_declared_past_the_end_are_corrupt_before_decoding() {
        let good = encode_entry(1, &schema(), &[batch(&[1, 2, 3])]).unwrap();
        let (meta, _, body_start, body) = messages(&good)[1];
        // A batch message whose body is cut short, end-of-stream kept.
        let mut cut = good[..body_start + body / 2].to_vec();
        cut.extend_from_slice(&END_OF_STREAM);
        let err = decode_entry(2, Bytes::from(cut)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt);
        assert!(err.message().contains("follow"), "{err}");
        // A message length of 2^31 - 1 in front of a few hundred bytes.
        let mut long = good.to_vec();
        long[meta - 4..meta].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        let err = decode_entry(2, Bytes::from(long)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt);
        assert!(err.message().contains("follow"), "{err}");
        // A negative body length.
        let mut hostile = good.to_vec();
        hostile[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_entry(2, Bytes::from(hostile)).unwrap_err().code(),
            ErrorCode::Corrupt
        );
    }

    /// Found by fuzz/fuzz_targets/wal_entry.rs: a Utf8 offsets buffer whose
    /// length is not a multiple of 4 made arrow-data panic while validating
    /// it ("assertion failed: prefix.is_empty() && suffix.is_empty()").
    #[test]
    fn an_offsets_buffer_of_odd_length_is_corrupt_not_a_panic() {
        let good = encode_entry(1, &schema(), &[batch(&[1, 2, 3])]).unwrap();
        let (meta, len, _, _) = messages(&good)[1];
        let message = arrow_ipc::root_as_message(&good[meta..meta + len]).unwrap();
        let buffers = message.header_as_record_batch().unwrap().buffers().unwrap();
        // Buffers: id validity, id values, name validity, name offsets, ...
        let offsets = buffers.get(3);
        assert_eq!(offsets.length(), 16, "4 i32 offsets");
        let at = std::ptr::from_ref(offsets) as usize - good.as_ptr() as usize;
        let mut hostile = good.to_vec();
        hostile[at + 8..at + 16].copy_from_slice(&17i64.to_le_bytes());
        let err = decode_entry(3, Bytes::from(hostile)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
        assert!(err.message().contains("Arrow reader failed"), "{err}");
    }

    /// Found by fuzz/fuzz_targets/wal_entry.rs: a union whose length exceeds
    /// its type-id buffer made arrow-ipc panic slicing that buffer.
    #[test]
    fn a_union_longer_than_its_type_ids_is_corrupt_not_a_panic() {
        use arrow_array::UnionArray;
        use arrow_schema::UnionFields;
        let fields = UnionFields::try_new(
            vec![0, 1],
            vec![
                Field::new("i", DataType::Int32, true),
                Field::new("s", DataType::Utf8, true),
            ],
        )
        .unwrap();
        let union = UnionArray::try_new(
            fields.clone(),
            vec![0i8, 1, 0].into(),
            None,
            vec![
                Arc::new(arrow_array::Int32Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
            ],
        )
        .unwrap();
        let s = Arc::new(Schema::new(vec![Field::new(
            "u",
            DataType::Union(fields, arrow_schema::UnionMode::Sparse),
            false,
        )]));
        let b = RecordBatch::try_new(s.clone(), vec![Arc::new(union)]).unwrap();
        let good = encode_entry(1, &s, &[b]).unwrap();
        assert_eq!(decode_entry(1, good.clone()).unwrap().num_rows(), 3);
        let (meta, len, _, _) = messages(&good)[1];
        let message = arrow_ipc::root_as_message(&good[meta..meta + len]).unwrap();
        let nodes = message.header_as_record_batch().unwrap().nodes().unwrap();
        // The union's field node (length, null count) comes first.
        let at = std::ptr::from_ref(nodes.get(0)) as usize - good.as_ptr() as usize;
        let mut hostile = good.to_vec();
        hostile[at..at + 8].copy_from_slice(&1000i64.to_le_bytes());
        let err = decode_entry(3, Bytes::from(hostile)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
        assert!(err.message().contains("Arrow reader failed"), "{err}");
    }

    #[test]
    fn empty_batch_list_is_rejected() {
        assert_eq!(
            encode_entry(1, &schema(), &[]).unwrap_err().message(),
            "Cannot write empty batch list"
        );
    }
}
