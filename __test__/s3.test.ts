// s3:// specifics against the run's moto server (started by global-setup.ts;
// the writer, tailer and reader suites also run on S3): storageOptions reach
// the writer, the tailer and the shard reader, bad ones are INVALID_CONFIG,
// and secrets never reach an error.
import { createServer } from 'node:net'
import { describe, expect, inject, it } from 'vitest'
import {
  MemWalError,
  openShardReader,
  openShardWriter,
  openWalTailer,
  type StorageOptions,
} from '../ts/index.js'
import { events, idsOf, rejectsWith, s3StorageOptions } from './helpers.js'

const SECRET = 'SECRET-never-printed-42'
const BUCKET = inject('memwalS3').bucket
// moto accepts any credentials: use a recognisable secret to look for in errors.
const storageOptions: StorageOptions = { ...s3StorageOptions(), secretAccessKey: SECRET }

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

describe('s3:// roots', () => {
  it('writer, tailer and shard reader work on S3 with storageOptions', async () => {
    const root = `s3://${BUCKET}/ts-${crypto.randomUUID()}`
    const schema = events(0, 1).schema
    const writer = await openShardWriter(root, {
      schema,
      storageOptions,
      config: { maxWalFlushIntervalMs: null },
    })
    await writer.put(events(0, 10))
    await writer.forceSealActive()
    await writer.waitForFlushDrain()
    await writer.put(events(10, 5))
    const reader = await openShardReader(root, writer.shardId, { storageOptions })
    expect(reader.generations()).toHaveLength(1)
    expect(idsOf((await reader.scan()).batches)).toEqual(Array.from({ length: 15 }, (_, i) => i))
    const tailer = await openWalTailer(root, writer.shardId, { storageOptions })
    expect(await tailer.nextPosition()).toBe(3)
    // A second writer on S3 fences the first.
    const second = await openShardWriter(root, { schema, shardId: writer.shardId, storageOptions })
    await rejectsWith(writer.put(events(15, 1)), 'FENCED')
    await second.close()
  })

  it('a misspelt storageOptions name is INVALID_CONFIG, not a silent fall-back to AWS defaults', async () => {
    const root = `s3://${BUCKET}/ts-${crypto.randomUUID()}`
    const writer = await openShardWriter(root, {
      schema: events(0, 1).schema,
      storageOptions,
      config: { enableMemtable: false, maxWalFlushIntervalMs: null },
    })
    await writer.put(events(0, 1))
    await writer.close()
    await rejectsWith(
      openWalTailer(root, writer.shardId, { storageOption: storageOptions } as never),
      'INVALID_CONFIG',
    )
    await rejectsWith(
      openShardReader(root, writer.shardId, { storageOption: storageOptions } as never),
      'INVALID_CONFIG',
    )
  })

  it('bad storageOptions are INVALID_CONFIG and secrets stay out of errors', async () => {
    const schema = events(0, 1).schema
    await rejectsWith(
      openShardWriter(`s3://${BUCKET}/x`, {
        schema,
        storageOptions: { allowHttp: 'yes' } as unknown as StorageOptions,
      }),
      'INVALID_CONFIG',
    )
    await rejectsWith(
      openShardWriter(`s3://${BUCKET}/x`, {
        schema,
        storageOptions: { password: 'x' } as unknown as StorageOptions,
      }),
      'INVALID_CONFIG',
    )
    const port = await freePort() // nothing listens here
    let caught: unknown
    try {
      await openShardWriter(`s3://${BUCKET}/x`, {
        schema,
        storageOptions: { ...storageOptions, endpoint: `http://127.0.0.1:${port}` },
        config: { maxWalPersistRetries: 0 },
      })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(MemWalError)
    expect(String((caught as Error).message)).not.toContain(SECRET)
    expect(JSON.stringify(caught)).not.toContain(SECRET)
  })
})
