// Hostile input at the TypeScript API, one table row per input: what it
// does, the MemWalError code it must produce ('OK' for input that must be
// accepted), and after every row a check that the shard it hit is still
// healthy: the same writer still accepts a durable put and every row
// acknowledged so far is there exactly once (WAL tailer, writer scan, shard
// reader). A Rust panic is never an acceptable answer, whatever its code.
//
// Rows with `bug` assert the correct behaviour of a defect this suite found
// and run as `it.fails` until the defect is fixed (then vitest reports the
// row as unexpectedly passing: drop its `bug`). MEMWAL_SHOW_BUGS=1 runs them
// as plain tests, to see how they fail.
//
// The storage rows write WAL entries and manifests with `fs`, so they use a
// local root only; everything else goes through the public API.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join, relative } from 'node:path'
import {
  Bool,
  type Data,
  Decimal,
  Dictionary,
  Field,
  Int32,
  Int64,
  IntervalMonthDayNano,
  LargeBinary,
  LargeUtf8,
  List,
  makeData,
  Null,
  RecordBatch,
  Schema,
  SparseUnion,
  Struct,
  Table,
  tableFromArrays,
  tableFromJSON,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  MemWalError,
  type MemWalErrorCode,
  type OpenShardWriterOptions,
  openShardReader,
  openShardWriter,
  openWalTailer,
  type ShardWriter,
  ShardWriterConfig,
  type ShardWriterOptions,
} from '../ts/index.js'
import { ID_NAME_SCHEMA, memoryRoot, tempRoot } from './helpers.js'

type Expected = MemWalErrorCode | 'OK'

const SHOW_BUGS = process.env.MEMWAL_SHOW_BUGS === '1'

interface Row<C> {
  name: string
  act: (ctx: C) => unknown
  expect: Expected
  /** The error message must match this too. */
  message?: RegExp
  /** A defect this row exposes: the row asserts the fix and runs as `it.fails`. */
  bug?: string
}

/** Run `act` and check its outcome against the row. */
async function checkOutcome(row: { expect: Expected; message?: RegExp }, act: () => unknown) {
  let caught: unknown
  try {
    await act()
  } catch (error) {
    caught = error
  }
  if (row.expect === 'OK') {
    expect(caught, `expected success, got ${String(caught)}`).toBeUndefined()
    return
  }
  expect(caught, `expected a ${row.expect} MemWalError, got ${String(caught)}`).toBeInstanceOf(
    MemWalError,
  )
  const error = caught as MemWalError
  expect(error.code, error.message).toBe(row.expect)
  expect(error.message).not.toMatch(/panic/i)
  if (row.message) expect(error.message).toMatch(row.message)
}

/** Register one `it` per row: the outcome, then the context's health check. */
function runRows<C>(
  rows: Row<C>[],
  context: () => C | Promise<C>,
  healthy: (ctx: C, row: Row<C>) => Promise<void>,
) {
  for (const row of rows) {
    const test = row.bug && !SHOW_BUGS ? it.fails : it
    const label = `${row.name} → ${row.expect}${row.bug ? ` (known bug: ${row.bug})` : ''}`
    test(label, async () => {
      const ctx = await context()
      await checkOutcome(row, () => row.act(ctx))
      await healthy(ctx, row)
    })
  }
}

// --- Arrow builders ---------------------------------------------------------------------------

const SCHEMA = ID_NAME_SCHEMA

/** Rows of `id int64 not null, name utf8` with the given ids and names. */
function rowsOf(ids: readonly bigint[], names?: readonly (string | null)[]): Table {
  const id = vectorFromArray([...ids], new Int64())
  const name = vectorFromArray(names ? [...names] : ids.map((i) => `row-${i}`), new Utf8())
  return new Table([batchOf(SCHEMA, ids.length, [id.data[0], name.data[0]])])
}

/** A RecordBatch from hand-built column Data, no checks by apache-arrow. */
function batchOf(schema: Schema, length: number, children: Data[]): RecordBatch {
  const data = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children })
  return new RecordBatch(schema, data)
}

function int64Data(values: readonly bigint[], length = values.length): Data<Int64> {
  return makeData({ type: new Int64(), length, nullCount: 0, data: BigInt64Array.from(values) })
}

function utf8Data(offsets: readonly number[], bytes: readonly number[]): Data<Utf8> {
  return makeData({
    type: new Utf8(),
    length: offsets.length - 1,
    nullCount: 0,
    valueOffsets: Int32Array.from(offsets),
    data: Uint8Array.from(bytes),
  })
}

function idsOfTable(table: Table): number[] {
  return Array.from(table.getChild('id')?.toArray() ?? [], (v) => Number(v))
}

const sorted = (ids: readonly (number | bigint)[]) =>
  ids.map((v) => Number(v)).sort((a, b) => a - b)

// --- the shard under attack --------------------------------------------------------------------

const MEMTABLE = { maxWalFlushIntervalMs: null, statsLogIntervalMs: null } as const

/**
 * A writer and everything it acknowledged. `healthy()` is the check after
 * every row: the writer takes a durable put, its new WAL entries hold exactly
 * the rows acknowledged since the last check (nothing re-appended), and a
 * fresh shard reader sees every acknowledged row exactly once.
 */
class Victim {
  readonly acked: bigint[] = []
  #nextId = 0n
  #walPosition = 1
  readonly #walIds: bigint[] = []
  #checks = 0

  private constructor(
    readonly root: string,
    readonly writer: ShardWriter,
  ) {}

  static async open(root: string, options: OpenShardWriterOptions): Promise<Victim> {
    return new Victim(root, await openShardWriter(root, options))
  }

  get shardId(): string {
    return this.writer.shardId
  }

  /** Ids nobody has used yet. */
  take(n: number): bigint[] {
    return Array.from({ length: n }, () => this.#nextId++)
  }

  /** A durable put of `n` fresh rows, recorded as acknowledged. */
  async put(n = 1): Promise<void> {
    const ids = this.take(n)
    await this.writer.put(rowsOf(ids))
    this.acked.push(...ids)
  }

  async healthy(): Promise<void> {
    await this.writer.checkFenced()
    await this.put(1)
    if (++this.#checks % 40 === 5 && this.writer.config.enableMemtable) {
      // Move some rows into Parquet generations so the reader merges both.
      await this.writer.forceSealActive()
      await this.writer.waitForFlushDrain()
    }
    await this.checkStored()
  }

  /** Every acknowledged row exactly once in the WAL and in a fresh snapshot. */
  async checkStored(): Promise<void> {
    const tailer = await openWalTailer(this.root, this.shardId)
    for (;;) {
      const entry = await tailer.readEntry(this.#walPosition)
      if (entry === null) break
      this.#walPosition++
      for (const batch of entry.batches) {
        this.#walIds.push(...Array.from(batch.getChild('id')?.toArray() ?? [], BigInt))
      }
    }
    expect(sorted(this.#walIds), 'WAL rows').toEqual(sorted(this.acked))
    const reader = await openShardReader(this.root, this.shardId)
    expect(sorted(idsOfTable(await reader.scan({ columns: ['id'] }))), 'reader rows').toEqual(
      sorted(this.acked),
    )
    if (this.writer.isOpen() && this.writer.config.enableMemtable) {
      const unflushed = idsOfTable(await this.writer.scan({ columns: ['id'] }))
      expect(new Set(unflushed).size, 'writer scan has no duplicates').toBe(unflushed.length)
      const acked = new Set(this.acked.map(Number))
      expect(unflushed.every((id) => acked.has(id))).toBe(true)
    }
  }
}

const local = tempRoot()
let keyed: Victim // primary key `id`, MemTable mode, local root
let plain: Victim // no primary key, WAL-only mode, memory root

beforeAll(async () => {
  keyed = await Victim.open(local.uri, { schema: SCHEMA, primaryKey: ['id'], config: MEMTABLE })
  await keyed.put(3)
  plain = await Victim.open(memoryRoot('hostile-plain'), {
    schema: SCHEMA,
    config: { enableMemtable: false, maxWalFlushIntervalMs: null },
  })
  await plain.put(3)
})

afterAll(async () => {
  try {
    await keyed?.writer.close()
    await plain?.writer.close()
  } finally {
    local.cleanup()
  }
})

const victims = () => ({ keyed, plain })
// Rows aim at the keyed victim, except deletes, which also hit the plain one.
const keyedHealthy = (ctx: { keyed: Victim }) => ctx.keyed.healthy()
const bothHealthy = async (ctx: { keyed: Victim; plain: Victim }) => {
  await ctx.keyed.healthy()
  await ctx.plain.healthy()
}

// --- put ---------------------------------------------------------------------------------------

type Ctx = { keyed: Victim; plain: Victim }

/** Put rows built by `build(ids)` and record them as acknowledged if the put resolves. */
async function putFresh(v: Victim, n: number, build: (ids: bigint[]) => unknown): Promise<void> {
  const ids = v.take(n)
  await v.writer.put(build(ids) as Table)
  v.acked.push(...ids)
}

/** A positive put whose stored rows must read back exactly as `table` holds them. */
async function roundTrip(v: Victim, table: Table | RecordBatch | RecordBatch[]): Promise<void> {
  const batches = Array.isArray(table) ? table : table instanceof Table ? table.batches : [table]
  const expected = batches.flatMap((b) =>
    b.toArray().map((r) => [Number(r.id), r.name === null ? null : String(r.name)]),
  )
  await v.writer.put(table)
  v.acked.push(...expected.map(([id]) => BigInt(id as number)))
  const ids = expected.map(([id]) => id as number)
  const filter = `id IN (${ids.join(', ')})`
  const pairs = (t: Table) =>
    t
      .toArray()
      .map((r) => [Number(r.id), r.name === null ? null : String(r.name)])
      .sort((a, b) => (a[0] as number) - (b[0] as number))
  const byId = [...expected].sort((a, b) => (a[0] as number) - (b[0] as number))
  expect(pairs(await v.writer.scan({ filter }))).toEqual(byId)
  const reader = await openShardReader(v.root, v.shardId)
  expect(pairs(await reader.scan({ filter }))).toEqual(byId)
}

const PUT_ROWS: Row<Ctx>[] = [
  // wrong column types
  {
    name: 'id typed Int32 instead of Int64',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) => {
        const schema = new Schema([new Field('id', new Int32(), false), SCHEMA.fields[1]])
        const id = makeData({
          type: new Int32(),
          length: 1,
          nullCount: 0,
          data: Int32Array.from(ids.map(Number)),
        })
        return batchOf(schema, 1, [id, utf8Data([0, 1], [0x78])])
      }),
    expect: 'SCHEMA_MISMATCH',
    message: /'id'/,
  },
  // (Dictionary-encoded strings and LargeUtf8 are converted: see user-built-data.test.ts.)
  {
    name: 'name a dictionary of numbers where the schema says Utf8',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) => {
        const type = new Dictionary(new Int32(), new Int32())
        const schema = new Schema([SCHEMA.fields[0], new Field('name', type, true)])
        return batchOf(schema, 1, [int64Data(ids), vectorFromArray([7], type).data[0]])
      }),
    expect: 'SCHEMA_MISMATCH',
    message: /Dictionary/,
  },
  {
    name: 'name typed LargeBinary (bytes are not strings)',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) => {
        const schema = new Schema([
          new Field('id', new Int64(), false),
          new Field('name', new LargeBinary(), true),
        ])
        const name = vectorFromArray([Uint8Array.of(0x78)], new LargeBinary()).data[0]
        return batchOf(schema, 1, [int64Data(ids), name])
      }),
    expect: 'SCHEMA_MISMATCH',
    message: /LargeBinary/,
  },
  // nested types not in the schema
  {
    name: 'name is a struct (nested type not in the schema)',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) =>
        tableFromArrays({ id: BigInt64Array.from(ids), name: [{ first: 'a' }] } as never),
      ),
    expect: 'SCHEMA_MISMATCH',
    message: /Struct/,
  },
  {
    name: 'an extra list<int32> column',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) => {
        const listType = new List(new Field('item', new Int32(), true))
        const schema = new Schema([...SCHEMA.fields, new Field('tags', listType, true)])
        const tags = vectorFromArray([[1, 2]], listType).data[0]
        return batchOf(schema, 1, [...rowsOf(ids).batches[0].data.children, tags])
      }),
    expect: 'SCHEMA_MISMATCH',
    message: /tags/,
  },
  // missing, extra and reordered columns
  {
    name: 'columns in another order (name, id)',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) => {
        const schema = new Schema([SCHEMA.fields[1], SCHEMA.fields[0]])
        return batchOf(schema, 1, [utf8Data([0, 1], [0x78]), int64Data(ids)])
      }),
    expect: 'SCHEMA_MISMATCH',
  },
  {
    name: 'a _tombstone column smuggled into a put (must not delete anything)',
    act: ({ keyed }) =>
      putFresh(keyed, 1, () => {
        const schema = new Schema([...SCHEMA.fields, new Field('_tombstone', new Bool(), false)])
        const victimRows = rowsOf([0n]).batches[0].data.children
        return batchOf(schema, 1, [...victimRows, vectorFromArray([true], new Bool()).data[0]])
      }),
    expect: 'SCHEMA_MISMATCH',
    message: /_tombstone/,
  },
  {
    name: 'the second batch of a put lacks the name column (the first must not land)',
    act: ({ keyed }) =>
      putFresh(keyed, 2, (ids) => [
        rowsOf([ids[0]]).batches[0],
        tableFromArrays({ id: BigInt64Array.from([ids[1]]) }).batches[0],
      ]),
    expect: 'SCHEMA_MISMATCH',
    message: /Batch 1/,
  },
  // nulls in a non-nullable field
  {
    name: 'id declared non-nullable but its validity bitmap marks a null',
    act: ({ keyed }) =>
      putFresh(keyed, 2, (ids) => {
        const id = makeData({
          type: new Int64(),
          length: 2,
          nullCount: 1,
          data: BigInt64Array.from(ids),
          nullBitmap: Uint8Array.from([0b01]),
        })
        return batchOf(SCHEMA, 2, [id, utf8Data([0, 1, 2], [0x61, 0x62])])
      }),
    expect: 'INVALID_INPUT',
    message: /non-nullable/,
  },
  // empty puts
  { name: 'put([])', act: ({ keyed }) => keyed.writer.put([]), expect: 'INVALID_INPUT' },
  {
    name: 'a Table with no batches at all',
    act: ({ keyed }) => keyed.writer.put(new Table(SCHEMA)),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'a 0-row RecordBatch built with makeData',
    act: ({ keyed }) => keyed.writer.put(batchOf(SCHEMA, 0, [int64Data([]), utf8Data([0], [])])),
    expect: 'INVALID_INPUT',
    message: /Batch 0 is empty/,
  },
  // not a batch at all
  {
    name: 'put(null)',
    act: ({ keyed }) => keyed.writer.put(null as never),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'put(undefined)',
    act: ({ keyed }) => keyed.writer.put(undefined as never),
    expect: 'INVALID_INPUT',
  },
  { name: 'put(42)', act: ({ keyed }) => keyed.writer.put(42 as never), expect: 'INVALID_INPUT' },
  {
    name: "put('id,name\\n1,a')",
    act: ({ keyed }) => keyed.writer.put('id,name\n1,a' as never),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'a plain object with table-like keys',
    act: ({ keyed }) => keyed.writer.put({ batches: 'x', schema: {} } as never),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'the Schema instead of data',
    act: ({ keyed }) => keyed.writer.put(SCHEMA as never),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'a batch list holding null',
    act: ({ keyed }) => keyed.writer.put([rowsOf([0n]).batches[0], null] as never),
    expect: 'INVALID_INPUT',
    message: /Element 1/,
  },
  {
    name: 'an object shaped like a RecordBatch with a fake schema',
    act: ({ keyed }) => keyed.writer.put({ schema: {}, data: {}, numRows: 1 } as never),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'an object with the real schema but garbage column data',
    act: ({ keyed }) =>
      keyed.writer.put({ schema: SCHEMA, data: { children: [{}] }, numRows: 1 } as never),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'a Table whose batches are empty objects',
    act: ({ keyed }) => keyed.writer.put({ schema: SCHEMA, batches: [{}] } as never),
    expect: 'INVALID_INPUT',
  },
  // buffers that lie
  {
    name: 'columns of different lengths (id 3 rows, name 5, batch 5)',
    act: ({ keyed }) =>
      putFresh(keyed, 3, (ids) =>
        batchOf(SCHEMA, 5, [
          int64Data(ids),
          vectorFromArray(['a', 'b', 'c', 'd', 'e'], new Utf8()).data[0],
        ]),
      ),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'an int64 buffer shorter than the row count',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) =>
        batchOf(SCHEMA, 4, [int64Data(ids, 4), utf8Data([0, 1, 2, 3, 4], [97, 98, 99, 100])]),
      ),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'invalid UTF-8 (0xff 0xfe) inside a utf8 column',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) =>
        batchOf(SCHEMA, 1, [int64Data(ids), utf8Data([0, 2], [0xff, 0xfe])]),
      ),
    expect: 'INVALID_INPUT',
    message: /UTF-?8/i,
  },
  {
    name: 'a truncated multi-byte UTF-8 sequence (first 2 bytes of €)',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) =>
        batchOf(SCHEMA, 1, [int64Data(ids), utf8Data([0, 2], [0xe2, 0x82])]),
      ),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'utf8 offsets pointing past the end of the data',
    act: ({ keyed }) =>
      putFresh(keyed, 1, (ids) =>
        batchOf(SCHEMA, 1, [int64Data(ids), utf8Data([0, 1000], [65, 66])]),
      ),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'decreasing utf8 offsets',
    act: ({ keyed }) =>
      putFresh(keyed, 2, (ids) =>
        batchOf(SCHEMA, 2, [int64Data(ids), utf8Data([0, 2, 1], [65, 66])]),
      ),
    expect: 'INVALID_INPUT',
  },
  // what the API allows: Table, RecordBatch, batch lists, slices
  {
    name: 'a RecordBatch rather than a Table',
    act: ({ keyed }) => roundTrip(keyed, rowsOf(keyed.take(2)).batches[0]),
    expect: 'OK',
  },
  {
    name: 'batches of two different tables in one put',
    act: ({ keyed }) =>
      roundTrip(keyed, [...rowsOf(keyed.take(2)).batches, ...rowsOf(keyed.take(3)).batches]),
    expect: 'OK',
  },
  {
    name: 'a Table sliced in the middle, nulls at odd offsets',
    act: ({ keyed }) => {
      const ids = keyed.take(11)
      const names = ids.map((id, i) => (i % 3 === 1 ? null : `slice-${id}-${'é'.repeat(i)}`))
      const table = rowsOf(ids, names).slice(3, 9)
      expect(table.batches[0].data.children[1].offset).toBe(3)
      return roundTrip(keyed, table)
    },
    expect: 'OK',
  },
  {
    name: 'a single sliced RecordBatch (offset 1, 1 row)',
    act: ({ keyed }) =>
      roundTrip(keyed, rowsOf(keyed.take(3), ['a', null, 'c']).batches[0].slice(1, 2)),
    expect: 'OK',
  },
  {
    name: 'a 64 MiB utf8 value (round-trips through WAL, scan, reader and tailer)',
    act: async () => {
      const huge = `${'x'.repeat(64 * 1024 * 1024 - 3)}€` // 64 MiB of UTF-8
      const root = memoryRoot('hostile-huge')
      const writer = await openShardWriter(root, { schema: SCHEMA, config: MEMTABLE })
      await writer.put(rowsOf([1n], [huge]))
      const check = (name: unknown) => {
        expect(typeof name).toBe('string')
        expect((name as string).length).toBe(huge.length)
        expect(name === huge).toBe(true)
      }
      check((await writer.scan()).get(0)?.name)
      await writer.close()
      check((await (await openShardReader(root, writer.shardId)).scan()).get(0)?.name)
      const entry = await (await openWalTailer(root, writer.shardId)).readEntry(1)
      check(entry?.batches[0].get(0)?.name)
    },
    expect: 'OK',
  },
]

// --- types and values the WAL decoder or the flush cannot read back ---------------------------

const WAL_ONLY = { enableMemtable: false, maxWalFlushIntervalMs: null, statsLogIntervalMs: null }

/** An `id int64` column plus `extra` as the second column. */
function withId(extra: Field): Schema {
  return new Schema([new Field('id', new Int64(), false), extra])
}

/** One batch of `schema`: ids 0.., then `column`. */
function idAnd(schema: Schema, column: Data): RecordBatch {
  return batchOf(schema, column.length, [
    int64Data(Array.from({ length: column.length }, (_, i) => BigInt(i))),
    column,
  ])
}

/**
 * Put `bad` on a fresh shard of `schema`, then prove the shard healthy
 * whatever happened: a put of `good` is acknowledged, flushed (MemTable
 * mode) and closed, a reader sees exactly the acknowledged rows, and the
 * shard reopens. Rethrows the refusal of `bad`, if any.
 */
async function onOwnShard(
  schema: Schema,
  bad: () => RecordBatch | Table,
  good: () => RecordBatch | Table,
  config: Partial<ShardWriterOptions> = MEMTABLE,
): Promise<void> {
  const root = memoryRoot('hostile-types')
  const writer = await openShardWriter(root, { schema, config })
  let refusal: unknown
  let rows = 0
  try {
    const batch = bad()
    await writer.put(batch)
    rows += batch.numRows
  } catch (error) {
    refusal = error
  }
  const batch = good()
  await writer.put(batch)
  rows += batch.numRows
  if (config.enableMemtable !== false) {
    await writer.forceSealActive()
    // A flush that keeps failing never drains: fail instead of hanging.
    let timer: NodeJS.Timeout | undefined
    const stalled = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('the flush never drained')), 10_000)
    })
    await Promise.race([writer.waitForFlushDrain(), stalled]).finally(() => clearTimeout(timer))
  }
  await writer.close()
  const reader = await openShardReader(root, writer.shardId)
  expect((await reader.scan()).numRows, 'rows the reader sees').toBe(rows)
  await (await openShardWriter(root, { schema, shardId: writer.shardId, config })).close()
  if (refusal !== undefined) throw refusal
}

/** `struct<n: Null not null>` rows; `valid` says which struct slots hold a value. */
function structOfNull(valid: boolean[]): RecordBatch {
  const child = new Field('n', new Null(), false)
  const type = new Struct([child])
  const nulls = valid.filter((v) => !v).length
  const column = makeData({
    type,
    length: valid.length,
    nullCount: nulls,
    nullBitmap: nulls
      ? Uint8Array.from([valid.reduce((b, v, i) => b | (Number(v) << i), 0)])
      : undefined,
    children: [makeData({ type: new Null(), length: valid.length })],
  })
  return idAnd(withId(new Field('s', type, true)), column)
}

/** A dictionary column of utf8 values `['a', null]`, every key 1 (the null value). */
function dictWithNullValue(nullable: boolean): RecordBatch {
  const type = new Dictionary(new Utf8(), new Int32())
  const dictionary = vectorFromArray(['a', null], new Utf8())
  const column = makeData({
    type,
    length: 2,
    nullCount: 0,
    data: Int32Array.from([1, 1]),
    dictionary,
  })
  return idAnd(withId(new Field('d', type, nullable)), column)
}

/** Decimal(scale 2, precision 9, 128 bits) values, as apache-arrow lays them out. */
function decimals(values: readonly bigint[]): RecordBatch {
  const type = new Decimal(2, 9, 128)
  const words = new Uint32Array(values.length * 4)
  values.forEach((v, i) => {
    const u = BigInt.asUintN(128, v)
    for (let w = 0; w < 4; w++) words[i * 4 + w] = Number((u >> BigInt(32 * w)) & 0xffffffffn)
  })
  const column = makeData({ type, length: values.length, nullCount: 0, data: words })
  return idAnd(withId(new Field('price', type, true)), column)
}

/** `list<item: Null not null>` rows of `lengths` items each. */
function listOfNull(lengths: number[]): RecordBatch {
  const type = new List(new Field('item', new Null(), false))
  const offsets = Int32Array.from([
    0,
    ...lengths.map((_, i) => lengths.slice(0, i + 1).reduce((a, b) => a + b, 0)),
  ])
  const items = offsets[offsets.length - 1]
  const column = makeData({
    type,
    length: lengths.length,
    nullCount: 0,
    valueOffsets: offsets,
    child: makeData({ type: new Null(), length: items }),
  })
  return idAnd(withId(new Field('l', type, false)), column)
}

const openRefused = (schema: Schema, config: Partial<ShardWriterOptions>) =>
  openShardWriter(memoryRoot('hostile-open-types'), { schema, config })

/** Schemas the flush cannot write: refused at open, MemTable and WAL-only alike. */
const UNWRITABLE_SCHEMAS: [string, Schema, RegExp][] = [
  [
    'an empty struct (tableFromJSON of { s: { n: null } }...)',
    withId(new Field('s', new Struct([]), true)),
    /'s'/,
  ],
  ['a non-nullable Null column', withId(new Field('n', new Null(), false)), /'n'/],
  [
    'a sparse union',
    withId(
      new Field(
        'u',
        new SparseUnion(
          [0, 1],
          [new Field('a', new Int32(), true), new Field('b', new Utf8(), true)],
        ),
        true,
      ),
    ),
    /'u'/,
  ],
  [
    'an Interval(MonthDayNano) column',
    withId(new Field('i', new IntervalMonthDayNano(), true)),
    /'i'/,
  ],
  [
    'an Interval(MonthDayNano) inside a struct',
    withId(new Field('s', new Struct([new Field('i', new IntervalMonthDayNano(), true)]), true)),
    /'s\.i'/,
  ],
  ['a decimal with a negative scale', withId(new Field('d', new Decimal(-2, 9, 128), true)), /'d'/],
]

const TYPE_ROWS: Row<Ctx>[] = [
  ...UNWRITABLE_SCHEMAS.flatMap(([what, schema, message]): Row<Ctx>[] => [
    {
      name: `open with ${what}`,
      act: () => openRefused(schema, MEMTABLE),
      expect: 'INVALID_INPUT',
      message,
    },
    {
      name: `open with ${what}, WAL-only`,
      act: () => openRefused(schema, WAL_ONLY),
      expect: 'INVALID_INPUT',
      message,
    },
  ]),
  {
    name: "the issue's empty struct: tableFromJSON([{ s: { n: null } }]) is refused at open",
    act: () => {
      const table = tableFromJSON([{ s: { n: null } }])
      return openRefused(table.schema, MEMTABLE)
    },
    expect: 'INVALID_INPUT',
  },
  // non-nullable children with unmasked nulls (would decode as CORRUPT later)
  ...[MEMTABLE, WAL_ONLY].map(
    (config): Row<Ctx> => ({
      name: `struct<n: Null not null> with a valid slot${config === WAL_ONLY ? ', WAL-only' : ''}`,
      act: () =>
        onOwnShard(
          structOfNull([true]).schema,
          () => structOfNull([false, true]),
          () => structOfNull([false]),
          config,
        ),
      expect: 'INVALID_INPUT',
      message: /'s\.n' at row 1/,
    }),
  ),
  {
    name: 'struct<n: Null not null> whose slots are all null round-trips',
    act: () =>
      onOwnShard(
        structOfNull([false]).schema,
        () => structOfNull([false, false]),
        () => structOfNull([false]),
      ),
    expect: 'OK',
  },
  {
    name: 'list<item: Null not null> holding an item',
    act: () =>
      onOwnShard(
        listOfNull([0]).schema,
        () => listOfNull([0, 2]),
        () => listOfNull([0]),
      ),
    expect: 'INVALID_INPUT',
    message: /'l\.item' at list item 0/,
  },
  {
    name: 'a non-nullable dictionary whose keys point at a null value',
    act: () =>
      onOwnShard(
        dictWithNullValue(false).schema,
        () => dictWithNullValue(false),
        () =>
          idAnd(
            dictWithNullValue(false).schema,
            makeData({
              type: new Dictionary(new Utf8(), new Int32()),
              length: 1,
              nullCount: 0,
              data: Int32Array.from([0]),
              dictionary: vectorFromArray(['a'], new Utf8()),
            }),
          ),
      ),
    expect: 'INVALID_INPUT',
    message: /'d' at row 0/,
  },
  {
    name: 'a nullable dictionary with a null value round-trips',
    act: () =>
      onOwnShard(
        dictWithNullValue(true).schema,
        () => dictWithNullValue(true),
        () => dictWithNullValue(true),
      ),
    expect: 'OK',
  },
  // decimals beyond their precision (were truncated at flush)
  {
    name: 'Decimal(scale 2, precision 9) holding 5,000,000,000',
    act: () =>
      onOwnShard(
        decimals([1n]).schema,
        () => decimals([1n, 5_000_000_000n]),
        () => decimals([1n]),
      ),
    expect: 'INVALID_INPUT',
    message: /'price' at row 1 holds 50000000\.00/,
  },
  {
    name: 'Decimal(scale 2, precision 9) at its limits round-trips through a flush unchanged',
    act: async () => {
      const values = [999_999_999n, -999_999_999n, 0n]
      const root = memoryRoot('hostile-decimal')
      const writer = await openShardWriter(root, {
        schema: decimals(values).schema,
        config: MEMTABLE,
      })
      await writer.put(decimals(values))
      await writer.forceSealActive()
      await writer.waitForFlushDrain()
      await writer.close()
      const table = await (await openShardReader(root, writer.shardId)).scan()
      const got = Array.from(table.getChild('price') ?? [], (v) => {
        const w = v as Uint32Array
        return BigInt.asIntN(
          128,
          [0, 1, 2, 3].reduce((n, i) => n | (BigInt(w[i]) << BigInt(32 * i)), 0n),
        )
      })
      expect(got).toEqual(values)
    },
    expect: 'OK',
  },
  // null primary-key values (collapsed into one undeletable row)
  {
    name: 'null values in a nullable primary-key column',
    act: async () => {
      const key = new Field('k', new Int64(), true)
      const writer = await openShardWriter(memoryRoot('hostile-null-key'), {
        schema: new Schema([key]),
        primaryKey: ['k'],
        config: MEMTABLE,
      })
      try {
        await writer.put(new Table({ k: vectorFromArray([1n, null, 2n], new Int64()) }))
      } finally {
        await writer.close()
      }
    },
    expect: 'INVALID_INPUT',
    message: /'k' is null at row 1/,
  },
]

// --- delete ------------------------------------------------------------------------------------

const DELETE_ROWS: Row<Ctx>[] = [
  {
    name: 'delete keys typed Float64',
    act: ({ keyed }) => keyed.writer.delete(tableFromArrays({ id: Float64Array.from([0]) })),
    expect: 'SCHEMA_MISMATCH',
  },
  {
    name: 'delete keys given as strings',
    act: ({ keyed }) => keyed.writer.delete(new Table({ id: vectorFromArray(['0'], new Utf8()) })),
    expect: 'SCHEMA_MISMATCH',
  },
  {
    name: 'delete keys with a non-key column (whole rows)',
    act: ({ keyed }) => keyed.writer.delete(rowsOf([0n])),
    expect: 'INVALID_INPUT',
    message: /not part of the primary key/,
  },
  {
    name: 'delete keys without the key column',
    act: ({ keyed }) =>
      keyed.writer.delete(new Table({ name: vectorFromArray(['row-0'], new Utf8()) })),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'delete a null key',
    act: ({ keyed }) =>
      keyed.writer.delete(new Table({ id: vectorFromArray([null, 0n], new Int64()) })),
    expect: 'INVALID_INPUT',
    message: /null at row 0/,
  },
  {
    name: 'delete on a shard whose non-nullable struct has a non-nullable child',
    act: async () => {
      const inner = new Struct([new Field('b', new Utf8(), false)])
      const schema = new Schema([new Field('id', new Int64(), false), new Field('s', inner, false)])
      const root = memoryRoot('hostile-delete-nested')
      const writer = await openShardWriter(root, { schema, primaryKey: ['id'], config: MEMTABLE })
      const s = makeData({
        type: inner,
        length: 1,
        nullCount: 0,
        children: [utf8Data([0, 1], [0x78])],
      })
      await writer.put(batchOf(schema, 1, [int64Data([1n]), s]))
      await writer.delete(new Table({ id: vectorFromArray([1n], new Int64()) }))
      await writer.close()
      expect((await (await openShardReader(root, writer.shardId)).scan()).numRows).toBe(0)
    },
    expect: 'OK',
  },
  {
    name: 'delete(null)',
    act: ({ keyed }) => keyed.writer.delete(null as never),
    expect: 'INVALID_INPUT',
  },
  { name: 'delete([])', act: ({ keyed }) => keyed.writer.delete([]), expect: 'INVALID_INPUT' },
  {
    name: 'delete on a WAL-only writer without a primary key',
    act: ({ plain }) => plain.writer.delete(tableFromArrays({ id: BigInt64Array.from([0n]) })),
    expect: 'INVALID_INPUT',
  },
]

// --- scan and tailer options -------------------------------------------------------------------

const READ_ROWS: Row<Ctx>[] = [
  {
    name: 'scan filter nested 10000 parentheses deep',
    act: ({ keyed }) =>
      keyed.writer.scan({ filter: `${'('.repeat(10_000)}id = 1${')'.repeat(10_000)}` }),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'shard reader filter of 50000 ORs',
    act: async ({ keyed }) =>
      (await openShardReader(keyed.root, keyed.shardId)).scan({
        filter: Array.from({ length: 50_000 }, (_, i) => `id = ${i}`).join(' OR '),
      }),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'scan filter with a second SQL statement',
    act: ({ keyed }) => keyed.writer.scan({ filter: 'id = 1; DROP TABLE events' }),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'scan limit Infinity',
    act: ({ keyed }) => keyed.writer.scan({ limit: Number.POSITIVE_INFINITY }),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'scan columns as a string',
    act: ({ keyed }) => keyed.writer.scan({ columns: 'id' as never }),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'unknown scan option',
    act: ({ keyed }) => keyed.writer.scan({ where: 'id = 1' } as never),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'tailer.readEntry(NaN)',
    act: async ({ keyed }) =>
      (await openWalTailer(keyed.root, keyed.shardId)).readEntry(Number.NaN),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'tailer.readEntry(2 ** 53)',
    act: async ({ keyed }) => (await openWalTailer(keyed.root, keyed.shardId)).readEntry(2 ** 53),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'tailer.follow from 1.5',
    act: async ({ keyed }) =>
      (await openWalTailer(keyed.root, keyed.shardId)).follow({ from: 1.5 }).next(),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'tailer.follow pollIntervalMs NaN',
    act: async ({ keyed }) =>
      (await openWalTailer(keyed.root, keyed.shardId))
        .follow({ pollIntervalMs: Number.NaN })
        .next(),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'unknown follow option',
    act: async ({ keyed }) =>
      (await openWalTailer(keyed.root, keyed.shardId)).follow({ until: 3 } as never).next(),
    expect: 'INVALID_INPUT',
  },
]

// --- opening: roots, shard ids, options --------------------------------------------------------

/** The victim's schema with `name` as LargeUtf8. */
const OTHER_SCHEMA = new Schema([
  new Field('id', new Int64(), false),
  new Field('name', new LargeUtf8(), true),
])

/** Open a writer on the keyed victim's shard: a doomed open must not fence it. */
const openOnVictim = (v: Victim, options: Partial<OpenShardWriterOptions>, root = v.root) =>
  openShardWriter(root, { schema: SCHEMA, shardId: v.shardId, config: MEMTABLE, ...options })

/** Open a writer on a fresh shard, put a row and close it. */
async function openPutClose(root: string, options: Partial<OpenShardWriterOptions> = {}) {
  const writer = await openShardWriter(root, { schema: SCHEMA, config: MEMTABLE, ...options })
  await writer.put(rowsOf([1n]))
  await writer.close()
  return writer
}

const OPEN_ROWS: Row<Ctx>[] = [
  // roots
  {
    name: 'ftp:// root',
    act: () => openPutClose('ftp://files.example.com/memwal'),
    expect: 'INVALID_INPUT',
    message: /Unsupported storage scheme/,
  },
  {
    name: 'http:// root',
    act: () => openPutClose('http://127.0.0.1:9/memwal'),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'https:// root for openWalTailer',
    act: ({ keyed }) => openWalTailer('https://example.com/memwal', keyed.shardId),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'empty root for openWalTailer',
    act: ({ keyed }) => openWalTailer('', keyed.shardId),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'empty root for openShardReader',
    act: ({ keyed }) => openShardReader('', keyed.shardId),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'whitespace-only root',
    act: ({ keyed }) => openOnVictim(keyed, {}, ' \t\n'),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'root with a NUL byte',
    act: ({ keyed }) => openOnVictim(keyed, {}, `${keyed.root}\0/x`),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'file:// root climbing above /',
    act: () => openPutClose('file:///tmp/../../..'),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'file:// root with %2e%2e (an escaped ..) climbing out of its directory',
    act: async () => {
      try {
        await openPutClose(`file://${local.dir}/escaped/%2e%2e/%2E%2E/climbed`)
      } finally {
        expect(existsSync(join(local.dir, '..', 'climbed'))).toBe(false)
      }
    },
    expect: 'INVALID_INPUT',
    message: /'\.'\/'\.\.' segment/,
  },
  {
    name: 'file:// root with an escaped / inside a segment, for openShardReader',
    act: ({ keyed }) => openShardReader(`file://${local.dir}/x%2F..%2F..`, keyed.shardId),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'file:// root with a query and a fragment (would become part of the directory name)',
    act: async () => {
      try {
        await openPutClose(`file://${local.dir}/queried?x=1#y`)
      } finally {
        expect(existsSync(join(local.dir, 'queried?x=1#y'))).toBe(false)
      }
    },
    expect: 'INVALID_INPUT',
    message: /query or fragment/,
  },
  {
    name: 'file:// root with a fragment, for openWalTailer',
    act: ({ keyed }) => openWalTailer(`file://${local.dir}#frag`, keyed.shardId),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'memory:// root with a .. segment',
    act: () => openPutClose('memory://hostile/a/../../b'),
    expect: 'INVALID_INPUT',
  },
  {
    name: 's3:// root without a bucket',
    act: () => openPutClose('s3://'),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'root given as a URL object',
    act: ({ keyed }) => openOnVictim(keyed, {}, new URL(keyed.root) as never),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'relative path root (reaches the same shard as the absolute root)',
    act: async ({ keyed }) => {
      const rel = relative(process.cwd(), local.dir)
      expect(rel.startsWith('/')).toBe(false)
      const reader = await openShardReader(rel, keyed.shardId)
      expect(sorted(idsOfTable(await reader.scan({ columns: ['id'] })))).toEqual(
        sorted(keyed.acked),
      )
    },
    expect: 'OK',
  },
  {
    name: "'file:' + absolute path (one slash) must not become a relative directory named 'file:'",
    act: async () => {
      // Run from the temp dir so that the stray directory, if any, lands there.
      const cwd = process.cwd()
      process.chdir(local.dir)
      try {
        await openPutClose(`file:${local.dir}/one-slash`)
      } finally {
        process.chdir(cwd)
      }
    },
    expect: 'INVALID_INPUT',
  },
  {
    name: 'openShardReader on a local root that does not exist (creates nothing)',
    act: async ({ keyed }) => {
      const dir = join(local.dir, 'no-such-root-reader')
      try {
        await openShardReader(`file://${dir}`, keyed.shardId)
      } finally {
        expect(existsSync(dir)).toBe(false)
      }
    },
    expect: 'NOT_FOUND',
  },
  {
    name: 'openWalTailer on a local root that does not exist (creates nothing)',
    act: async ({ keyed }) => {
      const dir = join(local.dir, 'no-such-root-tailer')
      try {
        await openWalTailer(dir, keyed.shardId)
      } finally {
        expect(existsSync(dir)).toBe(false)
      }
    },
    expect: 'NOT_FOUND',
  },
  {
    name: 'openWalTailer on a shard that does not exist (as openShardReader)',
    act: ({ keyed }) => openWalTailer(keyed.root, '0a0b0c0d-0000-4000-8000-000000000001'),
    expect: 'NOT_FOUND',
  },
  // shard ids
  {
    name: 'writer shardId with a ../ suffix',
    act: ({ keyed }) => openOnVictim(keyed, { shardId: `${keyed.shardId}/../other` }),
    expect: 'INVALID_CONFIG',
  },
  {
    name: 'writer shardId given as a number',
    act: ({ keyed }) => openOnVictim(keyed, { shardId: 42 as never }),
    expect: 'INVALID_CONFIG',
  },
  {
    name: 'tailer shardId ../../etc/passwd',
    act: ({ keyed }) => openWalTailer(keyed.root, '../../etc/passwd'),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'tailer with an empty shardId',
    act: ({ keyed }) => openWalTailer(keyed.root, ''),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'reader with the nil UUID',
    act: ({ keyed }) => openShardReader(keyed.root, '00000000-0000-0000-0000-000000000000'),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'reader shardId with a path after the UUID',
    act: ({ keyed }) => openShardReader(keyed.root, `${keyed.shardId}/wal`),
    expect: 'INVALID_INPUT',
  },
  {
    name: "upper-case spelling of the victim's shard id reaches the same shard",
    act: async ({ keyed }) => {
      const reader = await openShardReader(keyed.root, keyed.shardId.toUpperCase())
      expect(reader.shardId).toBe(keyed.shardId)
      expect(sorted(idsOfTable(await reader.scan({ columns: ['id'] })))).toEqual(
        sorted(keyed.acked),
      )
    },
    expect: 'OK',
  },
  // options around the config
  {
    name: "unknown openShardWriter option 'primarykey'",
    act: ({ keyed }) => openOnVictim(keyed, { primarykey: ['id'] } as never),
    expect: 'INVALID_CONFIG',
  },
  {
    name: 'primaryKey given as a string',
    act: ({ keyed }) => openOnVictim(keyed, { primaryKey: 'id' as never }),
    expect: 'INVALID_INPUT',
  },
  {
    name: 'config given as a number',
    act: ({ keyed }) => openOnVictim(keyed, { config: 5 as never }),
    expect: 'INVALID_CONFIG',
  },
  {
    name: 'config given as an array',
    act: ({ keyed }) => openOnVictim(keyed, { config: [] as never }),
    expect: 'INVALID_CONFIG',
  },
  {
    name: 'config with an own __proto__ key (JSON.parse)',
    act: ({ keyed }) => openOnVictim(keyed, { config: JSON.parse('{"__proto__": {"x": 1}}') }),
    expect: 'INVALID_CONFIG',
  },
  {
    name: "config option 'constructor'",
    act: ({ keyed }) => openOnVictim(keyed, { config: { constructor: 1 } as never }),
    expect: 'INVALID_CONFIG',
  },
  {
    name: "ShardWriterConfig.with('maxWalBuffer', …)",
    act: () => ShardWriterConfig.defaults().with('maxWalBuffer' as never, 1 as never),
    expect: 'INVALID_CONFIG',
  },
  {
    name: "misspelt openWalTailer option 'storageOption' (credentials would be dropped)",
    act: ({ keyed }) =>
      openWalTailer(keyed.root, keyed.shardId, { storageOption: { region: 'x' } } as never),
    expect: 'INVALID_CONFIG',
  },
  {
    name: 'openShardReader options given as a string',
    act: ({ keyed }) => openShardReader(keyed.root, keyed.shardId, 'us-east-1' as never),
    expect: 'INVALID_CONFIG',
  },
  {
    name: 'storageOptions.endpoint given as a number',
    act: ({ keyed }) => openOnVictim(keyed, { storageOptions: { endpoint: 9000 } as never }),
    expect: 'INVALID_CONFIG',
  },
  // Data the shard already holds that the new writer could not take: refused
  // before the claim, so the victim is not fenced (its rows are unflushed, and
  // some are in generations once the health checks have flushed).
  {
    name: "another schema on the victim's shard (name as LargeUtf8)",
    act: ({ keyed }) => openOnVictim(keyed, { schema: OTHER_SCHEMA, primaryKey: ['id'] }),
    expect: 'SCHEMA_MISMATCH',
  },
  {
    name: "a WAL-only writer with another schema on the victim's shard",
    act: ({ keyed }) =>
      openOnVictim(keyed, {
        schema: OTHER_SCHEMA,
        primaryKey: ['id'],
        config: { ...MEMTABLE, enableMemtable: false },
      }),
    expect: 'SCHEMA_MISMATCH',
  },
  {
    name: "the victim's schema without its primary key",
    act: ({ keyed }) => openOnVictim(keyed, {}),
    expect: 'SCHEMA_MISMATCH',
    message: /primary key/,
  },
]

// Every option with every kind of bad value, opened on the victim's shard.
const OPTION_NAMES = Object.keys(
  ShardWriterConfig.defaults().toOptions(),
) as (keyof ShardWriterOptions)[]
const ZERO_ALLOWED = new Set(['shardSpecId', 'maxWalPersistRetries', 'walPersistRetryBaseDelayMs'])
const UPPER_LIMITS: Partial<Record<keyof ShardWriterOptions, number>> = {
  shardSpecId: 2 ** 32,
  maxMemtableBatches: 10_000_001,
  manifestScanBatchSize: 1025,
  maxWalPersistRetries: 101,
  walPersistRetryBaseDelayMs: 60_001,
}

function configRows(): Row<Ctx>[] {
  const rows: Row<Ctx>[] = []
  const bad = (name: string, label: string, value: unknown) =>
    rows.push({
      name: `config ${name} = ${label}`,
      act: ({ keyed }) => openOnVictim(keyed, { config: { ...MEMTABLE, [name]: value } }),
      expect: 'INVALID_CONFIG',
      message: new RegExp(name),
    })
  const defaults = ShardWriterConfig.defaults().toOptions()
  for (const name of OPTION_NAMES) {
    const value = defaults[name]
    if (typeof value === 'boolean') {
      bad(name, "'true'", 'true')
      bad(name, '1', 1)
      bad(name, 'null', null)
    } else if (typeof value === 'string') {
      bad(name, "'gzip'", 'gzip')
      bad(name, '1', 1)
      bad(name, 'null', null)
    } else {
      bad(name, "'10'", '10')
      bad(name, '-1', -1)
      bad(name, 'NaN', Number.NaN)
      bad(name, 'Infinity', Number.POSITIVE_INFINITY)
      bad(name, '2.5', 2.5)
      bad(name, '10n', 10n)
      bad(name, '2 ** 53', 2 ** 53)
      bad(name, 'true', true)
      if (!(name === 'maxWalFlushIntervalMs' || name === 'statsLogIntervalMs')) {
        bad(name, 'null', null)
      }
      if (!ZERO_ALLOWED.has(name)) bad(name, '0', 0)
      const limit = UPPER_LIMITS[name]
      if (limit !== undefined) bad(name, String(limit), limit)
    }
  }
  for (const name of ZERO_ALLOWED) {
    rows.push({
      name: `config ${name} = 0 is accepted`,
      act: () => openPutClose(memoryRoot('zero'), { config: { ...MEMTABLE, [name]: 0 } }),
      expect: 'OK',
    })
  }
  return rows
}

// --- after close -------------------------------------------------------------------------------

const CLOSED_ROWS: Row<Victim>[] = [
  { name: 'put after close', act: (v) => v.writer.put(rowsOf(v.take(1))), expect: 'CLOSED' },
  { name: 'put([]) after close', act: (v) => v.writer.put([]), expect: 'CLOSED' },
  { name: 'put(null) after close', act: (v) => v.writer.put(null as never), expect: 'CLOSED' },
  {
    name: 'delete after close',
    act: (v) => v.writer.delete(tableFromArrays({ id: BigInt64Array.from([0n]) })),
    expect: 'CLOSED',
  },
  { name: 'scan after close', act: (v) => v.writer.scan(), expect: 'CLOSED' },
  { name: 'forceSealActive after close', act: (v) => v.writer.forceSealActive(), expect: 'CLOSED' },
  {
    name: 'waitForFlushDrain after close',
    act: (v) => v.writer.waitForFlushDrain(),
    expect: 'CLOSED',
  },
  { name: 'memtableStats after close', act: (v) => v.writer.memtableStats(), expect: 'CLOSED' },
  { name: 'manifest after close', act: (v) => v.writer.manifest(), expect: 'CLOSED' },
  { name: 'checkFenced after close', act: (v) => v.writer.checkFenced(), expect: 'CLOSED' },
  { name: 'stats() after close', act: (v) => v.writer.stats(), expect: 'CLOSED' },
  { name: 'walStats() after close', act: (v) => v.writer.walStats(), expect: 'CLOSED' },
  { name: 'close twice', act: (v) => v.writer.close(), expect: 'OK' },
  {
    name: 'Symbol.asyncDispose after close',
    act: (v) => v.writer[Symbol.asyncDispose](),
    expect: 'OK',
  },
]

// --- close racing puts -------------------------------------------------------------------------

/**
 * `puts` puts racing `closes` calls of close(): every put resolves (and is
 * then durable: a fresh reader sees it exactly once) or rejects with
 * CLOSED (and is then nowhere).
 */
async function closeRace(config: Partial<ShardWriterOptions>, puts: number, closeAt: number[]) {
  const root = memoryRoot('close-race')
  const writer = await openShardWriter(root, { schema: SCHEMA, config })
  const resolved: number[] = []
  const rejected: number[] = []
  const pending: Promise<unknown>[] = []
  for (let i = 0; i < puts; i++) {
    pending.push(
      writer.put(rowsOf([BigInt(i)])).then(
        () => resolved.push(i),
        (error) => {
          expect(error).toBeInstanceOf(MemWalError)
          expect((error as MemWalError).code).toBe('CLOSED')
          rejected.push(i)
        },
      ),
    )
    for (const at of closeAt) if (at === i) pending.push(writer.close())
    if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(pending)
  expect(resolved.length + rejected.length).toBe(puts)
  expect(rejected.length).toBeGreaterThan(0)
  const reader = await openShardReader(root, writer.shardId)
  expect(sorted(idsOfTable(await reader.scan({ columns: ['id'] })))).toEqual(sorted(resolved))
  // The shard takes a new writer afterwards.
  const next = await openShardWriter(root, { schema: SCHEMA, shardId: writer.shardId, config })
  await next.put(rowsOf([BigInt(puts)]))
  await next.close()
  const after = await openShardReader(root, writer.shardId)
  expect(sorted(idsOfTable(await after.scan({ columns: ['id'] })))).toEqual(
    sorted([...resolved, puts]),
  )
}

const RACE_ROWS: Row<undefined>[] = [
  {
    name: 'three close() calls racing 60 durable puts',
    act: () => closeRace(MEMTABLE, 60, [20, 21, 40]),
    expect: 'OK',
  },
  {
    name: 'two close() calls racing 50 non-durable puts with a 1 ms flush timer',
    act: () => closeRace({ durableWrite: false, maxWalFlushIntervalMs: 1 }, 50, [25, 25]),
    expect: 'OK',
  },
  {
    name: 'close() racing 40 durable puts in WAL-only mode',
    act: () => closeRace({ enableMemtable: false, maxWalFlushIntervalMs: null }, 40, [13]),
    expect: 'OK',
  },
]

// --- damaged storage (local files) -------------------------------------------------------------

const bits = (n: bigint) => n.toString(2).padStart(64, '0').split('').reverse().join('')
const U64_MAX = 2n ** 64n - 1n

/** A WAL-only shard on the local root with entries 1 ([0, 1]) and 2 ([10, 11]). */
interface Damaged {
  shardId: string
  walDir: string
  manifestDir: string
  entry(position: number): Buffer
  writeEntry(position: number, bytes: Uint8Array): void
  manifest(version: number): Buffer
  writeManifest(version: bigint, bytes: Uint8Array): void
}

async function damagedShard(): Promise<Damaged> {
  const writer = await openShardWriter(local.uri, {
    schema: SCHEMA,
    config: { enableMemtable: false, maxWalFlushIntervalMs: null },
  })
  await writer.put(rowsOf([0n, 1n]))
  await writer.put(rowsOf([10n, 11n]))
  await writer.close()
  const shardDir = join(local.dir, '_mem_wal', writer.shardId)
  const walDir = join(shardDir, 'wal')
  const manifestDir = join(shardDir, 'manifest')
  return {
    shardId: writer.shardId,
    walDir,
    manifestDir,
    entry: (p) => readFileSync(join(walDir, `${bits(BigInt(p))}.arrow`)),
    writeEntry: (p, bytes) => writeFileSync(join(walDir, `${bits(BigInt(p))}.arrow`), bytes),
    manifest: (v) => readFileSync(join(manifestDir, `${bits(BigInt(v))}.binpb`)),
    writeManifest: (v, bytes) => writeFileSync(join(manifestDir, `${bits(v)}.binpb`), bytes),
  }
}

/** An IPC stream of `table` whose schema metadata is `metadata`. */
function entryBytes(table: Table, metadata: Record<string, string>): Uint8Array {
  const schema = new Schema(table.schema.fields, new Map(Object.entries(metadata)))
  return tableToIPC(new Table(table.batches.map((b) => new RecordBatch(schema, b.data))), 'stream')
}

/** Manifest version 1 re-labelled as `version` (a one-byte varint), plus `extra` bytes. */
function manifestV(d: Damaged, version: number, extra: number[] = []): Buffer {
  const v1 = Buffer.from(d.manifest(1))
  expect([v1[0], v1[1]]).toEqual([0x08, 0x01]) // field 1 (version) = 1
  v1[1] = version
  return Buffer.concat([v1, Buffer.from(extra)])
}

/** A protobuf varint. */
function varint(value: bigint): number[] {
  const out: number[] = []
  let v = value
  do {
    const byte = Number(v & 0x7fn)
    v >>= 7n
    out.push(v === 0n ? byte : byte | 0x80)
  } while (v !== 0n)
  return out
}

/** Entries 3–5 (copies of entry 2), then entry 4 lost: a hole below the tip. */
function holeAt4(d: Damaged): void {
  for (const p of [3, 4, 5]) d.writeEntry(p, d.entry(2))
  unlinkSync(join(d.walDir, `${bits(4n)}.arrow`))
}

/** Open a MemTable writer on the shard (it replays the WAL), put id 100 and close. */
async function openWriterOn(d: Damaged): Promise<void> {
  const writer = await openShardWriter(local.uri, {
    schema: SCHEMA,
    shardId: d.shardId,
    config: MEMTABLE,
  })
  await writer.put(rowsOf([100n]))
  await writer.close()
}

/** After a damaged-storage row: the two acknowledged entries are intact. */
async function intact(d: Damaged): Promise<void> {
  const tailer = await openWalTailer(local.uri, d.shardId)
  const ids = async (p: number) =>
    (await tailer.readEntry(p))?.batches.flatMap((b) =>
      Array.from(b.getChild('id')?.toArray() ?? [], Number),
    )
  expect(await ids(1)).toEqual([0, 1])
  expect(await ids(2)).toEqual([10, 11])
}

/** After a row that opened a writer (it put id 100): every row exactly once. */
async function usable(d: Damaged): Promise<void> {
  await intact(d)
  const reader = await openShardReader(local.uri, d.shardId)
  expect(sorted(idsOfTable(await reader.scan({ columns: ['id'] })))).toEqual([0, 1, 10, 11, 100])
}

const storageHealthy = (d: Damaged, row: Row<Damaged>) =>
  row.expect === 'OK' ? usable(d) : intact(d)

const WAL_ROWS: Row<Damaged>[] = [
  {
    name: '0-byte WAL entry 3, writer open (replay)',
    act: (d) => {
      d.writeEntry(3, new Uint8Array(0))
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
    message: /position 3/,
  },
  {
    name: 'WAL entry 3 cut in half, shard reader',
    act: async (d) => {
      const good = d.entry(1)
      d.writeEntry(3, good.subarray(0, good.length >> 1))
      return (await openShardReader(local.uri, d.shardId)).scan()
    },
    expect: 'CORRUPT',
    message: /position 3/,
  },
  {
    name: 'two streams concatenated in entry 3, tailer.follow',
    act: async (d) => {
      d.writeEntry(3, Buffer.concat([d.entry(1), d.entry(2)]))
      const seen: number[] = []
      try {
        for await (const entry of (await openWalTailer(local.uri, d.shardId)).follow()) {
          seen.push(entry.position)
        }
      } finally {
        expect(seen).toEqual([1, 2])
      }
    },
    expect: 'CORRUPT',
    message: /position 3/,
  },
  {
    name: 'valid Arrow IPC without writer_epoch, tailer.readEntry',
    act: async (d) => {
      d.writeEntry(3, tableToIPC(rowsOf([20n]), 'stream'))
      return (await openWalTailer(local.uri, d.shardId)).readEntry(3)
    },
    expect: 'CORRUPT',
    message: /writer_epoch/,
  },
  {
    name: "writer_epoch 'abc', writer open",
    act: (d) => {
      d.writeEntry(3, entryBytes(rowsOf([20n]), { writer_epoch: 'abc' }))
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
    message: /position 3/,
  },
  {
    name: "writer_epoch '-1', shard reader",
    act: async (d) => {
      d.writeEntry(3, entryBytes(rowsOf([20n]), { writer_epoch: '-1' }))
      return (await openShardReader(local.uri, d.shardId)).scan()
    },
    expect: 'CORRUPT',
    message: /position 3/,
  },
  {
    name: 'continuation marker announcing 2 GiB of metadata, tailer.readEntry',
    act: async (d) => {
      const bytes = Buffer.alloc(16)
      bytes.writeUInt32LE(0xffffffff, 0)
      bytes.writeUInt32LE(0x7fffffff, 4)
      d.writeEntry(3, bytes)
      return (await openWalTailer(local.uri, d.shardId)).readEntry(3)
    },
    expect: 'CORRUPT',
    message: /position 3/,
  },
  {
    name: '4 KiB of noise in entry 3, shard reader',
    act: async (d) => {
      d.writeEntry(
        3,
        Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff),
      )
      return (await openShardReader(local.uri, d.shardId)).scan()
    },
    expect: 'CORRUPT',
    message: /position 3/,
  },
  {
    name: 'entry 3 stamped with a newer epoch (7), writer open',
    act: (d) => {
      d.writeEntry(3, entryBytes(rowsOf([20n]), { writer_epoch: '7' }))
      return openWriterOn(d)
    },
    expect: 'FENCED',
  },
  {
    name: 'entry 3 with a different schema, writer open (replay)',
    act: (d) => {
      const other = new Table({ other: vectorFromArray(['z'], new Utf8()) })
      d.writeEntry(3, entryBytes(other, { writer_epoch: '1' }))
      return openWriterOn(d)
    },
    expect: 'SCHEMA_MISMATCH',
    message: /position 3/,
  },
  {
    name: 'a directory where WAL entry 3 would go, writer open (says what is in the way)',
    act: (d) => {
      mkdirSync(join(d.walDir, `${bits(3n)}.arrow`))
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
    message: /arrow is a directory, not a WAL entry/,
  },
  {
    name: 'a dangling symbolic link where WAL entry 3 would go, writer open',
    act: (d) => {
      symlinkSync(join(d.walDir, 'gone'), join(d.walDir, `${bits(3n)}.arrow`))
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
    message: /arrow is a dangling symbolic link/,
  },
  {
    name: 'WAL entry 4 lost while 5 exists, writer open (claims nothing, no sentinel at 6)',
    act: async (d) => {
      holeAt4(d)
      try {
        await openWriterOn(d)
      } finally {
        expect(existsSync(join(d.walDir, `${bits(6n)}.arrow`))).toBe(false)
        expect(existsSync(join(d.manifestDir, `${bits(2n)}.binpb`))).toBe(false)
      }
    },
    expect: 'CORRUPT',
    message: /position 4 is missing while position 5 exists/,
  },
  {
    name: 'WAL entry 4 lost while 5 exists, shard reader',
    act: (d) => {
      holeAt4(d)
      return openShardReader(local.uri, d.shardId)
    },
    expect: 'CORRUPT',
    message: /position 4 is missing while position 5 exists/,
  },
  {
    name: 'WAL entry 4 lost while 5 exists, tailer.follow (throws instead of waiting forever)',
    act: async (d) => {
      holeAt4(d)
      const seen: number[] = []
      try {
        for await (const entry of (await openWalTailer(local.uri, d.shardId)).follow({ from: 1 })) {
          seen.push(entry.position)
        }
      } finally {
        expect(seen).toEqual([1, 2, 3])
      }
    },
    expect: 'CORRUPT',
    message: /position 4 is missing while position 5 exists/,
  },
  {
    name: 'a directory in place of WAL entry 4 while 5 exists, shard reader (names it)',
    act: (d) => {
      holeAt4(d)
      mkdirSync(join(d.walDir, `${bits(4n)}.arrow`))
      return openShardReader(local.uri, d.shardId)
    },
    expect: 'CORRUPT',
    message: /position 4 is missing \(.*arrow is a directory\) while position 5 exists/,
  },
  {
    name: 'WAL entry 4 lost while 5 exists, tailer.firstPosition',
    act: async (d) => {
      holeAt4(d)
      return (await openWalTailer(local.uri, d.shardId)).firstPosition()
    },
    expect: 'CORRUPT',
    message: /position 4 is missing/,
  },
  {
    name: 'WAL entry 4 lost while 5 exists, tailer.readEntry(4)',
    act: async (d) => {
      holeAt4(d)
      return (await openWalTailer(local.uri, d.shardId)).readEntry(4)
    },
    expect: 'CORRUPT',
    message: /position 4 is missing/,
  },
  {
    name: 'foreign names in wal/ (README, staging and 65-character names) are ignored',
    act: (d) => {
      writeFileSync(join(d.walDir, 'README'), 'not an entry')
      writeFileSync(join(d.walDir, `${bits(3n)}.arrow.tmp`), 'staging')
      writeFileSync(join(d.walDir, `0${bits(3n)}.arrow`), 'too long')
      return openWriterOn(d)
    },
    expect: 'OK',
  },
]

const MANIFEST_ROWS: Row<Damaged>[] = [
  {
    name: 'manifest v2 with unknown fields (5, 9 fixed64, 12 fixed32, 100, 2^29-1 bytes)',
    act: (d) => {
      const unknown = [
        ...[0x28, 0x07], // field 5, varint 7
        ...[0x49, 1, 2, 3, 4, 5, 6, 7, 8], // field 9, fixed64
        ...[0x65, 1, 2, 3, 4], // field 12, fixed32
        ...varint((100n << 3n) | 0n),
        ...varint(123456789n), // field 100, varint
        ...varint((536870911n << 3n) | 2n),
        3,
        0x61,
        0x62,
        0x63, // field 2^29-1, bytes "abc"
      ]
      d.writeManifest(2n, manifestV(d, 2, unknown))
      return openWriterOn(d)
    },
    expect: 'OK',
  },
  {
    name: 'manifest v2 cut after 10 bytes',
    act: (d) => {
      d.writeManifest(2n, manifestV(d, 2).subarray(0, 10))
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
  },
  {
    name: 'manifest v2 of 0 bytes',
    act: (d) => {
      d.writeManifest(2n, new Uint8Array(0))
      return openShardReader(local.uri, d.shardId)
    },
    expect: 'CORRUPT',
  },
  {
    name: 'manifest file v2 recording version 5',
    act: (d) => {
      d.writeManifest(2n, manifestV(d, 5))
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
    message: /version 5/,
  },
  {
    name: "manifest v2 carrying another shard's id",
    act: (d) => {
      const m = manifestV(d, 2)
      m[m.length - 1] ^= 0xff
      d.writeManifest(2n, m)
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
  },
  {
    name: 'manifest v2 with a 15-byte shard id',
    act: (d) => {
      const m = manifestV(d, 2)
      const at = m.indexOf(Buffer.from([0x5a, 0x12, 0x0a, 0x10]))
      d.writeManifest(
        2n,
        Buffer.concat([
          m.subarray(0, at),
          Buffer.from([0x5a, 0x11, 0x0a, 0x0f]),
          m.subarray(at + 4, at + 19),
        ]),
      )
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
  },
  {
    name: 'newer format: version sent length-delimited instead of varint',
    act: (d) => {
      d.writeManifest(2n, manifestV(d, 2, [0x0a, 0x01, 0x02]))
      return openWalTailer(local.uri, d.shardId).then((t) => t.nextPosition())
    },
    expect: 'CORRUPT',
  },
  {
    name: 'newer format: unknown status value 2 (not ACTIVE, not SEALED) must not be claimed',
    act: (d) => {
      d.writeManifest(2n, manifestV(d, 2, [0x78, 0x02]))
      return openWriterOn(d)
    },
    expect: 'INVALID_INPUT',
  },
  {
    name: 'SEALED shard refuses a claim',
    act: (d) => {
      d.writeManifest(2n, manifestV(d, 2, [0x78, 0x01]))
      return openWriterOn(d)
    },
    expect: 'INVALID_INPUT',
    message: /sealed/,
  },
  {
    name: 'manifest v3 without v2 (a version gap)',
    act: (d) => {
      d.writeManifest(3n, manifestV(d, 3))
      return openShardReader(local.uri, d.shardId)
    },
    expect: 'CORRUPT',
    message: /gap/,
  },
  {
    name: 'writer_epoch 2^64-1 (the next claim cannot exist)',
    act: (d) => {
      d.writeManifest(2n, manifestV(d, 2, [0x10, ...varint(U64_MAX)]))
      return openWriterOn(d)
    },
    expect: 'CORRUPT',
  },
  {
    name: 'manifest version 2^64-1 named by the version hint',
    act: (d) => {
      const v1 = d.manifest(1)
      d.writeManifest(
        U64_MAX,
        Buffer.concat([Buffer.from([0x08, ...varint(U64_MAX)]), v1.subarray(2)]),
      )
      writeFileSync(join(d.manifestDir, 'version_hint.json'), `{"version":${U64_MAX}}`)
      return openShardReader(local.uri, d.shardId)
    },
    expect: 'CORRUPT',
  },
  {
    name: 'writer_epoch 2^53 (the claimed epoch no longer fits a JS number)',
    act: (d) => {
      d.writeManifest(2n, manifestV(d, 2, [0x10, ...varint(2n ** 53n)]))
      return openWriterOn(d)
    },
    expect: 'INTERNAL',
    message: /does not fit a JavaScript number/,
  },
  {
    name: 'garbage version_hint.json',
    act: (d) => {
      writeFileSync(join(d.manifestDir, 'version_hint.json'), '{"version": "many"')
      return openWriterOn(d)
    },
    expect: 'OK',
  },
  {
    name: 'version_hint.json pointing far past the last version',
    act: (d) => {
      writeFileSync(join(d.manifestDir, 'version_hint.json'), '{"version":4000000000}')
      return openWriterOn(d)
    },
    expect: 'OK',
  },
]

// --- the suites ----------------------------------------------------------------------------------

describe('put: hostile batches (keyed MemTable writer stays healthy)', () => {
  runRows(PUT_ROWS, victims, keyedHealthy)
})

describe('put and open: types and values the WAL decoder or the flush cannot read back', () => {
  runRows(TYPE_ROWS, victims, keyedHealthy)
})

describe('delete: hostile keys', () => {
  runRows(DELETE_ROWS, victims, bothHealthy)
})

describe('scan and tailer options', () => {
  runRows(READ_ROWS, victims, keyedHealthy)
})

describe('open: roots, shard ids and options (a doomed open never fences the victim)', () => {
  runRows(OPEN_ROWS, victims, keyedHealthy)
})

describe('open: every writer option with every kind of bad value', () => {
  runRows(configRows(), victims, keyedHealthy)
})

describe('a closed writer', () => {
  let closed: Victim
  beforeAll(async () => {
    closed = await Victim.open(memoryRoot('hostile-closed'), {
      schema: SCHEMA,
      primaryKey: ['id'],
      config: MEMTABLE,
    })
    await closed.put(4)
    await closed.writer.close()
  })
  runRows(
    CLOSED_ROWS,
    () => closed,
    (v) => v.checkStored(),
  )
  it('the shard takes a new writer afterwards and keeps every row', async () => {
    const next = await openShardWriter(closed.root, {
      schema: SCHEMA,
      shardId: closed.shardId,
      primaryKey: ['id'],
      config: MEMTABLE,
    })
    await next.put(rowsOf([1000n]))
    await next.close()
    const reader = await openShardReader(closed.root, closed.shardId)
    expect(sorted(idsOfTable(await reader.scan({ columns: ['id'] })))).toEqual(
      sorted([...closed.acked, 1000n]),
    )
  })
})

describe('close racing puts', () => {
  runRows(
    RACE_ROWS,
    () => undefined,
    async () => {},
  )
})

describe('damaged WAL entries (local files)', () => {
  runRows(WAL_ROWS, damagedShard, storageHealthy)
})

describe('damaged and foreign manifests (local files)', () => {
  runRows(MANIFEST_ROWS, damagedShard, storageHealthy)
})
