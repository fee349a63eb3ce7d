// The WAL-only shard writer as a TypeScript application uses it, on every
// storage backend (a local directory, memory, and S3 through moto).
import { afterEach, describe, expect, it } from 'vitest'
import { ShardWriterConfig, type WalEntry } from '../ts/index.js'
import {
  BACKENDS,
  backendRoot,
  events,
  idsOf,
  rejectsWith,
  type TestRoot,
  throwsWith,
  WAL_ONLY,
} from './helpers.js'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

async function allEntries(root: TestRoot, shardId: string): Promise<WalEntry[]> {
  const tailer = await root.tailer(shardId)
  const out: WalEntry[] = []
  for (let p = await tailer.firstPosition(); ; p++) {
    const entry = await tailer.readEntry(p)
    if (!entry) return out
    out.push(entry)
  }
}

describe.each(BACKENDS)('%s backend', (kind) => {
  function freshRoot(label: string): TestRoot {
    const root = backendRoot(kind, label)
    cleanups.push(root.cleanup)
    return root
  }

  describe('durable puts', () => {
    it('two puts become WAL entries 1 and 2 with identical rows and the epoch', async () => {
      const root = freshRoot('two-puts')
      const first = events(0, 3)
      const second = events(3, 2)
      const writer = await root.writer({ schema: first.schema, config: WAL_ONLY })
      expect(writer.epoch).toBe(1)
      expect(writer.shardId).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      )
      expect(await writer.put(first)).toEqual({ batchPositions: { start: 0, end: 1 } })
      expect(await writer.put(second.batches)).toEqual({ batchPositions: { start: 1, end: 2 } })
      await writer.close()

      const tailer = await root.tailer(writer.shardId)
      expect(await tailer.firstPosition()).toBe(1)
      expect(await tailer.nextPosition()).toBe(3)
      const one = await tailer.readEntry(1)
      const two = await tailer.readEntry(2)
      expect(one).toMatchObject({ position: 1, epoch: 1, fenceSentinel: false, numRows: 3 })
      expect(two).toMatchObject({ position: 2, epoch: 1, fenceSentinel: false, numRows: 2 })
      expect(one?.batches.flatMap((b) => b.toArray().map((r) => r.toJSON()))).toEqual(
        first.toArray().map((r) => r.toJSON()),
      )
      expect(idsOf(two?.batches ?? [])).toEqual([3, 4])
      expect(await tailer.readEntry(3)).toBeNull()
    })

    it('a multi-batch put is one atomic entry', async () => {
      const root = freshRoot('multi')
      const batches = [...events(0, 2).batches, ...events(2, 3).batches]
      const writer = await root.writer({ schema: batches[0].schema, config: WAL_ONLY })
      expect((await writer.put(batches)).batchPositions).toEqual({ start: 0, end: 2 })
      await writer.close()
      const entries = await allEntries(root, writer.shardId)
      expect(entries).toHaveLength(1)
      expect(entries[0].batches).toHaveLength(2)
      expect(idsOf(entries[0].batches)).toEqual([0, 1, 2, 3, 4])
    })

    it('concurrent puts share WAL entries and each resolves after its entry exists', async () => {
      const root = freshRoot('group-commit')
      const writer = await root.writer({ schema: events(0, 1).schema, config: WAL_ONLY })
      const tailer = await root.tailer(writer.shardId)
      const puts = 100
      // When put i resolves, the WAL tip is past the entry that holds id i:
      // entries are immutable and dense, so that entry exists at that moment.
      const tipAtResolve = await Promise.all(
        Array.from({ length: puts }, async (_, i) => {
          await writer.put(events(i, 1))
          return tailer.nextPosition()
        }),
      )
      await writer.close()
      const entries = await allEntries(root, writer.shardId)
      // Puts join an append in flight; a memory store's appends finish before
      // the next put arrives, so only real I/O shows entries being shared.
      if (kind !== 'memory') expect(entries.length).toBeLessThan(puts)
      const positionOf = new Map<number, number>()
      for (const entry of entries) {
        for (const id of idsOf(entry.batches)) positionOf.set(id, entry.position)
      }
      for (let i = 0; i < puts; i++) {
        expect(positionOf.get(i), `entry of id ${i}`).toBeLessThan(tipAtResolve[i])
      }
      expect(idsOf(entries.flatMap((e) => e.batches)).sort((a, b) => a - b)).toEqual(
        Array.from({ length: puts }, (_, i) => i),
      )
      expect(writer.isOpen()).toBe(false)
    })
  })

  describe('non-durable puts', () => {
    it('are batched into one entry by close when no trigger fires', async () => {
      const root = freshRoot('nondurable')
      const writer = await root.writer({
        schema: events(0, 1).schema,
        config: ShardWriterConfig.defaults()
          .withEnableMemtable(false)
          .withDurableWrite(false)
          .withMaxWalFlushIntervalMs(null),
      })
      for (let i = 0; i < 10; i++) await writer.put(events(i * 2, 2))
      expect(writer.walStats()).toMatchObject({ entriesWritten: 0, pendingBatches: 10 })
      await writer.close()
      const entries = await allEntries(root, writer.shardId)
      expect(entries).toHaveLength(1)
      expect(entries[0].numRows).toBe(20)
    })

    it('are queued before put returns while under the budget, and wait once over it', async () => {
      const root = freshRoot('nondurable-now')
      const batch = events(0, 100)
      const writer = await root.writer({
        schema: batch.schema,
        config: ShardWriterConfig.defaults()
          .withEnableMemtable(false)
          .withDurableWrite(false)
          .withMaxWalFlushIntervalMs(null),
      })
      // Nothing to wait for: the batch is in the queue when put() returns,
      // before its promise is awaited.
      const first = writer.put(batch)
      expect(writer.walStats()).toMatchObject({ nextBatchPosition: 1, pendingBatches: 1 })
      expect(await first).toEqual({ batchPositions: { start: 0, end: 1 } })
      await writer.close()

      const tight = freshRoot('nondurable-budget')
      const budgeted = await tight.writer({
        schema: batch.schema,
        config: ShardWriterConfig.defaults()
          .withEnableMemtable(false)
          .withDurableWrite(false)
          .withMaxWalFlushIntervalMs(null)
          .withMaxUnflushedMemtableBytes(1),
      })
      // One byte of budget: the first put fits (the queue was empty) and
      // stays queued, as no trigger fires; the next one must wait for the
      // WAL to drain, and all of them still land.
      const puts = [0, 1, 2, 3].map((i) => budgeted.put(events(i * 100, 100)))
      expect((await Promise.all(puts)).map((r) => r.batchPositions.start).sort()).toEqual([
        0, 1, 2, 3,
      ])
      expect(budgeted.stats().backpressureCount).toBeGreaterThan(0)
      await budgeted.close()
      const rows = (await allEntries(tight, budgeted.shardId)).flatMap((e) => idsOf(e.batches))
      expect(rows.sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i))
    })
  })

  describe('fencing', () => {
    it('a second writer fences the first; its put fails FENCED and keeps its batches', async () => {
      const root = freshRoot('fence')
      const schema = events(0, 1).schema
      const a = await root.writer({ schema, config: WAL_ONLY })
      await a.put(events(0, 2))
      const b = await root.writer({ schema, shardId: a.shardId, config: WAL_ONLY })
      expect(b.epoch).toBe(2)

      const fenced = await rejectsWith(a.checkFenced(), 'FENCED')
      expect(fenced.shardId).toBe(a.shardId)
      const err = await rejectsWith(a.put(events(100, 3)), 'FENCED')
      expect(err.message).toBe(
        `Writer fenced: local epoch 1 < stored epoch 2 for shard ${a.shardId}`,
      )
      expect(a.walStats().pendingBatches).toBe(1)
      await rejectsWith(a.close(), 'FENCED')

      await b.put(events(10, 1))
      await b.checkFenced()
      await b.close()
      const entries = await allEntries(root, a.shardId)
      expect(entries.map((e) => [e.epoch, e.fenceSentinel, e.numRows])).toEqual([
        [1, false, 2],
        [2, true, 0],
        [2, false, 1],
      ])
      expect(idsOf(entries.flatMap((e) => e.batches))).toEqual([0, 1, 10])
    })
  })

  describe('lifecycle', () => {
    it('calls after close fail with CLOSED and close can be repeated', async () => {
      const root = freshRoot('closed')
      const writer = await root.writer({ schema: events(0, 1).schema, config: WAL_ONLY })
      await Promise.all([writer.close(), writer.close()])
      await writer.close()
      await rejectsWith(writer.put(events(0, 1)), 'CLOSED')
      await rejectsWith(writer.manifest(), 'CLOSED')
      await rejectsWith(writer.checkFenced(), 'CLOSED')
      throwsWith(() => writer.stats(), 'CLOSED')
      throwsWith(() => writer.walStats(), 'CLOSED')
    })

    it('await using closes the writer, which appends the pending puts', async () => {
      const root = freshRoot('dispose')
      let shardId = ''
      {
        await using writer = await root.writer({
          schema: events(0, 1).schema,
          config: { enableMemtable: false, durableWrite: false, maxWalFlushIntervalMs: null },
        })
        shardId = writer.shardId
        await writer.put(events(0, 4))
      }
      const entries = await allEntries(root, shardId)
      expect(entries).toHaveLength(1)
      expect(idsOf(entries[0].batches)).toEqual([0, 1, 2, 3])
    })

    it('MemTable methods fail with WAL_ONLY_MODE', async () => {
      const root = freshRoot('walonly')
      const writer = await root.writer({ schema: events(0, 1).schema, config: WAL_ONLY })
      await rejectsWith(writer.memtableStats(), 'WAL_ONLY_MODE')
      await rejectsWith(writer.scan(), 'WAL_ONLY_MODE')
      await rejectsWith(writer.forceSealActive(), 'WAL_ONLY_MODE')
      await rejectsWith(writer.waitForFlushDrain(), 'WAL_ONLY_MODE')
      await writer.close()
    })

    it('stats, walStats and manifest describe the writer', async () => {
      const root = freshRoot('stats')
      const writer = await root.writer({ schema: events(0, 1).schema, config: WAL_ONLY })
      await writer.put(events(0, 5))
      await writer.put(events(5, 5))
      const stats = writer.stats()
      expect(stats).toMatchObject({ putCount: 2, putRows: 10, walFlushCount: 2 })
      expect(stats.walFlushBytes).toBeGreaterThan(0)
      expect(writer.walStats()).toMatchObject({
        entriesWritten: 2,
        lastWalEntryPosition: 2,
        nextWalEntryPosition: 3,
        pendingBatches: 0,
        nextBatchPosition: 2,
        durableBatchPosition: 2,
      })
      const manifest = await writer.manifest()
      expect(manifest).toMatchObject({
        version: 1,
        writerEpoch: 1,
        currentGeneration: 1,
        shardId: writer.shardId,
      })
      await writer.close()
    })

    it('primaryKey marks the fields with Lance primary-key metadata', async () => {
      const root = freshRoot('pk')
      const writer = await root.writer({
        schema: events(0, 1).schema,
        primaryKey: ['id'],
        config: WAL_ONLY,
      })
      expect(writer.schema.fields[0].metadata.get('lance-schema:unenforced-primary-key')).toBe(
        'true',
      )
      expect(writer.primaryKey).toEqual(['id'])
      await writer.put(events(0, 1))
      await writer.close()
    })
  })
})
