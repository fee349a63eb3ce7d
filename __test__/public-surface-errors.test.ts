// Every public method and function, called with a bad argument (or in a
// state that refuses it), fails with a MemWalError carrying a known code:
// nothing escapes as a plain Error. The surface is read from the exports and
// their prototypes, so a new method without a row fails the first test.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tableFromArrays } from 'apache-arrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as api from '../ts/index.js'
import { MemWalError, type MemWalErrorCode } from '../ts/index.js'
import { events, memoryRoot, tempRoot, WAL_ONLY } from './helpers.js'

const schema = events(0, 1).schema
const MEMTABLE = { maxWalFlushIntervalMs: null, statsLogIntervalMs: null } as const
const CLASSES = ['ShardWriter', 'ShardReader', 'WalTailer', 'ShardWriterConfig'] as const
/** Exports that are not behaviour to call. */
const NOT_CALLABLE = new Set(['MemWalError'])

/** `Export.method` for every method, getter and static of the public classes; `name` for functions. */
function publicSurface(): string[] {
  const names: string[] = []
  for (const [name, value] of Object.entries(api)) {
    if (typeof value !== 'function' || NOT_CALLABLE.has(name)) continue
    if (!(CLASSES as readonly string[]).includes(name)) {
      names.push(name)
      continue
    }
    for (const member of Object.getOwnPropertyNames(value.prototype)) {
      if (member !== 'constructor') names.push(`${name}.${member}`)
    }
    for (const member of Object.getOwnPropertyNames(value)) {
      if (!['length', 'name', 'prototype'].includes(member)) names.push(`${name}.${member}`)
    }
  }
  return names.sort()
}

interface Ctx {
  /** MemTable mode, no primary key, open. */
  writer: api.ShardWriter
  walOnly: api.ShardWriter
  closed: api.ShardWriter
  /** Holds an unflushed row; another writer has claimed its shard. */
  fenced: api.ShardWriter
  reader: api.ShardReader
  tailer: api.WalTailer
  /** A tailer of a shard whose newest manifest is garbage. */
  damaged: api.WalTailer
  config: api.ShardWriterConfig
}

const local = tempRoot()
let ctx: Ctx

beforeAll(async () => {
  const root = memoryRoot('surface')
  const writer = await api.openShardWriter(root, { schema, config: MEMTABLE })
  await writer.put(events(0, 3))
  const walOnly = await api.openShardWriter(memoryRoot('surface-wal'), { schema, config: WAL_ONLY })
  const closed = await api.openShardWriter(memoryRoot('surface-closed'), {
    schema,
    config: WAL_ONLY,
  })
  await closed.close()
  const fencedRoot = memoryRoot('surface-fenced')
  const fenced = await api.openShardWriter(fencedRoot, { schema, config: MEMTABLE })
  await fenced.put(events(0, 1))
  const successor = await api.openShardWriter(fencedRoot, {
    schema,
    shardId: fenced.shardId,
    config: MEMTABLE,
  })
  await successor.close()
  const broken = await api.openShardWriter(local.uri, { schema, config: WAL_ONLY })
  await broken.close()
  const manifestDir = join(local.dir, '_mem_wal', broken.shardId, 'manifest')
  writeFileSync(join(manifestDir, `01${'0'.repeat(62)}.binpb`), Buffer.from([0xff, 0xff, 0xff]))
  ctx = {
    writer,
    walOnly,
    closed,
    fenced,
    reader: await api.openShardReader(root, writer.shardId),
    tailer: await api.openWalTailer(root, writer.shardId),
    damaged: await api.openWalTailer(local.uri, broken.shardId),
    config: api.ShardWriterConfig.defaults(),
  }
})

afterAll(async () => {
  await ctx?.writer.close()
  await ctx?.walOnly.close()
  local.cleanup()
})

const FILTER = { filter: 'nope = 1' }

/** A call that must fail, and the code it must fail with. */
const ROWS: Record<string, [(c: Ctx) => unknown, MemWalErrorCode]> = {
  'ShardWriter.put': [(c) => c.writer.put({} as never), 'INVALID_INPUT'],
  'ShardWriter.delete': [
    (c) => c.writer.delete(tableFromArrays({ id: BigInt64Array.from([1n]) })),
    'INVALID_INPUT',
  ],
  'ShardWriter.stats': [(c) => c.closed.stats(), 'CLOSED'],
  'ShardWriter.health': [(c) => c.closed.health(), 'CLOSED'],
  'ShardWriter.walStats': [(c) => c.closed.walStats(), 'CLOSED'],
  'ShardWriter.manifest': [(c) => c.closed.manifest(), 'CLOSED'],
  'ShardWriter.checkFenced': [(c) => c.fenced.checkFenced(), 'FENCED'],
  'ShardWriter.memtableStats': [(c) => c.walOnly.memtableStats(), 'WAL_ONLY_MODE'],
  'ShardWriter.scan': [(c) => c.writer.scan(FILTER), 'INVALID_INPUT'],
  'ShardWriter.forceSealActive': [(c) => c.walOnly.forceSealActive(), 'WAL_ONLY_MODE'],
  'ShardWriter.waitForFlushDrain': [(c) => c.walOnly.waitForFlushDrain(), 'WAL_ONLY_MODE'],
  'ShardWriter.close': [(c) => c.fenced.close(), 'FENCED'],
  'ShardReader.scan': [(c) => c.reader.scan(FILTER), 'INVALID_INPUT'],
  'ShardReader.scanStream': [
    async (c) => {
      for await (const _ of c.reader.scanStream(FILTER)) {
        // draining
      }
    },
    'INVALID_INPUT',
  ],
  'WalTailer.nextPosition': [(c) => c.damaged.nextPosition(), 'CORRUPT'],
  'WalTailer.readEntry': [(c) => c.tailer.readEntry(Number.NaN), 'INVALID_INPUT'],
  'WalTailer.follow': [(c) => c.tailer.follow({ from: 0 }).next(), 'INVALID_INPUT'],
  'ShardWriterConfig.from': [
    () => api.ShardWriterConfig.from({ nope: 1 } as never),
    'INVALID_CONFIG',
  ],
  'ShardWriterConfig.with': [(c) => c.config.with('nope' as never, 1 as never), 'INVALID_CONFIG'],
  openShardWriter: [
    () => api.openShardWriter(memoryRoot('x'), { schema: 1 as never }),
    'INVALID_INPUT',
  ],
  openShardReader: [
    () => api.openShardReader(memoryRoot('x'), '7c3a5f3e-8f43-4d2b-9a56-0b1e2a3c4d5e'),
    'NOT_FOUND',
  ],
  openWalTailer: [() => api.openWalTailer('', 'x'), 'INVALID_INPUT'],
}
// Every `with…` setter of the builder refuses a value of the wrong type.
for (const name of Object.getOwnPropertyNames(api.ShardWriterConfig.prototype)) {
  if (/^with[A-Z]/.test(name)) {
    ROWS[`ShardWriterConfig.${name}`] = [
      (c) => (c.config as unknown as Record<string, (v: unknown) => unknown>)[name]('bad'),
      'INVALID_CONFIG',
    ]
  }
}

/** Members that take no argument and have no state to refuse: they must simply work. */
const NO_FAILURE: Record<string, (c: Ctx) => unknown> = {
  'ShardWriter.isOpen': (c) => c.writer.isOpen(),
  'ShardWriter.config': (c) => c.writer.config,
  'ShardReader.generations': (c) => c.reader.generations(),
  'ShardReader.tailPositions': (c) => c.reader.tailPositions(),
  'WalTailer.firstPosition': (c) => c.tailer.firstPosition(),
  'ShardWriterConfig.defaults': () => api.ShardWriterConfig.defaults(),
  'ShardWriterConfig.toOptions': (c) => c.config.toOptions(),
  'ShardWriterConfig.toNative': (c) => c.config.toNative(),
}

const KNOWN_CODES: readonly MemWalErrorCode[] = [
  'INVALID_INPUT',
  'INVALID_CONFIG',
  'SCHEMA_MISMATCH',
  'FENCED',
  'WAL_ONLY_MODE',
  'CLOSED',
  'IO',
  'CORRUPT',
  'NOT_FOUND',
  'INTERNAL',
]

describe('every public method fails with a typed MemWalError', () => {
  it('has a row for every public method and function, and none for a removed one', () => {
    const covered = [...Object.keys(ROWS), ...Object.keys(NO_FAILURE)].sort()
    expect(covered).toEqual(publicSurface())
  })

  for (const [name, [act, code]] of Object.entries(ROWS)) {
    it(`${name} → ${code}`, async () => {
      let caught: unknown
      try {
        await act(ctx)
      } catch (error) {
        caught = error
      }
      expect(caught, `${name} threw ${String(caught)}`).toBeInstanceOf(MemWalError)
      const error = caught as MemWalError
      expect(KNOWN_CODES).toContain(error.code)
      expect(error.code, error.message).toBe(code)
      expect(error.message).not.toMatch(/^\[memwal:/)
    })
  }

  for (const [name, act] of Object.entries(NO_FAILURE)) {
    it(`${name} works`, async () => {
      await act(ctx)
    })
  }
})
