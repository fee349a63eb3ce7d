// The default MemTable mode: puts are readable at once, freeze into
// generations and flush to Parquet files that other readers open. Runs on
// every storage backend; the pyarrow check reads files, so it is local only.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { openShardWriter, openWalTailer } from '../ts/index.js'
import {
  BACKENDS,
  backendRoot,
  events,
  idsOf,
  rejectsWith,
  type TestRoot,
  tempRoot,
} from './helpers.js'

const schema = events(0, 1).schema
const MEMTABLE = { maxWalFlushIntervalMs: null, statsLogIntervalMs: null } as const

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

describe.each(BACKENDS)('MemTable mode, %s backend', (kind) => {
  function freshRoot(label: string): TestRoot {
    const root = backendRoot(kind, label)
    cleanups.push(root.cleanup)
    return root
  }

  it('counts rows, seals, drains and flushes a generation', async () => {
    const root = freshRoot('mt')
    const writer = await root.writer({ schema, config: MEMTABLE })
    expect(writer.config.enableMemtable).toBe(true)
    await writer.put(events(0, 10))
    await writer.put([...events(10, 5).batches, ...events(15, 5).batches])
    expect(await writer.memtableStats()).toMatchObject({
      rowCount: 20,
      batchCount: 3,
      generation: 1,
      frozenCount: 0,
      pendingWalStart: 3,
      pendingWalEnd: 3,
    })
    expect(await writer.forceSealActive()).toBe(true)
    await writer.waitForFlushDrain()
    expect(await writer.memtableStats()).toMatchObject({
      rowCount: 0,
      generation: 2,
      frozenCount: 0,
    })
    const manifest = await writer.manifest()
    expect(manifest.currentGeneration).toBe(2)
    expect(manifest.flushedGenerations).toHaveLength(1)
    expect(manifest.flushedGenerations[0]).toMatchObject({ generation: 1, physicalRows: 20 })
    expect(writer.stats().memtableFlushCount).toBe(1)
    await writer.close()
    const reader = await root.reader(writer.shardId)
    expect(reader.generations()).toMatchObject([{ generation: 1, rows: 20 }])
    expect(idsOf((await reader.scan()).batches)).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  it('replays acknowledged rows after a writer is abandoned', async () => {
    const root = freshRoot('mt-replay')
    const first = await root.writer({ schema, config: MEMTABLE })
    await first.put(events(0, 7))
    // A second writer takes over without the first closing: it fences the
    // first and replays its acknowledged rows.
    const second = await root.writer({ schema, shardId: first.shardId, config: MEMTABLE })
    expect((await second.memtableStats()).rowCount).toBe(7)
    await rejectsWith(first.put(events(7, 1)), 'FENCED')
    await second.close()
    expect((await second.manifest().catch((e) => e)).code).toBe('CLOSED')
    const reader = await root.reader(first.shardId)
    expect(idsOf((await reader.scan()).batches)).toEqual([0, 1, 2, 3, 4, 5, 6])
  })

  it('close flushes every acknowledged row into generations, in put order', async () => {
    const root = freshRoot('mt-close')
    const writer = await root.writer({ schema, config: { ...MEMTABLE, maxMemtableBatches: 4 } })
    for (let i = 0; i < 10; i++) await writer.put(events(i * 3, 3))
    await writer.close()
    const tailer = await root.tailer(writer.shardId)
    expect(await tailer.nextPosition()).toBe(11)
    const reader = await root.reader(writer.shardId)
    expect(reader.generations().map((g) => g.rows)).toEqual([12, 12, 6])
    expect(reader.tailPositions()).toBeNull()
    expect(idsOf((await reader.scan()).batches)).toEqual(Array.from({ length: 30 }, (_, i) => i))
  })

  it('scan returns unflushed rows with projection, filter, offset and limit', async () => {
    const root = freshRoot('mt-scan')
    const writer = await root.writer({ schema, config: MEMTABLE })
    await writer.put(events(0, 10))
    await writer.put(events(10, 10))
    const all = await writer.scan()
    expect(all.numRows).toBe(20)
    expect(all.schema.fields.map((f) => f.name)).toEqual(['id', 'name'])
    const some = await writer.scan({
      columns: ['name'],
      filter: "id >= 5 AND (name LIKE 'event-1%' OR id IN (7, 8))",
      offset: 1,
      limit: 4,
    })
    expect(some.schema.fields.map((f) => f.name)).toEqual(['name'])
    expect(some.toArray().map((r) => r.name)).toEqual([
      'event-8',
      'event-10',
      'event-11',
      'event-12',
    ])
    const none = await writer.scan({ filter: 'id IS NULL' })
    expect(none.numRows).toBe(0)
    // Frozen MemTables stay visible until their flush commits; after it, rows leave the scan.
    await writer.forceSealActive()
    await writer.waitForFlushDrain()
    expect((await writer.scan()).numRows).toBe(0)
    const syntax = await rejectsWith(writer.scan({ filter: 'id >' }), 'INVALID_INPUT')
    expect(syntax.message).toMatch(/line 1, column/)
    const unknown = await rejectsWith(writer.scan({ filter: 'nmae = 1' }), 'INVALID_INPUT')
    expect(unknown.message).toContain("unknown column 'nmae'")
    await rejectsWith(writer.scan({ columns: ['missing'] }), 'INVALID_INPUT')
    await rejectsWith(writer.scan({ limit: -1 }), 'INVALID_INPUT')
    await writer.close()
  })

  it('MemTable methods fail after close with CLOSED', async () => {
    const root = freshRoot('mt-closed')
    const writer = await root.writer({ schema, config: MEMTABLE })
    await writer.close()
    await rejectsWith(writer.memtableStats(), 'CLOSED')
    await rejectsWith(writer.forceSealActive(), 'CLOSED')
    await rejectsWith(writer.waitForFlushDrain(), 'CLOSED')
    await rejectsWith(writer.scan(), 'CLOSED')
  })
})

// pyarrow reads the generation files straight from disk: local root only.
describe('MemTable mode, Parquet files on a local root', () => {
  const local = tempRoot()
  afterAll(() => local.cleanup())

  it('close flushes Parquet files that pyarrow reads with exactly the acknowledged rows', async () => {
    const writer = await openShardWriter(local.uri, {
      schema,
      config: { ...MEMTABLE, maxMemtableBatches: 4 },
    })
    for (let i = 0; i < 10; i++) await writer.put(events(i * 3, 3))
    await writer.close()
    const tailer = await openWalTailer(local.uri, writer.shardId)
    expect(await tailer.nextPosition()).toBeGreaterThan(1)
    const shardDir = join(local.dir, '_mem_wal', writer.shardId)
    const script = `
import json, sys, glob, os
import pyarrow.parquet as pq
shard = sys.argv[1]
rows = []
files = sorted(glob.glob(os.path.join(shard, '*_gen_*', 'data.parquet')), key=lambda p: int(p.split('_gen_')[1].split('/')[0]))
for path in files:
    rows.extend(pq.read_table(path).to_pylist())
print(json.dumps({'files': len(files), 'ids': [r['id'] for r in rows], 'names': [r['name'] for r in rows]}))
`
    const out = JSON.parse(execFileSync('python3', ['-c', script, shardDir], { encoding: 'utf8' }))
    expect(out.files).toBe(3)
    expect(out.ids).toEqual(Array.from({ length: 30 }, (_, i) => i))
    expect(out.names).toEqual(Array.from({ length: 30 }, (_, i) => `event-${i}`))
  })
})

describe('flush failures before close()', () => {
  it('stats() and health() report a flush that failed, and health() starts ok', async () => {
    const root = tempRoot()
    cleanups.push(root.cleanup)
    // One batch per MemTable: every put freezes one and starts its flush.
    const config = { ...MEMTABLE, durableWrite: false, maxMemtableBatches: 1 }
    const writer = await openShardWriter(root.uri, { schema, config })
    expect(writer.health()).toEqual({
      state: 'ok',
      flushFailures: 0,
      consecutiveFlushFailures: 0,
      lastFlushError: null,
      failure: null,
    })
    expect(writer.stats()).toMatchObject({ flushFailures: 0, lastFlushError: null })
    // A successor claims the shard: the flush of the next put cannot
    // commit (its WAL append meets the successor's fence).
    const successor = await openShardWriter(root.uri, {
      schema,
      shardId: writer.shardId,
      config: MEMTABLE,
    })
    await writer.put(events(0, 1))
    await rejectsWith(writer.waitForFlushDrain(), 'FENCED')
    const stats = writer.stats()
    expect(stats.flushFailures).toBeGreaterThanOrEqual(1)
    expect(stats.lastFlushError?.code).toBe('FENCED')
    const health = writer.health()
    expect(health.state).toBe('failed')
    expect(health.flushFailures).toBe(stats.flushFailures)
    expect(health.consecutiveFlushFailures).toBeGreaterThanOrEqual(1)
    expect(health.lastFlushError?.code).toBe('FENCED')
    expect(health.failure?.code).toBe('FENCED')
    await rejectsWith(writer.close(), 'FENCED')
    await successor.close()
  })
})
