// WAL entries are plain Arrow IPC streams: a reader we did not write opens them from disk.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tableFromIPC } from 'apache-arrow'
import { afterAll, expect, it } from 'vitest'
import { openShardWriter } from '../ts/index.js'
import { events, tempRoot, WAL_ONLY } from './helpers.js'

const local = tempRoot()
afterAll(() => local.cleanup())

it('apache-arrow tableFromIPC reads a WAL entry file straight from disk', async () => {
  const table = events(0, 25)
  const writer = await openShardWriter(local.uri, { schema: table.schema, config: WAL_ONLY })
  await writer.put(table)
  await writer.close()

  const walDir = join(local.dir, '_mem_wal', writer.shardId, 'wal')
  const names = readdirSync(walDir)
  expect(names).toEqual([`1${'0'.repeat(63)}.arrow`])
  const fromDisk = tableFromIPC(readFileSync(join(walDir, names[0])))
  expect(fromDisk.schema.metadata.get('writer_epoch')).toBe('1')
  expect(fromDisk.numRows).toBe(25)
  expect(fromDisk.toArray().map((row) => row.toJSON())).toEqual(
    table.toArray().map((row) => row.toJSON()),
  )
})
