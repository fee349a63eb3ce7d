// memwal quickstart: durable Arrow writes to ./data, a scan of the unflushed
// rows, a flush to Parquet, and the WAL read back. Run with `npm start`.
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

  const writer = await openShardWriter(root, { schema: events.schema, primaryKey: ['id'] })
  console.log(`opened shard ${writer.shardId} at epoch ${writer.epoch} under ${root}`)

  // Each put resolves once its WAL entry is fsync'd; its rows are readable at once.
  const first = await writer.put(events)
  const second = await writer.put(events.slice(2))
  console.log(
    `durable puts landed at batch positions ${JSON.stringify(first.batchPositions)} and ${JSON.stringify(second.batchPositions)}`,
  )
  const purchases = await writer.scan({ columns: ['id', 'amount'], filter: "kind = 'purchase'" })
  console.log(
    `scan "kind = 'purchase'": ${JSON.stringify(
      purchases.toArray().map((r) => r.toJSON()),
      (_, v) => (typeof v === 'bigint' ? Number(v) : v),
    )}`,
  )

  // Flush the MemTable to a Parquet generation and commit it in the manifest.
  await writer.forceSealActive()
  await writer.waitForFlushDrain()
  const manifest = await writer.manifest()
  for (const generation of manifest.flushedGenerations) {
    console.log(
      `generation ${generation.generation}: ${generation.physicalRows} rows in ${resolve(root, '_mem_wal', writer.shardId, generation.path, 'data.parquet')}`,
    )
  }
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
    const ids = entry.batches.flatMap((b) => Array.from(b.getChild('id')?.toArray() ?? [], Number))
    console.log(
      `WAL entry ${entry.position} (epoch ${entry.epoch}): ${entry.numRows} rows, ids ${ids.join(', ')}`,
    )
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
