// s3:// roots against moto's S3-compatible server on loopback (pip
// `moto[server]`, installed by .ci/run): storageOptions reach the writer,
// the tailer and the shard reader, and secrets never reach an error.
import { type ChildProcess, spawn } from 'node:child_process'
import { connect, createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  MemWalError,
  openShardReader,
  openShardWriter,
  openWalTailer,
  type StorageOptions,
} from '../ts/index.js'
import { events, idsOf, rejectsWith } from './helpers.js'

const BUCKET = 'memwal-ts-test'
const SECRET = 'SECRET-never-printed-42'
let moto: ChildProcess | undefined
let storageOptions: StorageOptions

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

beforeAll(async () => {
  const port = await freePort()
  moto = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: 'ignore',
  })
  const exited = new Promise<never>((_, reject) =>
    moto?.once('exit', (code) => reject(new Error(`moto exited with ${code}`))),
  )
  // moto announces nothing when ready: poll until it accepts connections.
  const deadline = Date.now() + 60_000
  while (!(await Promise.race([accepts(port), exited]))) {
    if (Date.now() > deadline) throw new Error('moto did not start')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const endpoint = `http://127.0.0.1:${port}`
  const created = await fetch(`${endpoint}/${BUCKET}`, { method: 'PUT' })
  expect(created.status).toBe(200)
  storageOptions = {
    region: 'us-east-1',
    endpoint,
    accessKeyId: 'memwal',
    secretAccessKey: SECRET,
    allowHttp: true,
  }
}, 90_000)

afterAll(() => {
  moto?.kill()
})

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
