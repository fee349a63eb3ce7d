// Readers we did not write: DuckDB and pyarrow read the Parquet generations,
// Lance's own shard writer (pylance) and memwal read each other's WAL.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { afterAll, describe, expect, it } from 'vitest'
import { openShardReader, openShardWriter, openWalTailer } from '../ts/index.js'
import { ID_NAME_SCHEMA, idNameRows, idsOf, rejectsWith, tempRoot } from './helpers.js'

const local = tempRoot()
afterAll(() => local.cleanup())
const MEMTABLE = { maxWalFlushIntervalMs: null, statsLogIntervalMs: null } as const
const INTEROP = join(__dirname, 'interop')

type Row = [number, string | null]

function python(args: string[]): string {
  return execFileSync('python3', args, { encoding: 'utf8' })
}

describe('Parquet generations read by DuckDB and pyarrow', () => {
  it('both return exactly the rows memwal flushed, in generation and put order', async () => {
    const writer = await openShardWriter(local.uri, {
      schema: ID_NAME_SCHEMA,
      config: { ...MEMTABLE, flushCompression: 'zstd' },
    })
    const expected: Row[] = []
    for (let g = 0; g < 3; g++) {
      const pairs: [number, string][] = Array.from({ length: 40 }, (_, i) => [
        g * 40 + i,
        `n${g}-${i}`,
      ])
      await writer.put(idNameRows(pairs.slice(0, 25)))
      await writer.put(idNameRows(pairs.slice(25)))
      expected.push(...pairs)
      await writer.forceSealActive()
      await writer.waitForFlushDrain()
    }
    await writer.close()
    const reader = await openShardReader(local.uri, writer.shardId)
    const files = reader
      .generations()
      .map((g) => join(local.dir, '_mem_wal', writer.shardId, g.path, 'data.parquet'))
    expect(files).toHaveLength(3)

    const mine = (await reader.scan()).toArray().map((r) => [Number(r.id), r.name] as Row)
    expect(mine).toEqual(expected)

    const duck = await DuckDBInstance.create(':memory:')
    const connection = await duck.connect()
    const fromDuck: Row[] = []
    for (const file of files) {
      const result = await connection.runAndReadAll(
        `SELECT id, name FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`,
      )
      fromDuck.push(...result.getRowObjectsJS().map((r) => [Number(r.id), r.name] as Row))
    }
    connection.closeSync()
    duck.closeSync()
    expect(fromDuck).toEqual(expected)

    const script = `
import json, sys
import pyarrow.parquet as pq
rows = []
for path in sys.argv[1:]:
    rows.extend([r['id'], r['name']] for r in pq.read_table(path).to_pylist())
print(json.dumps(rows))
`
    expect(JSON.parse(python(['-c', script, ...files]))).toEqual(expected)
  })
})

describe('Lance MemWAL (pylance 14.0.2)', () => {
  it("memwal's tailer, reader and writer read a shard Lance's own writer wrote", async () => {
    const root = tempRoot()
    try {
      const shardId = crypto.randomUUID()
      const lance = JSON.parse(
        python([join(INTEROP, 'lance_shard_writer.py'), root.dir, shardId, '5', '4']),
      )
      expect(lance).toMatchObject({ epoch: 1, rows: 20 })
      const tailer = await openWalTailer(root.uri, shardId)
      const entries = []
      for (let p = 1; ; p++) {
        const entry = await tailer.readEntry(p)
        if (entry === null) break
        entries.push(entry)
      }
      expect(entries).toHaveLength(5)
      expect(entries.every((e) => e.epoch === 1 && !e.fenceSentinel)).toBe(true)
      const batches = entries.flatMap((e) => e.batches)
      expect(idsOf(batches)).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect(batches.flatMap((b) => b.getChild('name')?.toArray() ?? [])).toEqual(
        Array.from({ length: 20 }, (_, i) => `name-${i}`),
      )

      const reader = await openShardReader(root.uri, shardId)
      expect(reader.primaryKey).toEqual(['id'])
      expect(idsOf((await reader.scan()).batches)).toEqual(Array.from({ length: 20 }, (_, i) => i))

      // memwal takes the shard over from Lance and replays its entries.
      const writer = await openShardWriter(root.uri, {
        schema: ID_NAME_SCHEMA,
        primaryKey: ['id'],
        shardId,
        config: MEMTABLE,
      })
      expect(writer.epoch).toBe(2)
      expect((await writer.memtableStats()).rowCount).toBe(20)
      await writer.close()
    } finally {
      root.cleanup()
    }
  })

  it("Lance's writer replays memwal's acknowledged entries, claims a higher epoch and fences memwal", async () => {
    const root = tempRoot()
    try {
      const writer = await openShardWriter(root.uri, {
        schema: ID_NAME_SCHEMA,
        primaryKey: ['id'],
        config: { ...MEMTABLE, durableWrite: true },
      })
      let acknowledged = 0
      for (let i = 0; i < 6; i++) {
        const pairs: [number, string][] = Array.from({ length: 3 }, (_, k) => [
          i * 3 + k,
          `m${i * 3 + k}`,
        ])
        await writer.put(idNameRows(pairs))
        acknowledged += pairs.length
      }
      const lance = JSON.parse(
        python([join(INTEROP, 'lance_take_over.py'), root.dir, writer.shardId]),
      )
      expect(lance).toEqual({ epoch: writer.epoch + 1, memtable_rows: acknowledged })
      await rejectsWith(writer.checkFenced(), 'FENCED')
      await rejectsWith(writer.put(idNameRows([[100, 'late']])), 'FENCED')
      await rejectsWith(writer.close(), 'FENCED')
    } finally {
      root.cleanup()
    }
  })
})
