// Every bad input gets a typed error, and the process survives Rust panics.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Field, Int64, Schema, Table, tableFromArrays } from 'apache-arrow'
import { afterAll, describe, expect, it } from 'vitest'
import { __triggerPanicForTests } from '../index.js'
import { toMemWalError } from '../ts/errors.js'
import { MemWalError, openShardWriter, openWalTailer, ShardWriterConfig } from '../ts/index.js'
import { events, memoryRoot, rejectsWith, tempRoot, throwsWith, WAL_ONLY } from './helpers.js'

const local = tempRoot()
afterAll(() => local.cleanup())
const schema = events(0, 1).schema

describe('put input', () => {
  it('empty list, empty batch and wrong shapes are rejected without touching the WAL', async () => {
    const root = memoryRoot('badput')
    const writer = await openShardWriter(root, { schema, config: WAL_ONLY })
    const empty = await rejectsWith(writer.put([]), 'INVALID_INPUT')
    expect(empty.message).toBe('Cannot write empty batch list')
    const zero = await rejectsWith(writer.put(events(0, 0)), 'INVALID_INPUT')
    expect(zero.message).toMatch(/Cannot write empty batch list|Batch 0 is empty/)
    const emptyBatch = events(0, 2).batches[0].slice(0, 0)
    expect(emptyBatch.numRows).toBe(0)
    expect(
      (await rejectsWith(writer.put([events(0, 1).batches[0], emptyBatch]), 'INVALID_INPUT'))
        .message,
    ).toBe('Batch 1 is empty')
    const wrongType = tableFromArrays({ id: Float64Array.from([1]), name: ['x'] })
    const mismatch = await rejectsWith(writer.put(wrongType), 'SCHEMA_MISMATCH')
    expect(mismatch.message).toContain("field 0: expected 'id' Int64")
    await rejectsWith(
      writer.put(tableFromArrays({ id: BigInt64Array.from([1n]) })),
      'SCHEMA_MISMATCH',
    )
    const extra = tableFromArrays({ id: BigInt64Array.from([1n]), name: ['x'], more: ['y'] })
    expect((await rejectsWith(writer.put(extra), 'SCHEMA_MISMATCH')).message).toContain(
      "extra field 2 'more'",
    )
    await rejectsWith(writer.put({} as never), 'INVALID_INPUT')
    await rejectsWith(writer.put([{}] as never), 'INVALID_INPUT')
    await rejectsWith(
      writer.put([events(0, 1).batches[0], wrongType.batches[0]]),
      'SCHEMA_MISMATCH',
    )

    await writer.put(events(0, 1))
    expect(writer.walStats().entriesWritten).toBe(1)
    await writer.close()
  })

  it('nulls in a non-nullable field are a schema mismatch', async () => {
    const strict = new Schema([new Field('id', new Int64(), false)])
    const writer = await openShardWriter(memoryRoot('nulls'), { schema: strict, config: WAL_ONLY })
    const nullable = tableFromArrays({ id: [1n, null] as unknown as BigInt64Array })
    await rejectsWith(writer.put(nullable), 'SCHEMA_MISMATCH')
    await writer.close()
  })
})

describe('open options', () => {
  const cases: [string, object, string][] = [
    ['negative size', { maxWalBufferSize: -1 }, 'maxWalBufferSize'],
    ['zero batch capacity', { maxMemtableBatches: 0 }, 'maxMemtableBatches'],
    ['fractional count', { manifestScanBatchSize: 1.5 }, 'manifestScanBatchSize'],
    ['NaN', { maxMemtableSize: Number.NaN }, 'maxMemtableSize'],
    ['wrong type', { durableWrite: 'yes' }, 'durableWrite'],
    ['null for a non-nullable option', { maxWalBufferSize: null }, 'maxWalBufferSize'],
    ['zero interval', { maxWalFlushIntervalMs: 0 }, 'maxWalFlushIntervalMs'],
    ['too many retries', { maxWalPersistRetries: 1000 }, 'maxWalPersistRetries'],
    ['huge size', { maxMemtableSize: 2 ** 60 }, 'maxMemtableSize'],
    ['unknown option', { maxWalBufferBytes: 10 }, 'maxWalBufferBytes'],
  ]
  for (const [name, config, field] of cases) {
    it(`${name} is INVALID_CONFIG naming ${field}`, async () => {
      const error = await rejectsWith(
        openShardWriter(memoryRoot('cfg'), { schema, config: { ...WAL_ONLY, ...config } }),
        'INVALID_CONFIG',
      )
      expect(error.message).toContain(field)
    })
  }

  it('the builder rejects wrong types at once', () => {
    throwsWith(() => ShardWriterConfig.defaults().withMaxWalBufferSize(-5), 'INVALID_CONFIG')
    throwsWith(() => ShardWriterConfig.from({ nope: 1 } as never), 'INVALID_CONFIG')
    expect(ShardWriterConfig.defaults().withDurableWrite(false).toOptions().durableWrite).toBe(
      false,
    )
    expect(ShardWriterConfig.defaults().toOptions()).toMatchObject({
      durableWrite: true,
      maxWalBufferSize: 10 * 1024 * 1024,
      maxWalFlushIntervalMs: 100,
      maxMemtableBatches: 8000,
      maxUnflushedMemtableBytes: 1024 * 1024 * 1024,
      enableMemtable: true,
    })
  })

  it('every option has a with… setter that sets it, and its default comes from the core', () => {
    const defaults = ShardWriterConfig.defaults().toOptions()
    const names = Object.keys(defaults)
    expect(names.length).toBeGreaterThan(10)
    for (const name of names) {
      const setter = `with${name[0].toUpperCase()}${name.slice(1)}`
      const value = defaults[name as keyof typeof defaults]
      const changed = typeof value === 'boolean' ? !value : typeof value === 'string' ? 'zstd' : 7
      const config = (
        ShardWriterConfig.defaults() as unknown as Record<string, (v: unknown) => ShardWriterConfig>
      )[setter](changed)
      expect(config.toOptions()[name as keyof typeof defaults]).toBe(changed)
    }
  })

  it('options that did nothing are gone: naming one is INVALID_CONFIG', () => {
    for (const name of [
      'syncIndexedWrite',
      'asyncIndexBufferRows',
      'asyncIndexIntervalMs',
      'maxMemtableRows',
    ]) {
      const error = throwsWith(
        () => ShardWriterConfig.from({ [name]: 1 } as never),
        'INVALID_CONFIG',
      )
      expect(error.message).toContain(name)
    }
  })

  it('bad shard ids, roots, schemas and option names are rejected', async () => {
    for (const shardId of [
      'not-a-uuid',
      '../../etc/passwd',
      '00000000-0000-0000-0000-000000000000',
      '',
    ]) {
      await rejectsWith(
        openShardWriter(memoryRoot('id'), { schema, shardId, config: WAL_ONLY }),
        'INVALID_CONFIG',
      )
    }
    for (const root of ['ftp://host/x', 'file://relative/dir', 'memory://', '']) {
      await rejectsWith(openShardWriter(root, { schema, config: WAL_ONLY }), 'INVALID_INPUT')
    }
    await rejectsWith(
      openShardWriter(memoryRoot('s'), { schema: {} as never, config: WAL_ONLY }),
      'INVALID_INPUT',
    )
    await rejectsWith(
      openShardWriter(memoryRoot('s'), { schema: new Schema([]), config: WAL_ONLY }),
      'INVALID_INPUT',
    )
    await rejectsWith(
      openShardWriter(memoryRoot('s'), { schema, config: WAL_ONLY, shard: 'x' } as never),
      'INVALID_CONFIG',
    )
    await rejectsWith(
      openShardWriter(memoryRoot('s'), { schema, primaryKey: ['missing'], config: WAL_ONLY }),
      'INVALID_INPUT',
    )
    await rejectsWith(openWalTailer(memoryRoot('t'), 'nope'), 'INVALID_INPUT')
  })

  it('a doomed open does not fence the healthy writer', async () => {
    const root = memoryRoot('doomed')
    const healthy = await openShardWriter(root, { schema, config: WAL_ONLY })
    await rejectsWith(
      openShardWriter(root, {
        schema,
        shardId: healthy.shardId,
        config: { ...WAL_ONLY, maxMemtableBatches: 0 },
      }),
      'INVALID_CONFIG',
    )
    await healthy.checkFenced()
    await healthy.put(events(0, 1))
    await healthy.close()
  })
})

describe('corrupt storage', () => {
  it('a truncated or garbage WAL entry is CORRUPT with its position', async () => {
    const writer = await openShardWriter(local.uri, { schema, config: WAL_ONLY })
    await writer.put(events(0, 10))
    await writer.close()
    const walDir = join(local.dir, '_mem_wal', writer.shardId, 'wal')
    const [name] = readdirSync(walDir)
    const bits = (p: number) => p.toString(2).padStart(64, '0').split('').reverse().join('')
    const good = readFileSync(join(walDir, name))
    writeFileSync(join(walDir, `${bits(2)}.arrow`), good.subarray(0, good.length - 20))
    writeFileSync(join(walDir, `${bits(3)}.arrow`), Buffer.from('not arrow at all'))
    const tailer = await openWalTailer(local.uri, writer.shardId)
    expect((await tailer.readEntry(1))?.numRows).toBe(10)
    for (const position of [2, 3]) {
      const error = await rejectsWith(tailer.readEntry(position), 'CORRUPT')
      expect(error.message).toContain(`position ${position}`)
      expect(error.shardId).toBe(writer.shardId)
    }
    await rejectsWith(tailer.readEntry(0), 'INVALID_INPUT')
  })

  it('a garbage manifest makes open fail with CORRUPT', async () => {
    const writer = await openShardWriter(local.uri, { schema, config: WAL_ONLY })
    await writer.close()
    const manifestDir = join(local.dir, '_mem_wal', writer.shardId, 'manifest')
    const v2 = `01${'0'.repeat(62)}.binpb`
    writeFileSync(join(manifestDir, v2), Buffer.from([0xff, 0xff, 0xff]))
    await rejectsWith(
      openShardWriter(local.uri, { schema, shardId: writer.shardId, config: WAL_ONLY }),
      'CORRUPT',
    )
  })
})

describe('panics', () => {
  it('a synchronous Rust panic becomes an INTERNAL error and the process lives on', () => {
    let caught: unknown
    try {
      __triggerPanicForTests(false)
    } catch (error) {
      caught = error
    }
    const error = toMemWalError(caught)
    expect(error).toBeInstanceOf(MemWalError)
    expect(error.code).toBe('INTERNAL')
    expect(error.message).toContain('deliberate synchronous panic')
  })

  it('a panic inside a native future rejects its promise with INTERNAL', async () => {
    let caught: unknown
    try {
      await __triggerPanicForTests(true)
    } catch (error) {
      caught = error
    }
    const error = toMemWalError(caught)
    expect(error.code).toBe('INTERNAL')
    expect(error.message).toContain('deliberate asynchronous panic')
    // The addon still works afterwards.
    const writer = await openShardWriter(memoryRoot('after-panic'), { schema, config: WAL_ONLY })
    await writer.put(new Table(events(0, 1).batches))
    await writer.close()
  })
})
