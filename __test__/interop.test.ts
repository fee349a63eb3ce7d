// WAL entries are plain Arrow IPC streams: a reader we did not write opens them from disk.
import { createReadStream, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { RecordBatchReader, tableFromArrays, tableFromIPC } from 'apache-arrow'
import { afterAll, expect, it } from 'vitest'
import { openShardWriter } from '../ts/index.js'
import { events, ID_NAME_SCHEMA, idNameRows, tempRoot, WAL_ONLY } from './helpers.js'

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

it('apache-arrow RecordBatchReader streams every WAL entry file of a keyed shard from disk', async () => {
  const writer = await openShardWriter(local.uri, {
    schema: ID_NAME_SCHEMA,
    primaryKey: ['id'],
    config: WAL_ONLY,
  })
  await writer.put(
    idNameRows([
      [1, 'a'],
      [2, 'b'],
    ]),
  )
  await writer.put(idNameRows([[3, 'c']]))
  await writer.delete(tableFromArrays({ id: BigInt64Array.from([2n]) }))
  await writer.close()

  const walDir = join(local.dir, '_mem_wal', writer.shardId, 'wal')
  // Bit-reversed names: position p is the name's 64 digits read backwards.
  const byPosition = readdirSync(walDir)
    .map((name) => ({
      name,
      position: Number.parseInt(name.slice(0, 64).split('').reverse().join(''), 2),
    }))
    .sort((a, b) => a.position - b.position)
  expect(byPosition.map((e) => e.position)).toEqual([1, 2, 3])
  const rows: unknown[] = []
  for (const { name } of byPosition) {
    const reader = await RecordBatchReader.from(createReadStream(join(walDir, name)))
    await reader.open()
    expect(reader.schema.metadata.get('writer_epoch')).toBe('1')
    expect(reader.schema.fields.map((f) => f.name)).toEqual(['id', 'name', '_tombstone'])
    for await (const batch of reader) {
      for (const row of batch) rows.push(row.toJSON())
    }
  }
  expect(rows).toEqual([
    { id: 1n, name: 'a', _tombstone: false },
    { id: 2n, name: 'b', _tombstone: false },
    { id: 3n, name: 'c', _tombstone: false },
    { id: 2n, name: null, _tombstone: true },
  ])
})
