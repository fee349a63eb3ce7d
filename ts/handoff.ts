// Hand Arrow batches to the native side as the buffers they already have.
//
// One depth-first walk over each batch's Data tree collects, per node, its
// length, null count and bit offset, and its buffers in Arrow's layout
// order (validity first). No value is touched and nothing is copied here;
// the native side copies each buffer once before the call returns. The
// walk reads structural properties only (`type.typeId`, `offset`,
// `nullBitmap`, ...), so batches built by another apache-arrow copy or
// version work as they are.
//
// apache-arrow slices every buffer except bitmaps when it slices a Data
// (`values[0]` is row 0 of the node), so only the validity bitmap and the
// bits of a Bool node carry the node's `offset`.
import { type RecordBatch, type Schema, Type } from 'apache-arrow'
import type { TypedArray } from '../index.js'
import { adoptSchema } from './adopt.js'
import { schemaToIPC } from './arrow.js'
import { MemWalError } from './errors.js'

/**
 * What `putBuffers`/`deleteBuffers` take besides the schema.
 *
 * `numbers` is shared by every hand-off (a fresh typed array per put cost
 * a native allocation): hand it to the native call before the next
 * `handoffOf`. It holds how many row counts and node numbers follow, the
 * row count of each batch, then three numbers per node.
 */
export interface Handoff {
  schemaIpc: Uint8Array
  numbers: Float64Array
  buffers: (TypedArray | null)[]
}

/** The fields of apache-arrow's `Data` the walk reads. */
interface DataLike {
  type: { typeId: number }
  length: number
  offset: number
  nullCount: number
  nullBitmap?: ArrayBufferView | null
  valueOffsets?: ArrayBufferView | null
  values?: ArrayBufferView | null
  children: DataLike[]
  dictionary?: { data: DataLike[] } | null
}

/** A layout the walk does not hand over (unions, views, chunked dictionaries). */
class NotHandedOver extends Error {}

/**
 * A buffer as native code takes it: any typed array as it is (native reads
 * its bytes), anything else as a byte view over the same memory.
 */
function view(buffer: ArrayBufferView | null | undefined): TypedArray | null {
  if (!buffer) return null
  if ((buffer as Partial<TypedArray>).BYTES_PER_ELEMENT !== undefined) return buffer as TypedArray
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

/** How a node's buffers and children are laid out, by type. */
enum Layout {
  Unsupported,
  Nothing,
  Values,
  OffsetsValues,
  OffsetsChild,
  Child,
  Children,
  Dictionary,
}

// `Type.X` is a getter on apache-arrow's module object; reading it once per
// node per put was a measurable share of a small put. Ids start at -1
// (Dictionary).
const LAYOUTS: Layout[] = []
function setLayout(layout: Layout, ...ids: Type[]): void {
  for (const id of ids) LAYOUTS[id + 1] = layout
}
setLayout(Layout.Nothing, Type.Null)
setLayout(
  Layout.Values,
  Type.Bool,
  Type.Int,
  Type.Float,
  Type.Decimal,
  Type.Date,
  Type.Time,
  Type.Timestamp,
  Type.Interval,
  Type.Duration,
  Type.FixedSizeBinary,
)
setLayout(Layout.OffsetsValues, Type.Utf8, Type.Binary, Type.LargeUtf8, Type.LargeBinary)
setLayout(Layout.OffsetsChild, Type.List, Type.LargeList, Type.Map)
setLayout(Layout.Child, Type.FixedSizeList)
setLayout(Layout.Children, Type.Struct)
setLayout(Layout.Dictionary, Type.Dictionary)
const NULL_TYPE: number = Type.Null

// Large enough to live outside V8's heap from the start (native code then
// reads it in place) and for most puts; doubled when a put needs more.
let numbers = new Float64Array(1024)
/** The header: how many row counts and node numbers follow. */
const HEADER = 2
let used = HEADER

function pushNumber(value: number): void {
  if (used === numbers.length) {
    const grown = new Float64Array(numbers.length * 2)
    grown.set(numbers)
    numbers = grown
  }
  numbers[used++] = value
}

function walk(data: DataLike, buffers: (TypedArray | null)[]): void {
  const typeId = data.type.typeId
  const nullCount = Math.max(data.nullCount, 0)
  pushNumber(data.length)
  pushNumber(nullCount)
  pushNumber(data.offset)
  if (nullCount > 0 && typeId !== NULL_TYPE && !data.nullBitmap?.byteLength) {
    throw new MemWalError(
      'INVALID_INPUT',
      `A column claims ${nullCount} nulls but has no validity bitmap`,
    )
  }
  buffers.push(nullCount > 0 ? view(data.nullBitmap) : null)
  switch (LAYOUTS[typeId + 1] ?? Layout.Unsupported) {
    case Layout.Nothing:
      return
    case Layout.Values:
      buffers.push(view(data.values))
      return
    case Layout.OffsetsValues:
      buffers.push(view(data.valueOffsets), view(data.values))
      return
    case Layout.OffsetsChild:
      buffers.push(view(data.valueOffsets))
      walk(data.children[0], buffers)
      return
    case Layout.Child:
      walk(data.children[0], buffers)
      return
    case Layout.Children:
      for (const child of data.children) walk(child, buffers)
      return
    case Layout.Dictionary: {
      const chunks = data.dictionary?.data ?? []
      if (chunks.length !== 1) throw new NotHandedOver()
      buffers.push(view(data.values))
      walk(chunks[0], buffers)
      return
    }
    default:
      throw new NotHandedOver()
  }
}

const schemaBytes = new WeakMap<Schema, Uint8Array>()

/** The IPC schema message of `schema`, encoded once per schema object. */
function schemaIpcOf(schema: Schema): Uint8Array {
  let ipc = schemaBytes.get(schema)
  if (!ipc) {
    ipc = schemaToIPC(adoptSchema(schema))
    schemaBytes.set(schema, ipc)
  }
  return ipc
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The hand-off of `batches`, or `undefined` when they need the IPC path:
 * a layout not handed over buffer by buffer, or batches whose schemas
 * differ (the IPC path reports or reconciles those).
 */
export function handoffOf(batches: readonly RecordBatch[]): Handoff | undefined {
  const schemaIpc = schemaIpcOf(batches[0].schema)
  const buffers: (TypedArray | null)[] = []
  used = HEADER
  for (const batch of batches) pushNumber(batch.numRows)
  try {
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]
      if (i > 0 && !sameBytes(schemaIpcOf(batch.schema), schemaIpc)) throw new NotHandedOver()
      for (const column of (batch.data as unknown as DataLike).children) {
        walk(column, buffers)
      }
    }
  } catch (error) {
    if (error instanceof NotHandedOver) return undefined
    throw error
  }
  numbers[0] = batches.length
  numbers[1] = used - HEADER - batches.length
  return { schemaIpc, numbers, buffers }
}
