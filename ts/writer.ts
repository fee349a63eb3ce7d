import { type RecordBatch, type Schema, type Table, tableFromIPC } from 'apache-arrow'
import {
  type NativeErrorInfo,
  type NativeManifest,
  type NativeMemTableStats,
  type NativeScanRequest,
  type NativeShardWriter,
  type NativeStorageOptions,
  type NativeWalStats,
  type NativeWriterStats,
  openShardWriter as nativeOpenShardWriter,
  storageOptionTable,
} from '../index.js'
import { abortableOpen, checkSignal } from './abort.js'
import {
  batchesOf,
  batchesToIPC,
  isSchema,
  type PutInput,
  schemaToIPC,
  withPrimaryKey,
} from './arrow.js'
import { ShardWriterConfig, type ShardWriterOptions } from './config.js'
import { DurableWaits } from './durability.js'
import { MemWalError, type MemWalErrorCode, native, nativeSync, toMemWalError } from './errors.js'
import { type Handoff, handoffOf } from './handoff.js'

/**
 * Credentials, endpoint and limits for object-store roots; see
 * `NativeStorageOptions` (defined, with its docs, in the binding).
 */
export type StorageOptions = NativeStorageOptions

let storageOptionTypes: ReadonlyMap<string, string> | undefined

/** Each storage option's JS type, from the binding's table (read once). */
function storageTypes(): ReadonlyMap<string, string> {
  storageOptionTypes ??= new Map(
    nativeSync(() => storageOptionTable()).map((spec) => [spec.name, spec.kind]),
  )
  return storageOptionTypes
}

const SECRET_STORAGE_OPTIONS = new Set(['accessKeyId', 'secretAccessKey', 'sessionToken'])

/** `url` without the `user:password@` of any `scheme://` URL in it. */
export function redactUserinfo(text: string): string {
  return text.replace(/(:\/\/)[^/?#\s"'`<>]*@/g, '$1<redacted>@')
}

/**
 * @internal Validate `storageOptions`; values are never echoed in errors.
 * The copy prints (inspect, `JSON.stringify`, `String`) without secrets.
 */
export function checkStorageOptions(options: unknown): StorageOptions | undefined {
  if (options === undefined) return undefined
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new MemWalError('INVALID_CONFIG', 'storageOptions must be an object')
  }
  for (const [name, value] of Object.entries(options)) {
    const type = storageTypes().get(name)
    if (type === undefined) {
      throw new MemWalError('INVALID_CONFIG', `Unknown storageOptions field '${name}'`)
    }
    if (value !== undefined && typeof value !== type) {
      throw new MemWalError('INVALID_CONFIG', `storageOptions.${name} must be a ${type}`)
    }
  }
  const copy = { ...(options as StorageOptions) }
  const printable = () => redactedStorageOptions(copy)
  Object.defineProperties(copy, {
    [Symbol.for('nodejs.util.inspect.custom')]: { value: printable },
    toJSON: { value: printable },
    toString: { value: () => JSON.stringify(printable()) },
  })
  return copy
}

/** What `storageOptions` may show of itself: no secret, no userinfo. */
export function redactedStorageOptions(options: StorageOptions): Record<string, unknown> {
  const shown: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(options)) {
    if (SECRET_STORAGE_OPTIONS.has(name) && value !== undefined) shown[name] = '<redacted>'
    else if (name === 'endpoint' && typeof value === 'string') shown[name] = redactUserinfo(value)
    else shown[name] = value
  }
  return shown
}

/**
 * @internal Check the options object of `openWalTailer` / `openShardReader`:
 * a misspelt name must not silently drop credentials.
 */
export function checkOpenOptions(
  call: string,
  options: unknown,
): { storageOptions?: StorageOptions; signal?: AbortSignal } | undefined {
  if (options === undefined || options === null) return undefined
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new MemWalError('INVALID_CONFIG', `${call} options must be an object`)
  }
  for (const name of Object.keys(options)) {
    if (name !== 'storageOptions' && name !== 'signal') {
      throw new MemWalError(
        'INVALID_CONFIG',
        `Unknown ${call} option '${name}'; known options: storageOptions, signal`,
      )
    }
  }
  const checked = options as { storageOptions?: StorageOptions; signal?: unknown }
  return { storageOptions: checked.storageOptions, signal: checkSignal(call, checked.signal) }
}

export interface OpenShardWriterOptions {
  /** The schema every put must match (names, types, nullability). */
  schema: Schema
  /** A lowercase hyphenated UUID; a random v4 id when omitted. */
  shardId?: string
  /** Primary-key columns; marks them with Lance's primary-key field metadata. */
  primaryKey?: readonly string[]
  config?: ShardWriterConfig | Partial<ShardWriterOptions>
  storageOptions?: StorageOptions
  /**
   * Aborts the open: it rejects at once with a `CLOSED` MemWalError named
   * `AbortError`, and no writer is left running. An abort during the
   * checks before the claim stops them and fences nobody. Once the claim
   * is written the previous writer is fenced (a claim cannot be taken
   * back), so the open finishes in the background (fence sentinel, replay)
   * and the writer is then closed, leaving the shard whole for the next
   * open; the aborted writer never takes a put.
   */
  signal?: AbortSignal
}

/** Writer-global batch positions of one put: `[start, end)`. */
export interface PutResult {
  batchPositions: { start: number; end: number }
}

/** A failure reported as data by `stats()` and `health()`. */
export interface ErrorInfo {
  code: MemWalErrorCode
  message: string
}

function errorInfo(info: NativeErrorInfo | undefined | null): ErrorInfo | null {
  return info ? { code: info.code as MemWalErrorCode, message: info.message } : null
}

/**
 * The writer's counters. `flushFailures` counts failed MemTable flush
 * attempts (each is retried); `lastFlushError` is the latest of them.
 */
export interface WriterStats extends Omit<NativeWriterStats, 'lastFlushError'> {
  lastFlushError: ErrorInfo | null
}

/** See `ShardWriter.health()`. */
export interface WriterHealth {
  state: 'ok' | 'degraded' | 'failed'
  /** Failed flush attempts since the writer opened. */
  flushFailures: number
  /** Failed flush attempts since the last generation committed (0 = flushing works). */
  consecutiveFlushFailures: number
  lastFlushError: ErrorInfo | null
  /** Why the writer failed (state `failed`). */
  failure: ErrorInfo | null
}
export type WalStats = NativeWalStats
export type MemTableStats = NativeMemTableStats
export type ShardManifestInfo = NativeManifest

/** Options of `scan()`. */
export interface ScanOptions {
  /** Columns to return, in this order (default: all). */
  columns?: readonly string[]
  /** A SQL-like condition over the writer's columns. */
  filter?: string
  /** At most this many rows. */
  limit?: number
  /** Skip this many matching rows first. */
  offset?: number
}

const SCAN_OPTION_NAMES = new Set(['columns', 'filter', 'limit', 'offset'])

/** @internal Validate scan options (shared by the writer and the shard reader). */
export function checkScanOptions(options: ScanOptions): NativeScanRequest {
  if (options === null || typeof options !== 'object') {
    throw new MemWalError('INVALID_INPUT', 'scan options must be an object')
  }
  for (const name of Object.keys(options)) {
    if (!SCAN_OPTION_NAMES.has(name)) {
      throw new MemWalError('INVALID_INPUT', `Unknown scan option '${name}'`)
    }
  }
  const { columns, filter, limit, offset } = options
  if (
    columns !== undefined &&
    (!Array.isArray(columns) || columns.some((c) => typeof c !== 'string'))
  ) {
    throw new MemWalError('INVALID_INPUT', 'scan columns must be an array of column names')
  }
  if (filter !== undefined && typeof filter !== 'string') {
    throw new MemWalError('INVALID_INPUT', 'scan filter must be a string')
  }
  for (const [name, value] of [
    ['limit', limit],
    ['offset', offset],
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new MemWalError('INVALID_INPUT', `scan ${name} must be a non-negative integer`)
    }
  }
  return { columns: columns ? [...columns] : undefined, filter, limit, offset }
}

const OPEN_OPTION_NAMES = new Set([
  'schema',
  'shardId',
  'primaryKey',
  'config',
  'storageOptions',
  'signal',
])

/**
 * Writes Arrow batches to one shard through a write-ahead log. Obtain one
 * with `openShardWriter`; call `close()` (or use `await using`) when done.
 */
export class ShardWriter implements AsyncDisposable {
  readonly #native: NativeShardWriter
  readonly #config: ShardWriterConfig
  readonly #durable: DurableWaits
  /** Puts are acknowledged once in the WAL (`durableWrite`). */
  readonly #durableWrite: boolean
  #closed = false

  /** The shard this writer owns. */
  readonly shardId: string
  /** The epoch this writer claimed; a newer writer fences it. */
  readonly epoch: number
  /** The schema puts must match (with primary-key metadata applied). */
  readonly schema: Schema
  /** Primary-key columns in key order (empty without a key). */
  readonly primaryKey: readonly string[]

  /** @internal Use `openShardWriter`. */
  constructor(nativeWriter: NativeShardWriter, schema: Schema, config: ShardWriterConfig) {
    this.#native = nativeWriter
    this.#config = config
    this.#durableWrite = config.toOptions().durableWrite
    this.shardId = nativeWriter.shardId
    this.epoch = nativeWriter.epoch
    this.schema = schema
    this.primaryKey = Object.freeze([...nativeWriter.primaryKey])
    // The listener holds the native writer weakly: an unclosed writer
    // nobody references can still be collected.
    const weakNative = new WeakRef(nativeWriter)
    const durable = new DurableWaits(this.shardId, {
      hold: (hold) => weakNative.deref()?.holdEventLoop(hold),
      appendNow: () => weakNative.deref()?.appendNow(),
      pin: () => weakNative.deref(),
    })
    this.#durable = durable
    nativeWriter.listenDurable((end, failure, stopped) => durable.progress(end, failure, stopped))
  }

  /** The options the writer runs with. */
  get config(): ShardWriterOptions {
    return this.#config.toOptions()
  }

  /** `false` once `close()` has been called. */
  isOpen(): boolean {
    return !this.#closed
  }

  #ensureOpen(): void {
    if (this.#closed) {
      throw new MemWalError('CLOSED', 'Shard writer is closed', { shardId: this.shardId })
    }
  }

  /**
   * Insert a Table, a RecordBatch or several batches atomically. With
   * `durableWrite` (the default) it resolves once they are in the WAL.
   */
  async put(data: PutInput): Promise<PutResult> {
    this.#ensureOpen()
    const batches = nativeSync(() => batchesOf(data))
    if (batches.length === 0) {
      throw new MemWalError('INVALID_INPUT', 'Cannot write empty batch list', {
        shardId: this.shardId,
      })
    }
    batches.forEach((batch, i) => {
      if (batch.numRows === 0) {
        throw new MemWalError('INVALID_INPUT', `Batch ${i} is empty`, { shardId: this.shardId })
      }
    })
    const handoff = tryHandoff(batches)
    // The native call admits the put (queues it for the WAL) and returns its
    // end position, or a promise of it if backpressure made it wait first.
    const defer = this.#durable.settling
    const admitted = nativeSync(() =>
      handoff
        ? this.#native.putBuffers(handoff.schemaIpc, handoff.numbers, handoff.buffers, defer)
        : this.#native.put(batchesToIPC(batches), defer),
    )
    const end = typeof admitted === 'number' ? admitted : await native(() => admitted)
    // Inlined #acknowledge: a non-durable put must not pay for an await.
    if (this.#durableWrite) await this.#durable.wait(end)
    else this.#durable.acknowledged(end)
    return { batchPositions: { start: end - batches.length, end } }
  }

  /**
   * The one acknowledgement of an admitted put or delete: a durable one
   * waits for the durability listener to report positions `[.., end)` in
   * the WAL (see durability.ts); a non-durable one is done, and only
   * registered so that it still reaches the WAL if main returns unclosed.
   */
  #acknowledge(end: number): Promise<void> | undefined {
    if (this.#durableWrite) return this.#durable.wait(end)
    this.#durable.acknowledged(end)
    return undefined
  }

  /**
   * Delete rows by primary key. `keys` holds the primary-key columns (a
   * Table, RecordBatch or batches); each key is recorded as a `_tombstone`
   * row through the same WAL, MemTable and flush path as a put, and is
   * acknowledged the same way (durable with `durableWrite`). Scans and shard
   * readers stop returning the keys; a later put brings a key back.
   * INVALID_INPUT without a primary key.
   */
  async delete(keys: PutInput): Promise<PutResult> {
    this.#ensureOpen()
    const batches = nativeSync(() => batchesOf(keys))
    if (batches.length === 0 || batches.every((b) => b.numRows === 0)) {
      throw new MemWalError('INVALID_INPUT', 'delete needs at least one key', {
        shardId: this.shardId,
      })
    }
    const nonEmpty = batches.filter((b) => b.numRows > 0)
    const handoff = tryHandoff(nonEmpty)
    const result = await native(() =>
      handoff
        ? this.#native.deleteBuffers(handoff.schemaIpc, handoff.numbers, handoff.buffers)
        : this.#native.delete(batchesToIPC(nonEmpty)),
    )
    await this.#acknowledge(result.end)
    return { batchPositions: { start: result.start, end: result.end } }
  }

  /**
   * Counters: puts, WAL appends, bytes, time, backpressure. A put that has
   * resolved is counted with its WAL append, and a `waitForFlushDrain` that
   * has returned with its flushes.
   */
  stats(): WriterStats {
    this.#ensureOpen()
    const stats = nativeSync(() => this.#native.stats())
    return { ...stats, lastFlushError: errorInfo(stats.lastFlushError) }
  }

  /**
   * Whether the writer is healthy, without waiting for `close()`: `failed`
   * once it is poisoned or fenced (puts fail; reopen the shard), `degraded`
   * while MemTable flushes keep failing (they are retried; the rows are safe
   * in the WAL, but unflushed memory grows until backpressure stops puts),
   * `ok` otherwise.
   */
  health(): WriterHealth {
    this.#ensureOpen()
    const health = nativeSync(() => this.#native.health())
    return {
      state: health.state,
      flushFailures: health.flushFailures,
      consecutiveFlushFailures: health.consecutiveFlushFailures,
      lastFlushError: errorInfo(health.lastFlushError),
      failure: errorInfo(health.failure),
    }
  }

  /** WAL position and queue state. */
  walStats(): WalStats {
    this.#ensureOpen()
    return nativeSync(() => this.#native.walStats())
  }

  /** The shard's latest manifest. */
  async manifest(): Promise<ShardManifestInfo> {
    this.#ensureOpen()
    return native(() => this.#native.manifest())
  }

  /** Rejects with FENCED if a newer writer has claimed the shard. */
  async checkFenced(): Promise<void> {
    this.#ensureOpen()
    await native(() => this.#native.checkFenced())
  }

  /** Rows, batches and bytes in the active and frozen MemTables (MemTable mode). */
  async memtableStats(): Promise<MemTableStats> {
    this.#ensureOpen()
    return nativeSync(() => this.#native.memtableStats())
  }

  /**
   * Rows not yet flushed (active and frozen MemTables), in put order, as an
   * apache-arrow Table. In durable mode only rows already in the WAL are
   * visible. With a primary key only the newest row per key is returned,
   * and deleted keys not at all. `filter` is SQL-like: comparisons, AND/OR/NOT, IN, BETWEEN,
   * IS [NOT] NULL and LIKE, e.g. `"id > 5 AND name = 'x'"`.
   */
  async scan(options: ScanOptions = {}): Promise<Table> {
    this.#ensureOpen()
    const request = checkScanOptions(options)
    const ipc = await native(() => this.#native.scan(request))
    return tableFromIPC(ipc)
  }

  /**
   * Freeze the active MemTable and schedule its flush to Parquet (MemTable
   * mode). Resolves to whether anything was frozen.
   */
  async forceSealActive(): Promise<boolean> {
    this.#ensureOpen()
    return native(() => this.#native.forceSealActive())
  }

  /** Resolve once every MemTable frozen so far is flushed and committed. */
  async waitForFlushDrain(): Promise<void> {
    this.#ensureOpen()
    await native(() => this.#native.waitForFlushDrain())
  }

  /**
   * Append everything queued, stop background work and release the shard.
   * Rejects with the first error the writer met (FENCED, IO, …). Calling it
   * again resolves or rejects the same way; every other call then fails
   * with CLOSED.
   */
  async close(): Promise<void> {
    this.#closed = true
    await native(() => this.#native.close())
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/**
 * Open a writer on `root` (`file:///dir`, a path, or `memory://name`),
 * claiming the shard's next epoch. An existing writer of the same shard is
 * fenced: its next durable put fails with FENCED.
 */
export async function openShardWriter(
  root: string,
  options: OpenShardWriterOptions,
): Promise<ShardWriter> {
  if (typeof root !== 'string') {
    throw new MemWalError('INVALID_INPUT', 'The storage root must be a string URI or path')
  }
  if (options === null || typeof options !== 'object') {
    throw new MemWalError('INVALID_INPUT', 'openShardWriter needs an options object with a schema')
  }
  for (const name of Object.keys(options)) {
    if (!OPEN_OPTION_NAMES.has(name)) {
      throw new MemWalError('INVALID_CONFIG', `Unknown openShardWriter option '${name}'`)
    }
  }
  if (!isSchema(options.schema)) {
    throw new MemWalError('INVALID_INPUT', 'options.schema must be an apache-arrow Schema')
  }
  if (options.shardId !== undefined && typeof options.shardId !== 'string') {
    throw new MemWalError('INVALID_CONFIG', 'shardId must be a UUID string')
  }
  const config = ShardWriterConfig.from(options.config ?? {})
  const schema = options.primaryKey
    ? withPrimaryKey(options.schema, options.primaryKey)
    : options.schema
  const storage = checkStorageOptions(options.storageOptions)
  const signal = checkSignal('openShardWriter', options.signal)
  const nativeWriter = await abortableOpen(
    'openShardWriter',
    signal,
    (token) =>
      native(() =>
        nativeOpenShardWriter(
          root,
          schemaToIPC(schema),
          options.shardId,
          config.toNative(),
          storage,
          token,
        ),
      ),
    (opened) => opened.close(),
  )
  try {
    return new ShardWriter(nativeWriter, schema, config)
  } catch (error) {
    // A getter refused a value (an epoch above 2^53): release the shard
    // rather than leave an open native writer nobody can reach.
    await nativeWriter.close().catch(() => undefined)
    throw toMemWalError(error)
  }
}

/**
 * The buffer hand-off of `batches`; `undefined` sends them as an IPC stream
 * instead, which also turns objects that only look like batches into
 * INVALID_INPUT with the encoder's reason.
 */
function tryHandoff(batches: readonly RecordBatch[]): Handoff | undefined {
  try {
    return handoffOf(batches)
  } catch (error) {
    if (error instanceof MemWalError) throw error
    return undefined
  }
}
