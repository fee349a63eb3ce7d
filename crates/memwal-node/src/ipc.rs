//! Arrow IPC stream bytes in and out of JS.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamEncoder;
use arrow_schema::{Schema, SchemaRef};
use memwal_core::{Error, ErrorCode};

/// Decode a complete IPC stream: its schema and every batch in it.
pub fn decode_stream(bytes: &[u8]) -> memwal_core::Result<(SchemaRef, Vec<RecordBatch>)> {
    // One copy out of JS memory; the decoded arrays are views into it.
    let mut buffer = Buffer::from(bytes.to_vec());
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    while let Some(batch) = decoder
        .decode(&mut buffer)
        .map_err(|e| Error::caused_by(ErrorCode::InvalidInput, "Malformed Arrow IPC input", e))?
    {
        batches.push(batch);
    }
    decoder
        .finish()
        .map_err(|e| Error::caused_by(ErrorCode::InvalidInput, "Malformed Arrow IPC input", e))?;
    let schema = decoder
        .schema()
        .ok_or_else(|| Error::invalid_input("Arrow IPC input has no schema"))?;
    Ok((schema, batches))
}

/// Encode batches (possibly none) as one IPC stream. Arrow's encoder hands
/// out the batches' own buffers, so each byte is copied once, into `out`.
pub fn encode_stream(schema: &Schema, batches: &[RecordBatch]) -> memwal_core::Result<Vec<u8>> {
    let failed = |e| Error::caused_by(ErrorCode::Internal, "Cannot encode Arrow IPC", e);
    let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let mut out = Vec::with_capacity(size + 512);
    let mut encoder = StreamEncoder::try_new(schema).map_err(failed)?;
    for batch in batches {
        for buffer in encoder.encode(batch).map_err(failed)? {
            out.extend_from_slice(&buffer);
        }
    }
    for buffer in encoder.finish().map_err(failed)? {
        out.extend_from_slice(&buffer);
    }
    Ok(out)
}

pub fn schema_only(bytes: &[u8]) -> memwal_core::Result<SchemaRef> {
    let (schema, _) = decode_stream(bytes)?;
    Ok(Arc::clone(&schema))
}
