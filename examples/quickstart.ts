// memwal quickstart: durable Arrow writes to ./data, read back through the WAL tailer.
// Run with `npm start`.
import { resolve } from 'node:path'
import { tableFromArrays } from 'apache-arrow'
import { openShardWriter, openWalTailer } from 'memwal'

async function main(): Promise<void> {
  const root = resolve('data')
  const events = tableFromArrays({
    id: BigInt64Array.from([1n, 2n, 3n]),
    kind: ['signup', 'login', 'purchase'],
    amount: Float64Array.from([0, 0, 42.5]),
  })

  // WAL-only mode: every put is appended to the write-ahead log, nothing else.
  const writer = await openShardWriter(root, {
    schema: events.schema,
    config: { enableMemtable: false },
  })
  console.log(`opened shard ${writer.shardId} at epoch ${writer.epoch} under ${root}`)

  const first = await writer.put(events)
  const second = await writer.put(events.slice(0, 1))
  console.log(
    `durable puts landed at batch positions ${JSON.stringify(first.batchPositions)} and ${JSON.stringify(second.batchPositions)}`,
  )
  const { walFlushCount, walFlushBytes } = writer.stats()
  console.log(`WAL appends: ${walFlushCount} (${walFlushBytes} bytes)`)
  await writer.close()

  // Anyone can read the WAL back, entry by entry.
  const tailer = await openWalTailer(root, writer.shardId)
  const from = await tailer.firstPosition()
  const to = await tailer.nextPosition()
  for (let position = from; position < to; position++) {
    const entry = await tailer.readEntry(position)
    if (!entry) break
    const ids = entry.batches.flatMap((b) => Array.from(b.getChild('id')?.toArray() ?? []))
    console.log(
      `WAL entry ${entry.position} (epoch ${entry.epoch}): ${entry.numRows} rows, ids ${ids.join(', ')}`,
    )
  }
  console.log(`files are under ${resolve(root, '_mem_wal', writer.shardId)}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
