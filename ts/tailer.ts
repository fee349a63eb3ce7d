import { setTimeout as sleep } from 'node:timers/promises'
import type { RecordBatch } from 'apache-arrow'
import { type NativeWalTailer, openWalTailer as nativeOpenWalTailer } from '../index.js'
import { abortableOpen } from './abort.js'
import { batchesFromIPC } from './arrow.js'
import { MemWalError, native, nativeSync } from './errors.js'
import { checkOpenOptions, checkStorageOptions, type StorageOptions } from './writer.js'

/** One WAL entry as read back by a tailer. */
export interface WalEntry {
  position: number
  /** Epoch of the writer that wrote the entry. */
  epoch: number
  /** A data-less entry a new writer wrote to fence older epochs. */
  fenceSentinel: boolean
  numRows: number
  /** The entry's batches, in put order (empty for a fence sentinel). */
  batches: RecordBatch[]
}

/** Options of `WalTailer.follow()`. */
export interface FollowOptions {
  /** First position to yield (default: the lowest position still stored). */
  from?: number
  /** How long to wait before looking again once the end is reached (default 100 ms). */
  pollIntervalMs?: number
  /** Ends the iteration, also while it waits for new entries. */
  signal?: AbortSignal
}

const FOLLOW_OPTION_NAMES = new Set(['from', 'pollIntervalMs', 'signal'])

/** Reads a shard's WAL entries, e.g. for change data capture. */
export class WalTailer {
  readonly #native: NativeWalTailer
  readonly shardId: string

  /** @internal Use `openWalTailer`. */
  constructor(nativeTailer: NativeWalTailer) {
    this.#native = nativeTailer
    this.shardId = nativeTailer.shardId
  }

  /** The lowest position still stored (1 for an empty WAL); CORRUPT if the WAL has a hole. */
  async firstPosition(): Promise<number> {
    return native(() => this.#native.firstPosition())
  }

  /** The position the next entry will be written at. */
  async nextPosition(): Promise<number> {
    return native(() => this.#native.nextPosition())
  }

  /** See {@link FollowOptions}: every entry in order, then new ones as they come. */
  follow(options: FollowOptions = {}): AsyncGenerator<WalEntry> {
    return follow(this, options)
  }

  /**
   * The entry at `position`, or `null` if none is there (yet). CORRUPT if the
   * position is a hole: missing while a later position holds an entry.
   */
  async readEntry(position: number): Promise<WalEntry | null> {
    if (!Number.isSafeInteger(position) || position < 1) {
      throw new MemWalError('INVALID_INPUT', `WAL positions are integers from 1, got ${position}`, {
        shardId: this.shardId,
      })
    }
    const entry = await native(() => this.#native.readEntry(position))
    if (entry === null) return null
    return {
      position: entry.position,
      epoch: entry.epoch,
      fenceSentinel: entry.fenceSentinel,
      numRows: entry.numRows,
      batches: entry.numBatches === 0 ? [] : batchesFromIPC(entry.ipc),
    }
  }
}

/**
 * Every entry from `from` on, in position order, then each new entry as it
 * is written: change data capture. Positions are dense across writers, so a
 * writer being replaced (a new epoch) neither skips nor repeats anything:
 * the new writer's fence sentinel arrives as an entry with `fenceSentinel`
 * set, then its data. The loop ends when `signal` aborts (also during a
 * wait); breaking out of `for await` ends it too. A position missing while
 * a later one exists (a lost entry) throws CORRUPT naming it, instead of
 * waiting forever for an entry that will never come.
 */
async function* follow(tailer: WalTailer, options: FollowOptions): AsyncGenerator<WalEntry> {
  if (options === null || typeof options !== 'object') {
    throw new MemWalError('INVALID_INPUT', 'follow options must be an object')
  }
  for (const name of Object.keys(options)) {
    if (!FOLLOW_OPTION_NAMES.has(name)) {
      throw new MemWalError('INVALID_INPUT', `Unknown follow option '${name}'`)
    }
  }
  const { from, pollIntervalMs = 100, signal } = options
  if (from !== undefined && !(Number.isSafeInteger(from) && from >= 1)) {
    throw new MemWalError(
      'INVALID_INPUT',
      `follow from must be a WAL position (integer ≥ 1), got ${from}`,
    )
  }
  if (!(typeof pollIntervalMs === 'number' && pollIntervalMs >= 0 && pollIntervalMs < 2 ** 31)) {
    throw new MemWalError(
      'INVALID_INPUT',
      `pollIntervalMs must be a non-negative number of ms, got ${pollIntervalMs}`,
    )
  }
  let position = from ?? (await tailer.firstPosition())
  while (!signal?.aborted) {
    const entry = await tailer.readEntry(position)
    if (entry !== null) {
      position++
      yield entry
      continue
    }
    try {
      await sleep(pollIntervalMs, undefined, { signal })
    } catch (error) {
      if (signal?.aborted) return
      throw error
    }
  }
}

/**
 * Open a reader of `shardId`'s WAL under `root`. NOT_FOUND if the shard has
 * no manifest or a local root does not exist: opening to read creates nothing.
 */
export async function openWalTailer(
  root: string,
  shardId: string,
  options: { storageOptions?: StorageOptions; signal?: AbortSignal } = {},
): Promise<WalTailer> {
  if (typeof root !== 'string' || typeof shardId !== 'string') {
    throw new MemWalError('INVALID_INPUT', 'openWalTailer(root, shardId) takes two strings')
  }
  const checked = checkOpenOptions('openWalTailer', options)
  const storage = checkStorageOptions(checked?.storageOptions)
  const nativeTailer = await abortableOpen(
    'openWalTailer',
    checked?.signal,
    (token) => native(() => nativeOpenWalTailer(root, shardId, storage, token)),
    async () => undefined,
  )
  return nativeSync(() => new WalTailer(nativeTailer))
}
