// The buffer hand-off of put/delete: every supported type arrives bit for
// bit (read back through the tailer and through scan), sliced inputs
// included, batches from another apache-arrow major version too, and the
// buffers are copied before put returns.

import {
  Binary,
  Bool,
  type Data,
  DateDay,
  DateMillisecond,
  Decimal,
  Dictionary,
  DurationMicrosecond,
  Field,
  FixedSizeBinary,
  FixedSizeList,
  Float32,
  Float64,
  Int8,
  Int16,
  Int32,
  Int64,
  LargeBinary,
  LargeUtf8,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimeMillisecond,
  TimestampMicrosecond,
  TimestampMillisecond,
  type TypeMap,
  Uint8,
  Uint16,
  Uint32,
  Uint64,
  Utf8,
  vectorFromArray,
} from 'apache-arrow'
import * as arrow17 from 'apache-arrow-17'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { NativeShardWriter } from '../index.js'
import { openShardWriter, openWalTailer } from '../ts/index.js'
import { memoryRoot } from './helpers.js'

const ROWS = 23

/** Row `i` of each column; every third row of a nullable column is null. */
function value(type: string, i: number): unknown {
  if (i % 3 === 1) return null
  switch (type) {
    case 'int8':
      return (i * 37) % 128
    case 'int16':
      return -i * 1000
    case 'int32':
      return i * 100_003 - 7
    case 'int64':
      return BigInt(i) * 10_000_000_000n - 3n
    case 'uint8':
      return (i * 11) % 256
    case 'uint16':
      return i * 2_000
    case 'uint32':
      return i * 100_000_000
    case 'uint64':
      return BigInt(i) * 2n ** 60n
    case 'float32':
      return i === 5 ? Number.NaN : i === 6 ? -0 : Math.fround(i / 7)
    case 'float64':
      return i === 5 ? -Infinity : i / 3
    case 'bool':
      return i % 2 === 0
    case 'utf8':
      return i === 9 ? '' : `ünïcode-${i}-${'x'.repeat(i)}`
    case 'binary':
      return Uint8Array.from({ length: i }, (_, k) => (k * i) % 256)
    case 'fsb':
      return Uint8Array.from({ length: 4 }, (_, k) => k + i)
    case 'vector':
      return Float32Array.from({ length: 4 }, (_, k) => k * 0.5 + i)
    case 'list':
      return Array.from({ length: i % 4 }, (_, k) => (k % 2 ? null : k + i))
    case 'struct':
      return { a: i, b: i % 2 ? null : `s${i}` }
    case 'date-day':
    case 'date-ms':
      return new Date(Date.UTC(2020, 0, 1 + i))
    case 'time-ms':
      return i * 1000
    case 'ts-ms':
    case 'ts-us':
      return 1_700_000_000_000 + i
    case 'duration':
      return BigInt(i) * 1_000_000n
    case 'dict':
      return ['red', 'green', 'blue'][i % 3]
    default:
      throw new Error(type)
  }
}

const COLUMNS: [string, () => TypeMap[keyof TypeMap] | object][] = [
  ['int8', () => new Int8()],
  ['int16', () => new Int16()],
  ['int32', () => new Int32()],
  ['int64', () => new Int64()],
  ['uint8', () => new Uint8()],
  ['uint16', () => new Uint16()],
  ['uint32', () => new Uint32()],
  ['uint64', () => new Uint64()],
  ['float32', () => new Float32()],
  ['float64', () => new Float64()],
  ['bool', () => new Bool()],
  ['utf8', () => new Utf8()],
  ['large-utf8', () => new LargeUtf8()],
  ['binary', () => new Binary()],
  ['large-binary', () => new LargeBinary()],
  ['fsb', () => new FixedSizeBinary(4)],
  ['vector', () => new FixedSizeList(4, new Field('item', new Float32(), true))],
  ['list', () => new List(new Field('item', new Int32(), true))],
  [
    'struct',
    () => new Struct([new Field('a', new Int32(), true), new Field('b', new Utf8(), true)]),
  ],
  ['date-day', () => new DateDay()],
  ['date-ms', () => new DateMillisecond()],
  ['time-ms', () => new TimeMillisecond()],
  ['ts-ms', () => new TimestampMillisecond('UTC')],
  ['ts-us', () => new TimestampMicrosecond()],
  ['duration', () => new DurationMicrosecond()],
  ['dict', () => new Dictionary(new Utf8(), new Int32())],
]

function sourceOf(name: string): string {
  return name === 'large-utf8' ? 'utf8' : name === 'large-binary' ? 'binary' : name
}

/** A table with one column per supported type, nulls in every column. */
function everyType(rows = ROWS): Table {
  const columns: Record<string, ReturnType<typeof vectorFromArray>> = {}
  for (const [name, type] of COLUMNS) {
    const values = Array.from({ length: rows }, (_, i) => value(sourceOf(name), i))
    columns[name] = vectorFromArray(values, type() as never)
  }
  // Decimal: raw 128-bit little-endian words.
  const decimal = new Decimal(3, 20, 128)
  const words = new Uint32Array(rows * 4)
  for (let i = 0; i < rows; i++) words.set([i * 12345, i, 0, 0], i * 4)
  columns.decimal = vectorFromArray(
    Array.from({ length: rows }, (_, i) => words.subarray(i * 4, i * 4 + 4)),
    decimal as never,
  )
  return new Table(columns)
}

/** A JSON text of every value, exact for floats (NaN, -0) and 64-bit ints. */
function canonical(table: Table): string {
  const plain = (v: unknown): unknown => {
    if (v === null || v === undefined) return null
    if (typeof v === 'bigint') return `${v}n`
    if (typeof v === 'number') return Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : v
    if (v instanceof Date) return v.toISOString()
    if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>, plain)
    if (typeof (v as { toArray?: unknown }).toArray === 'function') {
      return Array.from((v as { toArray(): ArrayLike<unknown> }).toArray(), plain)
    }
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      return plain(Object.entries((v as { toJSON(): object }).toJSON()))
    }
    if (Array.isArray(v)) return v.map(plain)
    return v
  }
  const out: Record<string, unknown[]> = {}
  for (const field of table.schema.fields) {
    const column = table.getChild(field.name)
    if (!column) throw new Error(`no column ${field.name}`)
    out[field.name] = Array.from({ length: column.length }, (_, i) => plain(column.get(i)))
  }
  return JSON.stringify(out)
}

async function readBack(uri: string, shardId: string, position: number): Promise<Table> {
  const tailer = await openWalTailer(uri, shardId)
  const entry = await tailer.readEntry(position)
  if (!entry) throw new Error(`no WAL entry ${position}`)
  return new Table(entry.batches)
}

/** One batch of `schema` (nullability included) over the given columns. */
function batchOf(schema: Schema, ...columns: Data[]): RecordBatch {
  const data = makeData({
    type: new Struct(schema.fields),
    length: columns[0].length,
    nullCount: 0,
    children: columns,
  })
  return new RecordBatch(schema, data)
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('buffer hand-off', () => {
  it('every supported type and null arrives bit for bit, through the tailer and scan', async () => {
    const spy = vi.spyOn(NativeShardWriter.prototype, 'putBuffers')
    const table = everyType()
    const uri = memoryRoot('handoff-types')
    const writer = await openShardWriter(uri, { schema: table.schema })
    await writer.put(table)
    expect(spy).toHaveBeenCalledTimes(1)
    const scanned = await writer.scan()
    await writer.close()
    expect(canonical(await readBack(uri, writer.shardId, 1))).toBe(canonical(table))
    expect(canonical(scanned)).toBe(canonical(table))
  })

  it('sliced tables and batches at odd offsets arrive as sliced', async () => {
    const spy = vi.spyOn(NativeShardWriter.prototype, 'putBuffers')
    const table = everyType(40)
    const uri = memoryRoot('handoff-sliced')
    const writer = await openShardWriter(uri, {
      schema: table.schema,
      config: { enableMemtable: false },
    })
    const pieces = [table.slice(3, 17), table.slice(17, 18), table.slice(29)]
    for (const piece of pieces) await writer.put(piece)
    const batch = table.batches[0].slice(5, 36)
    await writer.put(batch)
    expect(spy).toHaveBeenCalledTimes(4)
    await writer.close()
    for (const [i, piece] of [...pieces, new Table([batch])].entries()) {
      expect(canonical(await readBack(uri, writer.shardId, i + 1))).toBe(canonical(piece))
    }
  })

  it('a put with more nodes than the shared number scratch starts with arrives whole, and so does the next', async () => {
    // The number list is reused by the next put: note its header at each call.
    const nodeNumbers: number[] = []
    const putBuffers = NativeShardWriter.prototype.putBuffers
    const spy = vi.spyOn(NativeShardWriter.prototype, 'putBuffers').mockImplementation(function (
      this: NativeShardWriter,
      ...args
    ) {
      nodeNumbers.push(args[1][1])
      return putBuffers.apply(this, args)
    })
    const table = everyType(40)
    // 60 sliced batches of every type: thousands of node numbers in one put.
    const many = Array.from({ length: 60 }, (_, i) => table.batches[0].slice(i % 7, 20 + (i % 11)))
    const uri = memoryRoot('handoff-many-nodes')
    const writer = await openShardWriter(uri, {
      schema: table.schema,
      config: { enableMemtable: false },
    })
    await writer.put(many)
    const small = table.slice(2, 5)
    await writer.put(small)
    expect(spy).toHaveBeenCalledTimes(2)
    expect(nodeNumbers[0]).toBeGreaterThan(1024)
    expect(nodeNumbers[1]).toBeLessThan(1024)
    await writer.close()
    expect(canonical(await readBack(uri, writer.shardId, 1))).toBe(canonical(new Table(many)))
    expect(canonical(await readBack(uri, writer.shardId, 2))).toBe(canonical(small))
  })

  it('batches built by apache-arrow 17 are handed over by structure', async () => {
    const spy = vi.spyOn(NativeShardWriter.prototype, 'putBuffers')
    const ids = arrow17.vectorFromArray([1n, 2n, null, 4n], new arrow17.Int64())
    const names = arrow17.vectorFromArray(['a', null, 'ccc', 'dd'], new arrow17.Utf8())
    const vectors = arrow17.vectorFromArray(
      [[1, 2], [3, 4], null, [5, 6]].map((v) => (v ? Float32Array.from(v) : null)),
      new arrow17.FixedSizeList(2, new arrow17.Field('item', new arrow17.Float32(), true)),
    )
    const foreign = new arrow17.Table({ id: ids, name: names, vector: vectors }).slice(1)
    const schema = new Schema([
      new Field('id', new Int64(), true),
      new Field('name', new Utf8(), true),
      new Field('vector', new FixedSizeList(2, new Field('item', new Float32(), true)), true),
    ])
    const uri = memoryRoot('handoff-arrow17')
    const writer = await openShardWriter(uri, { schema, config: { enableMemtable: false } })
    await writer.put(foreign as unknown as Table)
    expect(spy).toHaveBeenCalledTimes(1)
    await writer.close()
    const back = await readBack(uri, writer.shardId, 1)
    expect(canonical(back)).toBe(canonical(foreign as unknown as Table))
  })

  it('put copies the buffers before it returns: later writes to them change nothing', async () => {
    const values = new Float64Array([1.5, 2.5, 3.5])
    const schema = new Schema([new Field('x', new Float64(), false)])
    const batch = batchOf(schema, vectorFromArray(Array.from(values), new Float64()).data[0])
    const uri = memoryRoot('handoff-copy')
    const writer = await openShardWriter(uri, { schema, config: { enableMemtable: false } })
    const column = batch.getChild('x')
    if (!column) throw new Error('no column')
    const pending = writer.put(new Table(schema, [batch]))
    // Scribble over the caller's buffer while the put is in flight.
    ;(column.data[0].values as Float64Array).fill(-1)
    await pending
    await writer.close()
    const back = await readBack(uri, writer.shardId, 1)
    expect(Array.from(back.getChild('x')?.toArray() as Float64Array)).toEqual([1.5, 2.5, 3.5])
  })

  it('deletes hand over their key columns too', async () => {
    const spy = vi.spyOn(NativeShardWriter.prototype, 'deleteBuffers')
    const schema = new Schema([
      new Field('id', new Int64(), false),
      new Field('name', new Utf8(), true),
    ])
    const uri = memoryRoot('handoff-delete')
    const writer = await openShardWriter(uri, { schema, primaryKey: ['id'] })
    await writer.put(
      batchOf(
        schema,
        vectorFromArray([1n, 2n, 3n], new Int64()).data[0],
        vectorFromArray(['a', 'b', 'c'], new Utf8()).data[0],
      ),
    )
    const keySchema = new Schema([new Field('id', new Int64(), false)])
    await writer.delete(batchOf(keySchema, vectorFromArray([2n], new Int64()).data[0]))
    expect(spy).toHaveBeenCalledTimes(1)
    const rows = (await writer.scan()).getChild('id')?.toArray()
    expect(Array.from(rows ?? [])).toEqual([1n, 3n])
    await writer.close()
  })
})
