// MEMWAL_LOG=info prints the periodic stats line of a writer to stderr.
import { spawn } from 'node:child_process'
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
