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
import { adoptSchema } from './adopt.js'
import { schemaToIPC } from './arrow.js'
import { MemWalError } from './errors.js'

/** What `putBuffers`/`deleteBuffers` take besides the schema. */
export interface Handoff {
  schemaIpc: Uint8Array
  rows: Float64Array
  nodes: Float64Array
  buffers: (Uint8Array | null)[]
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

function bytes(view: ArrayBufferView | null | undefined): Uint8Array | null {
  if (!view) return null
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
}

function walk(data: DataLike, nodes: number[], buffers: (Uint8Array | null)[]): void {
  const typeId = data.type.typeId
  const nullCount = Math.max(data.nullCount, 0)
  nodes.push(data.length, nullCount, data.offset)
  if (nullCount > 0 && typeId !== Type.Null && !data.nullBitmap?.byteLength) {
    throw new MemWalError(
      'INVALID_INPUT',
      `A column claims ${nullCount} nulls but has no validity bitmap`,
    )
  }
  buffers.push(nullCount > 0 ? bytes(data.nullBitmap) : null)
  switch (typeId) {
    case Type.Null:
      return
    case Type.Bool:
    case Type.Int:
    case Type.Float:
    case Type.Decimal:
    case Type.Date:
    case Type.Time:
    case Type.Timestamp:
    case Type.Interval:
    case Type.Duration:
    case Type.FixedSizeBinary:
      buffers.push(bytes(data.values))
      return
    case Type.Utf8:
    case Type.Binary:
    case Type.LargeUtf8:
    case Type.LargeBinary:
      buffers.push(bytes(data.valueOffsets), bytes(data.values))
      return
    case Type.List:
    case Type.LargeList:
    case Type.Map:
      buffers.push(bytes(data.valueOffsets))
      walk(data.children[0], nodes, buffers)
      return
    case Type.FixedSizeList:
      walk(data.children[0], nodes, buffers)
      return
    case Type.Struct:
      for (const child of data.children) walk(child, nodes, buffers)
      return
    case Type.Dictionary: {
      const chunks = data.dictionary?.data ?? []
      if (chunks.length !== 1) throw new NotHandedOver()
      buffers.push(bytes(data.values))
      walk(chunks[0], nodes, buffers)
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
  const nodes: number[] = []
  const buffers: (Uint8Array | null)[] = []
  const rows = new Float64Array(batches.length)
  try {
    batches.forEach((batch, i) => {
      if (i > 0 && !sameBytes(schemaIpcOf(batch.schema), schemaIpc)) throw new NotHandedOver()
      rows[i] = batch.numRows
      for (const column of (batch.data as unknown as DataLike).children) {
        walk(column, nodes, buffers)
      }
    })
  } catch (error) {
    if (error instanceof NotHandedOver) return undefined
    throw error
  }
  return { schemaIpc, rows, nodes: Float64Array.from(nodes), buffers }
}
