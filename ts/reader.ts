import { type RecordBatch, type Schema, type Table, tableFromIPC } from 'apache-arrow'
import { type NativeShardReader, openShardReader as nativeOpenShardReader } from '../index.js'
import { abortableOpen } from './abort.js'
import { MemWalError, native, nativeSync } from './errors.js'
import {
  checkOpenOptions,
  checkScanOptions,
  checkStorageOptions,
  type ScanOptions,
  type StorageOptions,
} from './writer.js'

/** A flushed generation: one Parquet file of the shard. */
export interface GenerationInfo {
  generation: number
  /** Folder relative to the shard directory; the file is `<path>/data.parquet`. */
  path: string
  rows: number
}

/** Row groups a streamed scan looked at, and how many statistics let it skip. */
export interface ScanMetrics {
  rowGroupsTotal: number
  rowGroupsRead: number
}

/** A streamed scan: iterate it for RecordBatches, then read `metrics()`. */
export interface ShardScanStream extends AsyncIterable<RecordBatch> {
  metrics(): Promise<ScanMetrics>
}

/**
 * A consistent snapshot of one shard: its flushed Parquet generations and
 * the WAL entries after the manifest's replay cursor, as one result. With a
 * primary key the newest row per key wins (higher generation, then later
 * position; unflushed rows are newest) and deleted keys are left out.
 * Writes made after `openShardReader` resolved are not seen; open a new
 * reader to see them.
 */
export class ShardReader {
  readonly #native: NativeShardReader
  readonly shardId: string
  /** The manifest version the snapshot was taken at. */
  readonly manifestVersion: number
  /** Primary-key columns found in the data (empty without a key). */
  readonly primaryKey: readonly string[]
  /** The rows' schema; no fields if the shard holds no data yet. */
  readonly schema: Schema

  /** @internal Use `openShardReader`. */
  constructor(nativeReader: NativeShardReader) {
    this.#native = nativeReader
    this.shardId = nativeReader.shardId
    this.manifestVersion = nativeReader.manifestVersion
    this.primaryKey = Object.freeze([...nativeReader.primaryKey])
    this.schema = tableFromIPC(nativeReader.schema()).schema
  }

  /** Flushed generations in the snapshot, oldest first. */
  generations(): GenerationInfo[] {
    return nativeSync(() => this.#native.generations())
  }

  /** `[first, last]` WAL positions of the unflushed rows, or `null` if none. */
  tailPositions(): [number, number] | null {
    const positions = nativeSync(() => this.#native.tailPositions())
    return positions ? [positions[0], positions[1]] : null
  }

  /**
   * Matching rows as an apache-arrow Table, flushed generations first (in
   * generation order), then unflushed rows, each in put order. Filters and
   * projection are pushed into the Parquet reads; row groups whose
   * statistics rule the filter out are skipped.
   */
  async scan(options: ScanOptions = {}): Promise<Table> {
    const request = checkScanOptions(options)
    return tableFromIPC(await native(() => this.#native.scan(request)))
  }

  /**
   * The same rows as `scan()`, one RecordBatch at a time, holding about one
   * batch (plus one bit per row and the distinct keys) in memory.
   */
  scanStream(options: ScanOptions = {}): ShardScanStream {
    const request = checkScanOptions(options)
    const scan = nativeSync(() => this.#native.scanStream(request))
    return {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const ipc = await native(() => scan.next())
          if (ipc === null) return
          yield* tableFromIPC(ipc).batches
        }
      },
      metrics: () => native(() => scan.metrics()),
    }
  }
}

/** Snapshot shard `shardId` under `root`. NOT_FOUND if it has no manifest. */
export async function openShardReader(
  root: string,
  shardId: string,
  options: { storageOptions?: StorageOptions; signal?: AbortSignal } = {},
): Promise<ShardReader> {
  if (typeof root !== 'string' || typeof shardId !== 'string') {
    throw new MemWalError('INVALID_INPUT', 'openShardReader(root, shardId) takes two strings')
  }
  const checked = checkOpenOptions('openShardReader', options)
  const storage = checkStorageOptions(checked?.storageOptions)
  const nativeReader = await abortableOpen(
    'openShardReader',
    checked?.signal,
    (token) => native(() => nativeOpenShardReader(root, shardId, storage, token)),
    async () => undefined,
  )
  return nativeSync(() => new ShardReader(nativeReader))
}
