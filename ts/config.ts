import { defaultWriterOptions, type NativeWriterOptions } from '../index.js'
import { MemWalError, nativeSync } from './errors.js'

/**
 * Every writer knob. Durations are milliseconds, sizes bytes; `null`
 * turns a timer off. Defaults follow Lance's ShardWriter.
 */
export interface ShardWriterOptions {
  /** Sharding spec of the shard; 0 = a manually assigned shard. */
  shardSpecId: number
  /** `put` resolves only after its batches are persisted in the WAL. */
  durableWrite: boolean
  /** Accepted for compatibility with Lance's options; indexes are not built yet. */
  syncIndexedWrite: boolean
  /** Unsent WAL bytes that trigger an append before the timer does. */
  maxWalBufferSize: number
  /** Longest time a non-durable put waits to be appended; `null` = no timer. */
  maxWalFlushIntervalMs: number | null
  maxMemtableSize: number
  maxMemtableRows: number
  maxMemtableBatches: number
  /** Manifest versions probed concurrently per round when finding the newest. */
  manifestScanBatchSize: number
  /** Bytes not yet flushed above which `put` waits (backpressure). */
  maxUnflushedMemtableBytes: number
  backpressureLogIntervalMs: number
  asyncIndexBufferRows: number
  asyncIndexIntervalMs: number
  /** Period of the stats line in the log (`MEMWAL_LOG=info`); `null` = off. */
  statsLogIntervalMs: number | null
  /** `false` = WAL-only mode: no MemTable, no flush, no indexes. */
  enableMemtable: boolean
  /** Store errors retried at one WAL position before the writer is poisoned. */
  maxWalPersistRetries: number
  walPersistRetryBaseDelayMs: number
  /** Codec of flushed Parquet generations. */
  flushCompression: FlushCompression
}

/** Codecs for flushed Parquet files. */
export type FlushCompression = 'none' | 'snappy' | 'lz4' | 'zstd'

const COMPRESSIONS: readonly string[] = ['none', 'snappy', 'lz4', 'zstd']

type Kind = 'number' | 'boolean' | 'number|null' | 'compression'

const KINDS: { readonly [K in keyof ShardWriterOptions]: Kind } = {
  shardSpecId: 'number',
  durableWrite: 'boolean',
  syncIndexedWrite: 'boolean',
  maxWalBufferSize: 'number',
  maxWalFlushIntervalMs: 'number|null',
  maxMemtableSize: 'number',
  maxMemtableRows: 'number',
  maxMemtableBatches: 'number',
  manifestScanBatchSize: 'number',
  maxUnflushedMemtableBytes: 'number',
  backpressureLogIntervalMs: 'number',
  asyncIndexBufferRows: 'number',
  asyncIndexIntervalMs: 'number',
  statsLogIntervalMs: 'number|null',
  enableMemtable: 'boolean',
  maxWalPersistRetries: 'number',
  walPersistRetryBaseDelayMs: 'number',
  flushCompression: 'compression',
}

function nativeDefaults(): ShardWriterOptions {
  const d = nativeSync(() => defaultWriterOptions())
  return {
    ...d,
    flushCompression: d.flushCompression as FlushCompression,
    maxWalFlushIntervalMs: d.maxWalFlushIntervalMs ?? null,
    statsLogIntervalMs: d.statsLogIntervalMs ?? null,
  }
}

function checkValue(name: string, kind: Kind, value: unknown): void {
  if (kind === 'compression') {
    if (typeof value !== 'string' || !COMPRESSIONS.includes(value)) {
      throw new MemWalError(
        'INVALID_CONFIG',
        `${name} must be one of ${COMPRESSIONS.join(', ')}, got ${String(value)}`,
      )
    }
    return
  }
  const ok =
    kind === 'boolean'
      ? typeof value === 'boolean'
      : (typeof value === 'number' && !Number.isNaN(value)) ||
        (kind === 'number|null' && value === null)
  if (!ok) {
    const expected = kind === 'number|null' ? 'a number or null' : `a ${kind}`
    throw new MemWalError(
      'INVALID_CONFIG',
      `${name} must be ${expected}, got ${value === null ? 'null' : typeof value}`,
    )
  }
  if (typeof value === 'number' && (value < 0 || !Number.isInteger(value))) {
    throw new MemWalError('INVALID_CONFIG', `${name} must be a non-negative integer, got ${value}`)
  }
}

/** Check names and types of a partial option object (ranges are checked natively). */
function checkOptions(options: object): Partial<ShardWriterOptions> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new MemWalError('INVALID_CONFIG', 'config must be an object or a ShardWriterConfig')
  }
  for (const [name, value] of Object.entries(options)) {
    if (!Object.hasOwn(KINDS, name)) {
      throw new MemWalError(
        'INVALID_CONFIG',
        `Unknown option '${name}'; known options: ${Object.keys(KINDS).join(', ')}`,
      )
    }
    if (value !== undefined) checkValue(name, KINDS[name as keyof ShardWriterOptions], value)
  }
  return options as Partial<ShardWriterOptions>
}

/**
 * An immutable builder over `ShardWriterOptions`. Each `with…` returns a
 * new config; values are validated when the writer opens.
 *
 * ```ts
 * const config = ShardWriterConfig.defaults().withDurableWrite(false).withMaxWalFlushIntervalMs(50)
 * ```
 */
export class ShardWriterConfig {
  readonly #options: Readonly<ShardWriterOptions>

  private constructor(options: ShardWriterOptions) {
    this.#options = Object.freeze({ ...options })
  }

  /** Lance's defaults. */
  static defaults(): ShardWriterConfig {
    return new ShardWriterConfig(nativeDefaults())
  }

  /** Defaults overridden by `options`; unknown names are INVALID_CONFIG. */
  static from(options: Partial<ShardWriterOptions> | ShardWriterConfig = {}): ShardWriterConfig {
    if (options instanceof ShardWriterConfig) return options
    const checked = checkOptions(options)
    const merged: ShardWriterOptions = { ...nativeDefaults() }
    for (const [name, value] of Object.entries(checked)) {
      if (value !== undefined) (merged as unknown as Record<string, unknown>)[name] = value
    }
    return new ShardWriterConfig(merged)
  }

  /** A copy with one option changed. */
  with<K extends keyof ShardWriterOptions>(
    name: K,
    value: ShardWriterOptions[K],
  ): ShardWriterConfig {
    checkOptions({ [name]: value })
    return new ShardWriterConfig({ ...this.#options, [name]: value })
  }

  withShardSpecId(value: number): ShardWriterConfig {
    return this.with('shardSpecId', value)
  }
  withDurableWrite(value: boolean): ShardWriterConfig {
    return this.with('durableWrite', value)
  }
  withSyncIndexedWrite(value: boolean): ShardWriterConfig {
    return this.with('syncIndexedWrite', value)
  }
  withMaxWalBufferSize(value: number): ShardWriterConfig {
    return this.with('maxWalBufferSize', value)
  }
  withMaxWalFlushIntervalMs(value: number | null): ShardWriterConfig {
    return this.with('maxWalFlushIntervalMs', value)
  }
  withMaxMemtableSize(value: number): ShardWriterConfig {
    return this.with('maxMemtableSize', value)
  }
  withMaxMemtableRows(value: number): ShardWriterConfig {
    return this.with('maxMemtableRows', value)
  }
  withMaxMemtableBatches(value: number): ShardWriterConfig {
    return this.with('maxMemtableBatches', value)
  }
  withManifestScanBatchSize(value: number): ShardWriterConfig {
    return this.with('manifestScanBatchSize', value)
  }
  withMaxUnflushedMemtableBytes(value: number): ShardWriterConfig {
    return this.with('maxUnflushedMemtableBytes', value)
  }
  withBackpressureLogIntervalMs(value: number): ShardWriterConfig {
    return this.with('backpressureLogIntervalMs', value)
  }
  withAsyncIndexBufferRows(value: number): ShardWriterConfig {
    return this.with('asyncIndexBufferRows', value)
  }
  withAsyncIndexIntervalMs(value: number): ShardWriterConfig {
    return this.with('asyncIndexIntervalMs', value)
  }
  withStatsLogIntervalMs(value: number | null): ShardWriterConfig {
    return this.with('statsLogIntervalMs', value)
  }
  withEnableMemtable(value: boolean): ShardWriterConfig {
    return this.with('enableMemtable', value)
  }
  withMaxWalPersistRetries(value: number): ShardWriterConfig {
    return this.with('maxWalPersistRetries', value)
  }
  withWalPersistRetryBaseDelayMs(value: number): ShardWriterConfig {
    return this.with('walPersistRetryBaseDelayMs', value)
  }
  withFlushCompression(value: FlushCompression): ShardWriterConfig {
    return this.with('flushCompression', value)
  }

  /** The resolved options as a plain object. */
  toOptions(): ShardWriterOptions {
    return { ...this.#options }
  }

  /** @internal The shape the native addon takes (`null` becomes "absent"). */
  toNative(): NativeWriterOptions {
    const o = this.#options
    return {
      ...o,
      maxWalFlushIntervalMs: o.maxWalFlushIntervalMs ?? undefined,
      statsLogIntervalMs: o.statsLogIntervalMs ?? undefined,
    }
  }
}
