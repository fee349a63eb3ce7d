//! Arrow IPC stream bytes in and out of JS.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Schema, SchemaRef};
use memwal_core::Error;

/// Decode a complete IPC stream: its schema and every batch in it.
pub fn decode_stream(bytes: &[u8]) -> memwal_core::Result<(SchemaRef, Vec<RecordBatch>)> {
    // One copy out of JS memory; the decoded arrays are views into it.
    let mut buffer = Buffer::from(bytes.to_vec());
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    while let Some(batch) = decoder
        .decode(&mut buffer)
        .map_err(|e| Error::invalid_input(format!("Malformed Arrow IPC input: {e}")))?
    {
        batches.push(batch);
    }
    decoder
        .finish()
        .map_err(|e| Error::invalid_input(format!("Malformed Arrow IPC input: {e}")))?;
    let schema = decoder
        .schema()
        .ok_or_else(|| Error::invalid_input("Arrow IPC input has no schema"))?;
    Ok((schema, batches))
}

/// Encode batches (possibly none) as one IPC stream.
pub fn encode_stream(schema: &Schema, batches: &[RecordBatch]) -> memwal_core::Result<Vec<u8>> {
    let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let mut out = Vec::with_capacity(size + 512);
    let mut writer = StreamWriter::try_new(&mut out, schema)
        .map_err(|e| Error::internal(format!("Cannot encode Arrow IPC: {e}")))?;
    for batch in batches {
        writer
            .write(batch)
            .map_err(|e| Error::internal(format!("Cannot encode Arrow IPC: {e}")))?;
    }
    writer
        .finish()
        .map_err(|e| Error::internal(format!("Cannot encode Arrow IPC: {e}")))?;
    drop(writer);
    Ok(out)
}

pub fn schema_only(bytes: &[u8]) -> memwal_core::Result<SchemaRef> {
    let (schema, _) = decode_stream(bytes)?;
    Ok(Arc::clone(&schema))
}
