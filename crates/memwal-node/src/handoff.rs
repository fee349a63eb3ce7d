//! Record batches rebuilt from the buffers of apache-arrow's `Data` tree.
//!
//! `ts/handoff.ts` walks each batch once, depth first, and hands over two
//! flat lists: numbers (each batch's row count, then three per node: length,
//! null count, bit offset of the validity bitmap and of boolean values; see
//! [`split_numbers`]) and the nodes' buffers in Arrow's layout order,
//! validity first (`None` when there are no nulls), each as the typed array
//! apache-arrow holds it. The dictionary of a dictionary column follows its
//! indices as one more subtree. Each buffer is copied once, into aligned memory from the
//! process's put-copy pool (`memwal_alloc::copy_pool`), before the call
//! returns; JS keeps no claim on anything afterwards.
//!
//! apache-arrow keeps every buffer but the bitmaps starting at the node's
//! first row (it slices them), so only bitmaps carry an offset here.
//! Everything is checked by arrow-rs's full validation: sizes, offsets,
//! UTF-8, dictionary keys; hostile input is an error, never a panic.

use std::sync::Arc;

use arrow_array::{make_array, RecordBatch, RecordBatchOptions};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow_data::{ArrayData, ArrayDataBuilder};
use arrow_schema::{DataType, SchemaRef};
use memwal_alloc::CopyPool;
use memwal_core::{Error, Result};

/// Numbers per node in the node list.
const NODE_WIDTH: usize = 3;

fn malformed(message: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!("Malformed Arrow input: {message}"))
}

/// Rebuild `rows.len()` batches of `schema` from the flat lists.
pub fn import_batches(
    schema: &SchemaRef,
    rows: &[f64],
    nodes: &[f64],
    buffers: &[Option<&[u8]>],
) -> Result<Vec<RecordBatch>> {
    if !nodes.len().is_multiple_of(NODE_WIDTH) {
        return Err(malformed(format!(
            "{} node numbers is not a multiple of {NODE_WIDTH}",
            nodes.len()
        )));
    }
    let mut cursor = Cursor {
        nodes,
        buffers,
        node: 0,
        buffer: 0,
    };
    let mut batches = Vec::with_capacity(rows.len());
    for &row_count in rows {
        let row_count = count(row_count, "row count")?;
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                let data = cursor.array(field.data_type())?;
                if data.len() != row_count {
                    return Err(malformed(format!(
                        "column '{}' has {} rows, the batch {row_count}",
                        field.name(),
                        data.len()
                    )));
                }
                Ok(make_array(data))
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(row_count));
        let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)
            .map_err(malformed)?;
        batches.push(batch);
    }
    if cursor.node * NODE_WIDTH != nodes.len() || cursor.buffer != buffers.len() {
        return Err(malformed(format!(
            "{} nodes and {} buffers left over",
            nodes.len() / NODE_WIDTH - cursor.node,
            buffers.len() - cursor.buffer
        )));
    }
    Ok(batches)
}

/// The row counts and node numbers of a hand-off. `numbers` is a scratch
/// array JS reuses between puts: it starts with how many row counts and
/// node numbers follow, and whatever comes after those is stale.
pub fn split_numbers(numbers: &[f64]) -> Result<(&[f64], &[f64])> {
    let [batches, node_numbers, rest @ ..] = numbers else {
        return Err(malformed("the number list has no header"));
    };
    let batches = count(*batches, "batch count")?;
    let node_numbers = count(*node_numbers, "node number count")?;
    let Some(used) = rest.get(..batches + node_numbers) else {
        return Err(malformed(format!(
            "{batches} row counts and {node_numbers} node numbers do not fit in {} numbers",
            rest.len()
        )));
    };
    Ok(used.split_at(batches))
}

fn count(value: f64, what: &str) -> Result<usize> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= u32::MAX as f64 {
        Ok(value as usize)
    } else {
        Err(malformed(format!("{what} {value} is not a valid count")))
    }
}

struct Node {
    len: usize,
    null_count: usize,
    bit_offset: usize,
}

struct Cursor<'a> {
    nodes: &'a [f64],
    buffers: &'a [Option<&'a [u8]>],
    node: usize,
    buffer: usize,
}

impl<'a> Cursor<'a> {
    fn next_node(&mut self) -> Result<Node> {
        let at = self.node * NODE_WIDTH;
        let Some(numbers) = self.nodes.get(at..at + NODE_WIDTH) else {
            return Err(malformed("fewer nodes than the schema has fields"));
        };
        self.node += 1;
        Ok(Node {
            len: count(numbers[0], "length")?,
            null_count: count(numbers[1], "null count")?,
            bit_offset: count(numbers[2], "offset")?,
        })
    }

    fn next_buffer(&mut self) -> Result<Option<&'a [u8]>> {
        let Some(buffer) = self.buffers.get(self.buffer) else {
            return Err(malformed("fewer buffers than the schema needs"));
        };
        self.buffer += 1;
        Ok(*buffer)
    }

    fn required_buffer(&mut self, what: &str) -> Result<&'a [u8]> {
        self.next_buffer()?
            .ok_or_else(|| malformed(format!("the {what} buffer is missing")))
    }

    /// One node of type `data_type` and everything below it.
    fn array(&mut self, data_type: &DataType) -> Result<ArrayData> {
        let node = self.next_node()?;
        let validity = self.next_buffer()?;
        let nulls = match validity {
            Some(bits) if node.null_count > 0 => Some(bitmap(bits, &node, "validity")?),
            _ => None,
        };
        let mut builder = ArrayDataBuilder::new(data_type.clone())
            .len(node.len)
            .nulls(nulls.map(NullBuffer::new));
        builder = match data_type {
            DataType::Null => builder,
            DataType::Boolean => {
                let bits = bitmap(self.required_buffer("values")?, &node, "values")?;
                builder
                    .offset(bits.offset())
                    .add_buffer(bits.inner().clone())
            }
            DataType::Utf8 | DataType::Binary => builder
                .add_buffer(offsets(self.required_buffer("offsets")?, node.len, 4))
                .add_buffer(copy(self.required_buffer("data")?)),
            DataType::LargeUtf8 | DataType::LargeBinary => builder
                .add_buffer(offsets(self.required_buffer("offsets")?, node.len, 8))
                .add_buffer(copy(self.required_buffer("data")?)),
            DataType::List(child) | DataType::Map(child, _) => {
                let offsets = offsets(self.required_buffer("offsets")?, node.len, 4);
                builder
                    .add_buffer(offsets)
                    .add_child_data(self.array(child.data_type())?)
            }
            DataType::LargeList(child) => {
                let offsets = offsets(self.required_buffer("offsets")?, node.len, 8);
                builder
                    .add_buffer(offsets)
                    .add_child_data(self.array(child.data_type())?)
            }
            DataType::FixedSizeList(child, _) => {
                builder.add_child_data(self.array(child.data_type())?)
            }
            DataType::Struct(fields) => {
                for field in fields {
                    builder = builder.add_child_data(self.array(field.data_type())?);
                }
                builder
            }
            DataType::Dictionary(_, values) => {
                let keys = copy(self.required_buffer("indices")?);
                builder.add_buffer(keys).add_child_data(self.array(values)?)
            }
            t if t.primitive_width().is_some() || matches!(t, DataType::FixedSizeBinary(_)) => {
                builder.add_buffer(copy(self.required_buffer("values")?))
            }
            other => {
                return Err(Error::invalid_input(format!(
                    "Arrow type {other} cannot be handed over buffer by buffer"
                )))
            }
        };
        // Full validation: buffer sizes, offsets, UTF-8, dictionary keys.
        builder.build().map_err(malformed)
    }
}

/// A bitmap of `node.len` bits from bit `node.bit_offset`, copied once.
fn bitmap(bits: &[u8], node: &Node, what: &str) -> Result<BooleanBuffer> {
    let needed = node
        .bit_offset
        .checked_add(node.len)
        .ok_or_else(|| malformed("bitmap offset overflows"))?;
    if bits.len().saturating_mul(8) < needed {
        return Err(malformed(format!(
            "the {what} bitmap has {} bytes, {needed} bits are needed",
            bits.len()
        )));
    }
    Ok(BooleanBuffer::new(copy(bits), node.bit_offset, node.len))
}

/// An offsets buffer; a zero-row node may come without one.
fn offsets(bytes: &[u8], len: usize, width: usize) -> Buffer {
    if bytes.is_empty() && len == 0 {
        return Buffer::from_vec(vec![0u8; width]);
    }
    copy(bytes)
}

/// The one copy of a JS buffer, cut from the process's put-copy pool.
fn copy(bytes: &[u8]) -> Buffer {
    CopyPool::shared().copy(bytes)
}

/// The batches' schema, decoded from IPC once per distinct schema.
#[derive(Default)]
pub struct SchemaCache {
    last: std::sync::Mutex<Option<(Vec<u8>, SchemaRef)>>,
}

impl SchemaCache {
    pub fn get(&self, ipc: &[u8]) -> Result<SchemaRef> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((bytes, schema)) = last.as_ref() {
            if bytes.as_slice() == ipc {
                return Ok(Arc::clone(schema));
            }
        }
        let schema = crate::ipc::schema_only(ipc)?;
        *last = Some((ipc.to_vec(), Arc::clone(&schema)));
        Ok(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int32Array, StringArray};
    use arrow_schema::{Field, Schema};

    fn schema(fields: Vec<Field>) -> SchemaRef {
        Arc::new(Schema::new(fields))
    }

    fn le32(values: &[i32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn ints_and_strings_with_nulls_and_a_bit_offset_round_trip() {
        let s = schema(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ]);
        // Rows 3..6 of a bitmap 0b0010_1000: row 3 valid, 4 null, 5 valid.
        let validity = [0b0010_1000u8];
        let values = le32(&[7, 8, 9]);
        let offsets = le32(&[2, 4, 4, 7]);
        let data = b"xxabcde".to_vec();
        let nodes = [3.0, 1.0, 3.0, 3.0, 1.0, 3.0];
        let buffers: Vec<Option<&[u8]>> = vec![
            Some(&validity),
            Some(&values),
            Some(&validity),
            Some(&offsets),
            Some(&data),
        ];
        let batches = import_batches(&s, &[3.0], &nodes, &buffers).unwrap();
        let a = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![Some(7), None, Some(9)]);
        let t = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            vec![Some("ab"), None, Some("cde")]
        );
        assert_eq!(t.null_count(), 1);
    }

    /// Node numbers and buffers of one hostile hand-off.
    type Case<'a> = (Vec<f64>, Vec<Option<&'a [u8]>>);

    #[test]
    fn hostile_sizes_and_counts_are_errors_not_panics() {
        let s = schema(vec![Field::new("s", DataType::Utf8, true)]);
        let offsets = le32(&[0, 1_000_000]);
        let short = le32(&[0]);
        let bad_utf8 = [0xffu8, 0xfe];
        let one = le32(&[0, 1]);
        let two = le32(&[0, 2]);
        let cases: Vec<Case> = vec![
            // Offsets past the end of the data.
            (vec![1.0, 0.0, 0.0], vec![None, Some(&offsets), Some(b"ab")]),
            // Too few offsets.
            (vec![1.0, 0.0, 0.0], vec![None, Some(&short), Some(b"ab")]),
            // Invalid UTF-8.
            (vec![1.0, 0.0, 0.0], vec![None, Some(&two), Some(&bad_utf8)]),
            // A bitmap too short for its offset.
            (
                vec![1.0, 1.0, 64.0],
                vec![Some(&[0u8]), Some(&one), Some(b"a")],
            ),
            // Missing buffers, missing nodes, negative and fractional counts.
            (vec![1.0, 0.0, 0.0], vec![None]),
            (vec![], vec![]),
            (vec![-1.0, 0.0, 0.0], vec![None, Some(&one), Some(b"a")]),
            (vec![0.5, 0.0, 0.0], vec![None, Some(&one), Some(b"a")]),
            (vec![f64::NAN, 0.0, 0.0], vec![None, Some(&one), Some(b"a")]),
            // Leftovers.
            (
                vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
                vec![None, Some(&one), Some(b"a")],
            ),
        ];
        for (i, (nodes, buffers)) in cases.iter().enumerate() {
            let err = import_batches(&s, &[1.0], nodes, buffers).unwrap_err();
            assert_eq!(
                err.code(),
                memwal_core::ErrorCode::InvalidInput,
                "case {i}: {err}"
            );
        }
    }

    #[test]
    fn a_column_of_another_length_than_the_batch_is_refused() {
        let s = schema(vec![Field::new("a", DataType::Int32, false)]);
        let values = le32(&[1, 2]);
        let err = import_batches(&s, &[3.0], &[2.0, 0.0, 0.0], &[None, Some(&values)]).unwrap_err();
        assert!(err.message().contains("2 rows"), "{err}");
    }

    #[test]
    fn the_numbers_in_use_are_split_into_row_counts_and_nodes_and_overruns_are_refused() {
        let numbers = [1.0, 3.0, 20.0, 20.0, 0.0, 0.0, 7.0, 7.0];
        let (rows, nodes) = split_numbers(&numbers).unwrap();
        assert_eq!(rows, &[20.0]);
        assert_eq!(nodes, &[20.0, 0.0, 0.0]);
        for bad in [
            &[2.0, 6.0, 20.0, 20.0, 0.0, 0.0, 7.0, 7.0][..],
            &[1.0][..],
            &[-1.0, 0.0][..],
            &[0.5, 0.0, 1.0][..],
        ] {
            let err = split_numbers(bad).unwrap_err();
            assert_eq!(err.code(), memwal_core::ErrorCode::InvalidInput, "{err}");
        }
    }
}
