// Durable puts are queued by the native call and acknowledged in bulk when
// the WAL task reports an entry persisted (ts/durability.ts). These tests
// pin down what callers rely on: a put resolves only once the WAL holds
// it, a pending put keeps Node alive while an idle writer does not, and
// close() or a failure settles every waiting put.
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DurableWaits } from '../ts/durability.js'
import { MemWalError, openShardReader } from '../ts/index.js'
import {
  BACKENDS,
  backendRoot,
  events,
  idsOf,
  type TestRoot,
  tempRoot,
  WAL_ONLY,
} from './helpers.js'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

describe.each(BACKENDS)('%s backend', (kind) => {
  function freshRoot(label: string): TestRoot {
    const root = backendRoot(kind, label)
    cleanups.push(root.cleanup)
    return root
  }

  it('thousands of puts in flight each resolve only once the WAL holds their batches', async () => {
    const root = freshRoot('bulk-acks')
    const writer = await root.writer({ schema: events(0, 1).schema, config: WAL_ONLY })
    const puts = 3000
    const seen = await Promise.all(
      Array.from({ length: puts }, async (_, i) => {
        const result = await writer.put(events(i, 1))
        return { end: result.batchPositions.end, durable: writer.walStats().durableBatchPosition }
      }),
    )
    for (const { end, durable } of seen) expect(durable).toBeGreaterThanOrEqual(end)
    expect(writer.stats().putCount).toBe(puts)
    await writer.close()
    const tailer = await root.tailer(writer.shardId)
    const ids: number[] = []
    for (let p = await tailer.firstPosition(); ; p++) {
      const entry = await tailer.readEntry(p)
      if (!entry) break
      ids.push(...idsOf(entry.batches))
    }
    expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: puts }, (_, i) => i))
  })

  it('durable puts admitted after a backpressure wait resolve through the same listener, once in the WAL', async () => {
    const root = freshRoot('backpressured-acks')
    // A one-byte MemTable freezes at every put and the one-byte budget holds
    // every later put until a Parquet flush (milliseconds, where a put call
    // takes microseconds) frees it: each waits natively to be admitted, then
    // waits for the WAL like any other put.
    const writer = await root.writer({
      schema: events(0, 1).schema,
      config: { maxUnflushedMemtableBytes: 1, maxMemtableSize: 1, statsLogIntervalMs: null },
    })
    const puts = 12
    const seen = await Promise.all(
      Array.from({ length: puts }, async (_, i) => {
        const result = await writer.put(events(i, 1))
        return { end: result.batchPositions.end, durable: writer.walStats().durableBatchPosition }
      }),
    )
    for (const { end, durable } of seen) expect(durable).toBeGreaterThanOrEqual(end)
    expect(seen.map((s) => s.end).sort((a, b) => a - b)).toEqual(
      Array.from({ length: puts }, (_, i) => i + 1),
    )
    expect(writer.stats().backpressureCount).toBeGreaterThan(0)
    expect(writer.stats().putCount).toBe(puts)
    await writer.close()
  })

  it('close() appends the puts still queued and each of them resolves', async () => {
    const root = freshRoot('close-settles')
    const writer = await root.writer({
      schema: events(0, 1).schema,
      config: { ...WAL_ONLY, maxWalBufferSize: 1 << 30 },
    })
    const pending = Array.from({ length: 50 }, (_, i) => writer.put(events(i, 1)))
    await writer.close()
    const results = await Promise.all(pending)
    expect(results.map((r) => r.batchPositions.start)).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    )
  })
})

describe('DurableWaits', () => {
  const noNative = { hold: () => undefined, appendNow: () => undefined, pin: () => undefined }

  it('a put registered after a later position still resolves when the WAL reaches it, and a stop rejects only the puts beyond', async () => {
    const waits = new DurableWaits('shard', noNative)
    // A backpressured put admitted at end 2 may register after a put
    // admitted later at end 3.
    const later = waits.wait(3).then(
      () => 'resolved',
      (e: unknown) => e,
    )
    const earlier = waits.wait(2).then(() => 'resolved')
    waits.progress(2, null, true)
    expect(await earlier).toBe('resolved')
    const error = await later
    expect(error).toBeInstanceOf(MemWalError)
    expect((error as MemWalError).code).toBe('CLOSED')
  })

  it('a failure rejects every waiting put with its code, and later waits too', async () => {
    const waits = new DurableWaits('shard', noNative)
    const settled = (end: number) => waits.wait(end).catch((e: unknown) => e)
    const waiting = [settled(1), settled(5)]
    // The binding's failures are Errors with `code` and `shardId` set.
    const fenced = Object.assign(new Error('A newer writer claimed the shard'), {
      code: 'FENCED',
      shardId: 'shard',
    })
    waits.progress(0, fenced, false)
    const errors = await Promise.all([...waiting, settled(7)])
    expect(errors.map((e) => (e as MemWalError).code)).toEqual(['FENCED', 'FENCED', 'FENCED'])
  })
})

const CHILD = `
const { openShardWriter } = require(${JSON.stringify(resolve(__dirname, '../dist/index.js'))})
const { tableFromArrays } = require('apache-arrow')
const table = tableFromArrays({ id: BigInt64Array.from([1n, 2n]) })
openShardWriter(process.argv[1], { schema: table.schema, config: { enableMemtable: false } })
  .then((w) => w.put(table).then((r) =>
    console.log(JSON.stringify({ end: r.batchPositions.end, durable: w.walStats().durableBatchPosition }))))
`

/** Run `script` in a child Node with `arg`; it must exit by itself within 20 s. */
async function runToExit(
  script: string,
  arg: string,
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['-e', script, arg], { cwd: resolve(__dirname, '..') })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString()
  })
  const code = await new Promise<number | null>((done, fail) => {
    const timer = setTimeout(() => {
      child.kill()
      fail(new Error(`the child did not exit on its own; stdout: ${out} stderr: ${err}`))
    }, 20_000)
    child.on('exit', (exitCode) => {
      clearTimeout(timer)
      done(exitCode)
    })
  })
  return { code, out, err }
}

it('a waiting durable put keeps Node running until it resolves; an idle unclosed writer does not', async () => {
  const root = tempRoot()
  cleanups.push(root.cleanup)
  // Nothing but the put is pending in the child: without the hold Node
  // would exit before the WAL write completes and print nothing; without
  // the release it would never exit (the writer is left open).
  const { code, out, err } = await runToExit(CHILD, root.uri)
  expect(err).toBe('')
  expect(code).toBe(0)
  expect(JSON.parse(out)).toEqual({ end: 1, durable: 1 })
})

// Non-durable puts, the writer never closed, main returns: memtable mode
// with the append timer off, so only the exit hook can get the rows into
// the WAL before Node exits.
const NON_DURABLE_CHILD = `
const { openShardWriter } = require(${JSON.stringify(resolve(__dirname, '../dist/index.js'))})
const { tableFromArrays } = require('apache-arrow')
const rows = (i) => tableFromArrays({ id: BigInt64Array.from([BigInt(i)]) })
async function main() {
  const writer = await openShardWriter(process.argv[1], {
    schema: rows(0).schema,
    config: { durableWrite: false, maxWalFlushIntervalMs: null, statsLogIntervalMs: null },
  })
  for (let i = 0; i < 100; i++) await writer.put(rows(i))
  console.log(writer.shardId)
}
main()
`

it('non-durable puts of a writer never closed reach the WAL when main returns', async () => {
  const root = tempRoot()
  cleanups.push(root.cleanup)
  const { code, out, err } = await runToExit(NON_DURABLE_CHILD, root.uri)
  expect(err).toBe('')
  expect(code).toBe(0)
  const reader = await openShardReader(root.uri, out.trim())
  const ids = idsOf((await reader.scan()).batches)
  expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i))
})
