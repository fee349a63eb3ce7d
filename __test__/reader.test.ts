// The shard reader, deletes and newest-row-per-key scans, and
// tailer.follow(), on every storage backend.
import { type Table, tableFromArrays } from 'apache-arrow'
import { afterEach, describe, expect, it } from 'vitest'
import type { WalEntry } from '../ts/index.js'
import {
  BACKENDS,
  backendRoot,
  events,
  ID_NAME_SCHEMA,
  idNameRows,
  idsOf,
  rejectsWith,
  type TestRoot,
} from './helpers.js'

const MEMTABLE = { maxWalFlushIntervalMs: null, statsLogIntervalMs: null } as const
const schema = ID_NAME_SCHEMA
const rows = idNameRows

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

function keys(ids: number[]): Table {
  return tableFromArrays({ id: BigInt64Array.from(ids.map(BigInt)) })
}

function pairsOf(table: Table): [number, string][] {
  return table.toArray().map((r) => [Number(r.id), String(r.name)] as [number, string])
}

describe.each(BACKENDS)('%s backend', (kind) => {
  function freshRoot(label: string): TestRoot {
    const root = backendRoot(kind, label)
    cleanups.push(root.cleanup)
    return root
  }

  describe('deletes and newest-wins scans', () => {
    it('the writer and the shard reader return the newest row per key and skip deleted keys', async () => {
      const root = freshRoot('newest')
      const writer = await root.writer({
        schema,
        primaryKey: ['id'],
        config: MEMTABLE,
      })
      await writer.put(
        rows([
          [1, 'a'],
          [2, 'b'],
          [3, 'c'],
        ]),
      )
      await writer.forceSealActive()
      await writer.waitForFlushDrain()
      await writer.put(rows([[2, 'b2']]))
      await writer.delete(keys([3]))
      expect(pairsOf(await writer.scan())).toEqual([[2, 'b2']])

      const reader = await root.reader(writer.shardId)
      expect(reader.primaryKey).toEqual(['id'])
      expect(reader.schema.fields.map((f) => f.name)).toEqual(['id', 'name'])
      expect(reader.generations()).toMatchObject([{ generation: 1, rows: 3 }])
      expect(reader.tailPositions()).not.toBeNull()
      expect(pairsOf(await reader.scan())).toEqual([
        [1, 'a'],
        [2, 'b2'],
      ])

      // A put after the delete brings the key back.
      await writer.put(rows([[3, 'c3']]))
      await writer.close()
      const after = await root.reader(writer.shardId)
      expect(after.tailPositions()).toBeNull()
      expect(pairsOf(await after.scan()).sort()).toEqual([
        [1, 'a'],
        [2, 'b2'],
        [3, 'c3'],
      ])
      // The earlier snapshot still shows what it saw.
      expect(pairsOf(await reader.scan())).toEqual([
        [1, 'a'],
        [2, 'b2'],
      ])
    })

    it('delete without a primary key is INVALID_INPUT and loses nothing', async () => {
      const writer = await freshRoot('del-nokey').writer({ schema, config: MEMTABLE })
      await writer.put(rows([[1, 'a']]))
      await rejectsWith(writer.delete(keys([1])), 'INVALID_INPUT')
      await rejectsWith(writer.delete(keys([])), 'INVALID_INPUT')
      expect(pairsOf(await writer.scan())).toEqual([[1, 'a']])
      await writer.close()
    })

    it('scanStream yields batches with filters, projection and pruning metrics', async () => {
      const root = freshRoot('stream')
      const writer = await root.writer({
        schema: events(0, 1).schema,
        config: MEMTABLE,
      })
      for (let g = 0; g < 3; g++) {
        await writer.put(events(g * 50, 50))
        await writer.forceSealActive()
        await writer.waitForFlushDrain()
      }
      await writer.put(events(150, 5))
      await writer.close()
      const reader = await root.reader(writer.shardId)
      expect(reader.generations().map((g) => g.rows)).toEqual([50, 50, 50, 5])
      const stream = reader.scanStream({ columns: ['id'], filter: 'id >= 60 AND id < 70' })
      const batches = []
      for await (const batch of stream) batches.push(batch)
      expect(idsOf(batches)).toEqual(Array.from({ length: 10 }, (_, i) => 60 + i))
      expect(batches[0].schema.fields.map((f) => f.name)).toEqual(['id'])
      expect(await stream.metrics()).toEqual({ rowGroupsTotal: 4, rowGroupsRead: 1 })
      const all = await reader.scan({ limit: 3, offset: 149 })
      expect(idsOf(all.batches)).toEqual([149, 150, 151])
    })

    it('openShardReader reports NOT_FOUND and bad scan options as typed errors', async () => {
      const root = freshRoot('reader-errors')
      await rejectsWith(root.reader(crypto.randomUUID()), 'NOT_FOUND')
      await rejectsWith(root.reader('../etc'), 'INVALID_INPUT')
      const writer = await root.writer({ schema, config: MEMTABLE })
      await writer.put(rows([[1, 'a']]))
      const reader = await root.reader(writer.shardId)
      await rejectsWith(reader.scan({ filter: 'nope = 1' }), 'INVALID_INPUT')
      expect(() => reader.scanStream({ columns: ['missing'] })).toThrow(/unknown column/)
      await writer.close()
    })
  })

  describe('tailer.follow', () => {
    it('yields entries written while iterating, in order, across a new writer epoch, until aborted', async () => {
      const root = freshRoot('follow')
      const first = await root.writer({ schema, config: MEMTABLE })
      await first.put(rows([[0, 'before']]))
      const tailer = await root.tailer(first.shardId)
      const controller = new AbortController()
      const seen: WalEntry[] = []
      let wake: (() => void) | undefined
      const consumer = (async () => {
        for await (const entry of tailer.follow({ pollIntervalMs: 5, signal: controller.signal })) {
          seen.push(entry)
          wake?.()
        }
      })()
      const waitFor = async (n: number): Promise<void> => {
        while (seen.length < n) await new Promise<void>((resolve) => (wake = resolve))
      }
      await waitFor(1)
      await first.put(rows([[1, 'one']]))
      await first.put(rows([[2, 'two']]))
      await waitFor(3)
      // A new writer fences the first: its sentinel and then its data follow.
      const second = await root.writer({ schema, shardId: first.shardId, config: MEMTABLE })
      await second.put(rows([[3, 'three']]))
      await waitFor(5)
      controller.abort()
      await consumer
      expect(seen.map((e) => e.position)).toEqual([1, 2, 3, 4, 5])
      expect(seen.map((e) => e.epoch)).toEqual([1, 1, 1, 2, 2])
      expect(seen.map((e) => e.fenceSentinel)).toEqual([false, false, false, true, false])
      expect(idsOf(seen.flatMap((e) => e.batches))).toEqual([0, 1, 2, 3])
      await rejectsWith(first.close(), 'FENCED')
      await second.close()
    })

    it('resumes from a given position and validates its options', async () => {
      const root = freshRoot('follow-from')
      const writer = await root.writer({ schema, config: MEMTABLE })
      for (let i = 0; i < 4; i++) await writer.put(rows([[i, `r${i}`]]))
      const tailer = await root.tailer(writer.shardId)
      const positions: number[] = []
      for await (const entry of tailer.follow({ from: 3 })) {
        positions.push(entry.position)
        if (entry.position === 4) break
      }
      expect(positions).toEqual([3, 4])
      await rejectsWith(tailer.follow({ from: 0 }).next(), 'INVALID_INPUT')
      await rejectsWith(tailer.follow({ pollIntervalMs: -1 }).next(), 'INVALID_INPUT')
      const aborted = new AbortController()
      aborted.abort()
      expect(await tailer.follow({ signal: aborted.signal }).next()).toEqual({
        done: true,
        value: undefined,
      })
      await writer.close()
    })
  })
})
