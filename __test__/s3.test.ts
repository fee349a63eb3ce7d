// s3:// specifics against the run's moto server (started by global-setup.ts;
// the writer, tailer and reader suites also run on S3): storageOptions reach
// the writer, the tailer and the shard reader, bad ones are INVALID_CONFIG,
// and secrets never reach an error.
import { once } from 'node:events'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { defaultStorageOptions } from '../index.js'
import { abortableOpen } from '../ts/abort.js'
import {
  MemWalError,
  openShardReader,
  openShardWriter,
  openWalTailer,
  type StorageOptions,
} from '../ts/index.js'
import { checkStorageOptions } from '../ts/writer.js'
import { events, idsOf, memoryRoot, rejectsWith, s3StorageOptions } from './helpers.js'

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

  it('credentials in an endpoint URL never reach an error or a printed option object', async () => {
    const port = await freePort() // nothing listens here
    const endpoint = `http://AKIA-ID:${SECRET}@127.0.0.1:${port}`
    const options: StorageOptions = { ...storageOptions, endpoint, maxRetries: 0 }
    const schema = events(0, 1).schema
    // One at a time: an open started early would reject with no handler
    // attached while an earlier one is still awaited.
    const opens = [
      () => openShardWriter(`s3://${BUCKET}/x`, { schema, storageOptions: options }),
      () => openShardReader(`s3://${BUCKET}/x`, crypto.randomUUID(), { storageOptions: options }),
      () =>
        openWalTailer(`s3://${BUCKET}/x`, crypto.randomUUID(), { storageOptions: options }).then(
          (tailer) => tailer.nextPosition(),
        ),
    ]
    for (const open of opens) {
      const error = await rejectsWith(open(), 'IO')
      for (const text of [error.message, inspect(error), JSON.stringify(error), String(error)]) {
        expect(text).not.toContain(SECRET)
        expect(text).not.toContain('AKIA-ID')
      }
      // The endpoint is named, without what it carried before the host.
      expect(error.message).toContain(`http://127.0.0.1:${port}`)
    }
    const checked = checkStorageOptions(options)
    for (const text of [inspect(checked), JSON.stringify(checked), String(checked)]) {
      expect(text).not.toContain(SECRET)
      expect(text).not.toContain('AKIA-ID')
      expect(text).toContain('<redacted>@127.0.0.1')
    }
  })
})

/** A store at `endpoint` for s3://bucket/…, with fake credentials and `limits`. */
function brokenStore(endpoint: string, limits: StorageOptions = {}): StorageOptions {
  return {
    endpoint,
    allowHttp: true,
    region: 'us-east-1',
    accessKeyId: 'fake',
    secretAccessKey: 'fake',
    ...limits,
  }
}

/** Limits that make a silent store fail an open in about a second. */
const QUICK: StorageOptions = {
  timeoutMs: 300,
  connectTimeoutMs: 300,
  retryTimeoutMs: 500,
  maxRetries: 1,
}

describe('s3:// roots on broken endpoints', () => {
  // Answers 200 (with the headers of an empty object) to every request; past
  // LIMIT it answers 404 so that a search that does not stop still ends.
  const LIMIT = 20_000
  let yesServer: HttpServer
  let yes = ''
  const requests = { HEAD: 0, other: 0 }
  // Accepts connections and never answers.
  let silentServer: Server
  let silent = ''
  const sockets: Socket[] = []

  beforeAll(async () => {
    yesServer = createHttpServer((request, response) => {
      if (request.method === 'HEAD') requests.HEAD++
      else requests.other++
      response.writeHead(requests.HEAD + requests.other > LIMIT ? 404 : 200, {
        'content-length': '0',
        'last-modified': new Date(0).toUTCString(),
        etag: '"0"',
      })
      response.end()
    })
    yesServer.listen(0, '127.0.0.1')
    await once(yesServer, 'listening')
    yes = `http://127.0.0.1:${(yesServer.address() as { port: number }).port}`
    silentServer = createServer((socket) => {
      sockets.push(socket)
      socket.on('error', () => undefined)
    })
    silentServer.listen(0, '127.0.0.1')
    await once(silentServer, 'listening')
    silent = `http://127.0.0.1:${(silentServer.address() as { port: number }).port}`
  })

  afterAll(() => {
    for (const socket of sockets) socket.destroy()
    yesServer.closeAllConnections()
    yesServer.close()
    silentServer.close()
  })

  it('a store that answers 200 to everything fails each open with IO after a bounded number of HEADs', async () => {
    const schema = events(0, 1).schema
    const storage = brokenStore(yes)
    const root = 's3://yes-bucket/shards'
    // The writer and reader probe manifest versions with HEADs and catch the
    // lie; the tailer's open lists the manifest versions, and the LIST's
    // empty 200 answer is refused as an invalid listing.
    const lie = /reports objects that do not exist/
    const opens: [string, () => Promise<unknown>, RegExp][] = [
      ['openShardWriter', () => openShardWriter(root, { schema, storageOptions: storage }), lie],
      [
        'openShardReader',
        () => openShardReader(root, crypto.randomUUID(), { storageOptions: storage }),
        lie,
      ],
      [
        'openWalTailer',
        () => openWalTailer(root, crypto.randomUUID(), { storageOptions: storage }),
        /invalid list response/,
      ],
    ]
    for (const [name, open, message] of opens) {
      requests.HEAD = 0
      requests.other = 0
      const error = await rejectsWith(open(), 'IO')
      expect(error.message, name).toMatch(message)
      if (message === lie) expect(error.message, name).toContain(root)
      expect(requests.HEAD, name).toBeLessThan(200)
    }
  })

  it('a store that accepts connections and never answers fails an open within its timeouts', async () => {
    const schema = events(0, 1).schema
    const started = Date.now()
    await rejectsWith(
      openShardWriter('s3://silent-bucket/x', {
        schema,
        storageOptions: brokenStore(silent, QUICK),
      }),
      'IO',
    )
    await rejectsWith(
      openShardReader('s3://silent-bucket/x', crypto.randomUUID(), {
        storageOptions: brokenStore(silent, QUICK),
      }),
      'IO',
    )
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('an aborted open rejects at once with an AbortError, also while the store is silent', async () => {
    const schema = events(0, 1).schema
    const storageOptions = brokenStore(silent) // default timeouts: 30 s per request
    const opens: [string, (signal: AbortSignal) => Promise<unknown>][] = [
      [
        'openShardWriter',
        (signal) => openShardWriter('s3://silent-bucket/x', { schema, storageOptions, signal }),
      ],
      [
        'openShardReader',
        (signal) =>
          openShardReader('s3://silent-bucket/x', crypto.randomUUID(), { storageOptions, signal }),
      ],
      [
        'openWalTailer',
        (signal) =>
          openWalTailer('s3://silent-bucket/x', crypto.randomUUID(), { storageOptions, signal }),
      ],
    ]
    for (const [name, open] of opens) {
      const controller = new AbortController()
      const connected = once(silentServer, 'connection')
      const opening = open(controller.signal)
      await connected // the open is waiting on the store now
      const started = Date.now()
      controller.abort(new Error('changed my mind'))
      const error = await rejectsWith(opening, 'CLOSED')
      expect(Date.now() - started, name).toBeLessThan(1_000)
      expect(error.name).toBe('AbortError')
      expect(error.message).toBe(`${name} was aborted`)
      expect((error.cause as Error).message).toBe('changed my mind')
    }
    // Already aborted: refused before anything is asked of the store.
    const aborted = AbortSignal.abort()
    await rejectsWith(
      openWalTailer('s3://silent-bucket/x', crypto.randomUUID(), {
        storageOptions,
        signal: aborted,
      }),
      'CLOSED',
    )
    await rejectsWith(
      openShardWriter('s3://silent-bucket/x', { schema, storageOptions, signal: aborted }),
      'CLOSED',
    )
  })

  it('what an open opens after its abort is closed, never returned', async () => {
    // Completed in the same turn as the abort.
    const sameTurn = new AbortController()
    const closedSameTurn: string[] = []
    const first = abortableOpen(
      'openShardWriter',
      sameTurn.signal,
      async () => 'writer-1',
      async (opened) => closedSameTurn.push(opened),
    )
    sameTurn.abort()
    await rejectsWith(first, 'CLOSED')
    expect(closedSameTurn).toEqual(['writer-1'])

    // Completed after the abort had already rejected the open.
    const late = new AbortController()
    let finish: (opened: string) => void = () => undefined
    const closedLate: string[] = []
    const second = abortableOpen(
      'openShardWriter',
      late.signal,
      () => new Promise<string>((resolve) => (finish = resolve)),
      async (opened) => closedLate.push(opened),
    )
    late.abort()
    await rejectsWith(second, 'CLOSED')
    expect(closedLate).toEqual([])
    finish('writer-2')
    await new Promise((resolve) => setImmediate(resolve))
    expect(closedLate).toEqual(['writer-2'])
  })

  it('an aborted writer open fences nobody', async () => {
    const root = memoryRoot('abort-fences-nobody')
    const schema = events(0, 1).schema
    const writer = await openShardWriter(root, { schema })
    await writer.put(events(0, 1))
    await rejectsWith(
      openShardWriter(root, { schema, shardId: writer.shardId, signal: AbortSignal.abort() }),
      'CLOSED',
    )
    await writer.put(events(1, 1))
    await writer.close()
    const reader = await openShardReader(root, writer.shardId)
    expect(idsOf((await reader.scan()).batches)).toEqual([0, 1])
  })

  it('the documented defaults of the limits are the ones in force', () => {
    expect(defaultStorageOptions()).toEqual({
      timeoutMs: 30_000,
      connectTimeoutMs: 5_000,
      retryTimeoutMs: 60_000,
      maxRetries: 10,
    })
  })

  it('timeouts and retries must be integers in range', async () => {
    const schema = events(0, 1).schema
    for (const limits of [
      { timeoutMs: 0 },
      { connectTimeoutMs: -1 },
      { retryTimeoutMs: 1.5 },
      { maxRetries: -1 },
      { timeoutMs: '30s' as unknown as number },
    ]) {
      await rejectsWith(
        openShardWriter('s3://silent-bucket/x', {
          schema,
          storageOptions: brokenStore(silent, limits),
        }),
        'INVALID_CONFIG',
      )
    }
    await rejectsWith(
      openShardWriter('s3://silent-bucket/x', { schema, signal: 'stop' as unknown as AbortSignal }),
      'INVALID_CONFIG',
    )
  })
})
