// MEMWAL_LOG=info prints the periodic stats line of a writer to stderr.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { expect, it } from 'vitest'

const CHILD = `
const { openShardWriter } = require(${JSON.stringify(resolve(__dirname, '../dist/index.js'))})
const { tableFromArrays } = require('apache-arrow')
const table = tableFromArrays({ id: BigInt64Array.from([1n, 2n]) })
openShardWriter('memory://logging', { schema: table.schema, config: { statsLogIntervalMs: 20 } })
  .then((w) => w.put(table))
  .then(() => setTimeout(() => process.exit(3), 10000))
`

it('MEMWAL_LOG=info shows the periodic stats summary on stderr', async () => {
  const child = spawn(process.execPath, ['-e', CHILD], {
    cwd: resolve(__dirname, '..'),
    env: { ...process.env, MEMWAL_LOG: 'info' },
  })
  const line = await new Promise<string>((resolveLine, reject) => {
    let seen = ''
    child.stderr.on('data', (chunk: Buffer) => {
      seen += chunk.toString()
      const match = seen.split('\n').find((l) => l.includes('shard writer stats'))
      if (match) resolveLine(match)
    })
    child.on('exit', (code) =>
      reject(new Error(`child exited (${code}) before logging stats:\n${seen}`)),
    )
  })
  child.kill()
  expect(line).toContain('puts=1')
  expect(line).toContain('rows=2')
})

const SECRET = 'SECRET-in-endpoint-77'

// A store that refuses connections, reached through an endpoint carrying
// credentials; every retry is logged (object_store logs at INFO).
const LEAKY_CHILD = `
const { openShardWriter } = require(${JSON.stringify(resolve(__dirname, '../dist/index.js'))})
const { tableFromArrays } = require('apache-arrow')
const { createServer } = require('node:net')
const probe = createServer().listen(0, '127.0.0.1', () => {
  const port = probe.address().port
  probe.close(() => {
    const table = tableFromArrays({ id: BigInt64Array.from([1n]) })
    openShardWriter('s3://leaky-bucket/x', {
      schema: table.schema,
      storageOptions: {
        endpoint: 'http://AKIA-ID:${SECRET}@127.0.0.1:' + port,
        allowHttp: true,
        region: 'us-east-1',
        accessKeyId: 'fake',
        secretAccessKey: 'fake',
        maxRetries: 2,
      },
    }).then(
      () => process.exit(2),
      (error) => {
        console.error('open failed: ' + error.message)
        process.exit(0)
      },
    )
  })
})
`

it('credentials in an endpoint URL never reach the log, at any level', async () => {
  const child = spawn(process.execPath, ['-e', LEAKY_CHILD], {
    cwd: resolve(__dirname, '..'),
    env: { ...process.env, MEMWAL_LOG: 'trace' },
  })
  let seen = ''
  child.stderr.on('data', (chunk: Buffer) => {
    seen += chunk.toString()
  })
  child.stdout.on('data', (chunk: Buffer) => {
    seen += chunk.toString()
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  expect(code, seen).toBe(0)
  expect(seen).toMatch(/retry 1 of 2/)
  expect(seen).toMatch(/endpoint carries user:password@/)
  expect(seen).toContain('open failed: ')
  expect(seen).not.toContain(SECRET)
  expect(seen).not.toContain('AKIA-ID')
})
