import type { RecordBatch } from 'apache-arrow'
import { type NativeWalTailer, openWalTailer as nativeOpenWalTailer } from '../index.js'
import { batchesFromIPC } from './arrow.js'
import { MemWalError, native, nativeSync } from './errors.js'

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

/** Reads a shard's WAL entries, e.g. for change data capture. */
export class WalTailer {
  readonly #native: NativeWalTailer
  readonly shardId: string

  /** @internal Use `openWalTailer`. */
  constructor(nativeTailer: NativeWalTailer) {
    this.#native = nativeTailer
    this.shardId = nativeTailer.shardId
  }

  /** The lowest position still stored (1 for an empty WAL). */
  async firstPosition(): Promise<number> {
    return native(() => this.#native.firstPosition())
  }

  /** The position the next entry will be written at. */
  async nextPosition(): Promise<number> {
    return native(() => this.#native.nextPosition())
  }

  /** The entry at `position`, or `null` if none is there (yet). */
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

/** Open a reader of `shardId`'s WAL under `root`. */
export async function openWalTailer(root: string, shardId: string): Promise<WalTailer> {
  if (typeof root !== 'string' || typeof shardId !== 'string') {
    throw new MemWalError('INVALID_INPUT', 'openWalTailer(root, shardId) takes two strings')
  }
  return new WalTailer(nativeSync(() => nativeOpenWalTailer(root, shardId)))
}
