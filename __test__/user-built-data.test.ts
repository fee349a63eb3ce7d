// Data built the way a new user builds it: apache-arrow's `tableFromArrays`
// and `vectorFromArray` make every field nullable and strings
// dictionary-encoded, while the writer (like Lance) has a non-nullable key
// and plain strings. Such puts are converted (README, "What a put
// accepts") on both ways into the native side, and read back in the
// writer's types from the MemTable, the shard reader and the Parquet.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { Int64, type Schema, Table, tableFromArrays, Utf8, vectorFromArray } from 'apache-arrow'
import { afterAll, describe, expect, it, vi } from 'vitest'
import * as arrow from '../ts/arrow.js'
import { openShardReader, openShardWriter } from '../ts/index.js'
import { ID_NAME_SCHEMA, idNameRows, memoryRoot, rejectsWith, tempRoot } from './helpers.js'

vi.mock('../ts/arrow.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../ts/arrow.js')>()
  return { ...actual, batchesToIPC: vi.fn(actual.batchesToIPC) }
})

const local = tempRoot()
afterAll(() => local.cleanup())
const MEMTABLE = { maxWalFlushIntervalMs: null, statsLogIntervalMs: null } as const

/** Each field as `name type nullable`, the way the writer schema has it. */
function shape(schema: Schema): string[] {
  return schema.fields.map((f) => `${f.name} ${String(f.type)} ${f.nullable}`)
}

function pairs(table: Table): [number, string | null][] {
  return table.toArray().map((r) => [Number(r.id), r.name] as [number, string | null])
}

const WRITER_SHAPE = ['id Int64 false', 'name Utf8 true']

describe('puts built with apache-arrow builders', () => {
  it('tableFromArrays and vectorFromArray rows land in the writer types and read back everywhere', async () => {
    const writer = await openShardWriter(local.uri, {
      schema: ID_NAME_SCHEMA,
      primaryKey: ['id'],
      config: MEMTABLE,
    })
    expect(shape(writer.schema)).toEqual(WRITER_SHAPE)
    const ipc = vi.mocked(arrow.batchesToIPC)
    ipc.mockClear()

    // Exactly what a new user writes: dictionary-encoded names...
    const first = tableFromArrays({ id: BigInt64Array.from([1n, 2n]), name: ['a', 'b'] })
    expect(String(first.schema.fields[1].type)).toContain('Dictionary')
    await writer.put(first)
    // ...and, one column at a time, nullable ids too.
    const built = new Table({
      id: vectorFromArray([3n], new Int64()),
      name: vectorFromArray(['c']),
    })
    expect(shape(built.schema)).toEqual(['id Int64 true', 'name Dictionary<Int32, Utf8> true'])
    await writer.put(built)
    expect(ipc).not.toHaveBeenCalled()
    // Batches of two tables carry different dictionary ids: the IPC path.
    const later = tableFromArrays({ id: BigInt64Array.from([4n]), name: ['d'] })
    const last = tableFromArrays({ id: BigInt64Array.from([5n]), name: ['e'] })
    await writer.put([later.batches[0], last.batches[0]])
    expect(ipc).toHaveBeenCalledTimes(1)
    // Deletes take the same inferred (nullable) key column.
    await writer.delete(tableFromArrays({ id: BigInt64Array.from([2n]) }))

    const expected = [
      [1, 'a'],
      [3, 'c'],
      [4, 'd'],
      [5, 'e'],
    ]
    const scanned = await writer.scan()
    expect(shape(scanned.schema)).toEqual(WRITER_SHAPE)
    expect(pairs(scanned)).toEqual(expected)

    await writer.forceSealActive()
    await writer.waitForFlushDrain()
    await writer.close()
    const reader = await openShardReader(local.uri, writer.shardId)
    const read = await reader.scan()
    expect(shape(read.schema)).toEqual(WRITER_SHAPE)
    expect(pairs(read)).toEqual(expected)

    const files = reader
      .generations()
      .map((g) => join(local.dir, '_mem_wal', writer.shardId, g.path, 'data.parquet'))
    expect(files).toHaveLength(1)
    const script = `
import json, sys
import pyarrow.parquet as pq
schema = pq.read_schema(sys.argv[1])
print(json.dumps([[f.name, str(f.type), f.nullable] for f in schema if f.name != '_tombstone']))
`
    const parquet = JSON.parse(
      execFileSync('python3', ['-c', script, files[0]], { encoding: 'utf8' }),
    )
    expect(parquet).toEqual([
      ['id', 'int64', false],
      ['name', 'string', true],
    ])
  })

  it('one put may mix batches that declare the key nullable and non-nullable', async () => {
    const writer = await openShardWriter(memoryRoot('mixed'), {
      schema: ID_NAME_SCHEMA,
      primaryKey: ['id'],
      config: MEMTABLE,
    })
    const strict = idNameRows([[1, 'a']])
    const loose = new Table({
      id: vectorFromArray([2n], new Int64()),
      name: vectorFromArray(['b'], new Utf8()),
    })
    expect(shape(loose.schema)).toEqual(['id Int64 true', 'name Utf8 true'])
    await writer.put([strict.batches[0], loose.batches[0]])
    expect(pairs(await writer.scan())).toEqual([
      [1, 'a'],
      [2, 'b'],
    ])
    await writer.close()
  })

  it('a real null in the key column is refused naming the column and its first null row', async () => {
    const writer = await openShardWriter(local.uri, {
      schema: ID_NAME_SCHEMA,
      primaryKey: ['id'],
      config: MEMTABLE,
    })
    const withNull = new Table({
      id: vectorFromArray([7n, 8n, null], new Int64()),
      name: vectorFromArray(['x', 'y', 'z']),
    })
    const error = await rejectsWith(writer.put(withNull), 'SCHEMA_MISMATCH')
    expect(error.message).toContain("column 'id' at row 2 is null")
    expect(error.shardId).toBe(writer.shardId)
    expect(pairs(await writer.scan())).toEqual([])
    await writer.close()
  })
})
