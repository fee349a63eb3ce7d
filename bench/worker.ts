// One measurement in a fresh Node process: bench/run.ts forks this file once
// per implementation, scenario and repetition, so no run inherits another's
// heap, threads, memory:// store or page-cache state in the JS heap. The
// result (with every put's latency) goes back over the IPC channel.
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writevSync,
} from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Table, tableToIPC } from 'apache-arrow'
import { openShardWriter, type ShardWriter, type ShardWriterOptions } from '../ts/index.js'
import { MIB, type RawBatch, SCHEMA, type Workload, workload, workloadFromRaw } from './common.js'
import {
  CONCURRENCY,
  DEPS_DIR,
  MEMTABLE_SETTINGS,
  type Scenario,
  UNFLUSHED_MEMTABLE_SETTINGS,
} from './scenarios.js'

export interface RunSpec {
  scenario: Scenario
  impl: string
  /** Scratch directory of this run (removed afterwards); also names memory:// stores. */
  dir: string
  seconds: number
  warmupSeconds: number
  /** The pool's arrays, generated once by the orchestrator (`rawWorkload`); built here if absent. */
  pool?: RawBatch[]
}

export interface RunResult {
  puts: number
  payloadBytes: number
  /** The timed region: puts, plus close() in non-durable scenarios. */
  seconds: number
  putSeconds: number
  closeSeconds: number
  /** Per put, in ms (a physical-limit op counts for every put it carries). */
  latencies: Float64Array
  extra?: Record<string, unknown>
}

// ---------------------------------------------------------------- implementations

/** An asynchronous writer, driven by `concurrency` loops that await each put. */
interface Sink {
  put(index: number): Promise<void>
  close(): Promise<void>
  extra?(): Promise<Record<string, unknown>> | Record<string, unknown>
}

/** A physical limit: a synchronous op that carries `count` puts' bytes at once. */
interface Limit {
  op(first: number, count: number): void
  close(): void
}

type Opener = (spec: RunSpec, dir: string, pool: Workload) => Promise<Sink>
type LimitOpener = (spec: RunSpec, dir: string, ipc: Buffer[]) => Limit

function memoryName(dir: string): string {
  return `bench-${basename(dir)}-${process.pid}`
}

const MEMWAL_CONFIGS = {
  wal: { enableMemtable: false },
  mt: MEMTABLE_SETTINGS,
  'mt-unflushed': UNFLUSHED_MEMTABLE_SETTINGS,
}

function memwal(mode: keyof typeof MEMWAL_CONFIGS): Opener {
  return async (spec, dir, pool) => {
    const s = spec.scenario
    const config: Partial<ShardWriterOptions> = {
      durableWrite: s.durable,
      ...MEMWAL_CONFIGS[mode],
    }
    const uri = s.store === 'memory' ? `memory://${memoryName(dir)}` : `file://${dir}`
    const writer: ShardWriter = await openShardWriter(uri, { schema: SCHEMA, config })
    let stats: Record<string, unknown> = {}
    return {
      put: async (i) => {
        await writer.put(pool.tables[i])
      },
      extra: async () => {
        stats = { stats: writer.stats() }
        stats.queue =
          mode === 'wal' ? writer.walStats() : { memtable: await writer.memtableStats() }
        return stats
      },
      close: () => writer.close(),
    }
  }
}

/** Puts waiting while a commit runs share the next one (up to `max` batches). */
function groupCommitter(
  commit: (tables: Table[]) => Promise<void>,
  max: number,
): { put(table: Table): Promise<void>; commits(): number } {
  const pending: { table: Table; resolve: () => void; reject: (e: unknown) => void }[] = []
  let running = false
  let commits = 0
  const drain = async (): Promise<void> => {
    running = true
    while (pending.length > 0) {
      const group = pending.splice(0, max)
      try {
        await commit(group.map((p) => p.table))
        commits++
        for (const p of group) p.resolve()
      } catch (error) {
        for (const p of group) p.reject(error)
      }
    }
    running = false
  }
  return {
    put: (table) =>
      new Promise<void>((resolve, reject) => {
        pending.push({ table, resolve, reject })
        if (!running) void drain()
      }),
    commits: () => commits,
  }
}

/** A plain Node.js writer: IPC-encode in JS, append to one file (or keep in memory). */
function tsWriter(grouped: boolean): Opener {
  return async (spec, dir, pool) => {
    const s = spec.scenario
    let file: FileHandle | undefined
    const kept: Uint8Array[] = []
    let bytesWritten = 0
    if (s.store === 'file') {
      mkdirSync(dir, { recursive: true })
      file = await open(join(dir, 'log.arrows'), 'a')
    }
    const commit = async (tables: Table[]): Promise<void> => {
      const table = tables.length === 1 ? tables[0] : new Table(tables.flatMap((t) => t.batches))
      const bytes = tableToIPC(table, 'stream')
      bytesWritten += bytes.byteLength
      if (!file) {
        kept.push(bytes)
        return
      }
      await file.write(bytes)
      if (s.durable) await file.datasync()
    }
    const group = grouped ? groupCommitter(commit, CONCURRENCY) : undefined
    return {
      put: (i) => (group ? group.put(pool.tables[i]) : commit([pool.tables[i]])),
      extra: () => ({ bytesWritten, commits: group?.commits() }),
      close: async () => {
        await file?.close()
        kept.length = 0
      },
    }
  }
}

interface LanceDbTable {
  add(data: unknown): Promise<unknown>
  close(): void
}
interface LanceDbConnection {
  createEmptyTable(name: string, schema: unknown): Promise<LanceDbTable>
  close(): void
}
interface LanceDbModule {
  connect(uri: string): Promise<LanceDbConnection>
}
interface ArrowModule {
  tableFromIPC(bytes: Uint8Array): { schema: unknown }
}

/** LanceDB's SDK and the apache-arrow inside its peer range, from bench/.deps. */
export function loadLanceDb(): { lancedb: LanceDbModule; arrow: ArrowModule } {
  const require = createRequire(join(DEPS_DIR, 'index.js'))
  // LanceDB's napi-rs loader honours the same override as memwal's: it would
  // load memwal's addon. memwal's is loaded already (imported at the top).
  delete process.env.NAPI_RS_NATIVE_LIBRARY_PATH
  try {
    return {
      lancedb: require('@lancedb/lancedb') as LanceDbModule,
      arrow: require('apache-arrow') as ArrowModule,
    }
  } catch (error) {
    throw new Error(
      `@lancedb/lancedb is not installed in bench/.deps (run bash bench/setup.sh): ${(error as Error).message}`,
    )
  }
}

const lanceDb: Opener = async (spec, dir, pool) => {
  const { lancedb, arrow } = loadLanceDb()
  // Rebuilt in LanceDB's own apache-arrow before the clock starts.
  const tables = pool.tables.map((t) => arrow.tableFromIPC(tableToIPC(t, 'stream')))
  const db = await lancedb.connect(spec.scenario.store === 'memory' ? 'memory://' : dir)
  const table = await db.createEmptyTable('bench', tables[0].schema)
  // LanceDB commits every add as a table version; concurrent adds only race.
  let tail: Promise<unknown> = Promise.resolve()
  return {
    put: (i) => {
      const next = tail.then(() => table.add(tables[i]))
      tail = next.catch(() => undefined)
      return next.then(() => undefined)
    },
    close: async () => {
      table.close()
      db.close()
    },
  }
}

const OPENERS: Record<string, Opener> = {
  'memwal-wal': memwal('wal'),
  'memwal-mt': memwal('mt'),
  'memwal-mt-unflushed': memwal('mt-unflushed'),
  ts: tsWriter(false),
  'ts-group': tsWriter(true),
  lancedb: lanceDb,
}

function appendLimit(sync: 'fdatasync' | 'none'): LimitOpener {
  return (_spec, dir, ipc) => {
    mkdirSync(dir, { recursive: true })
    const fd = openSync(join(dir, 'append.bin'), 'a')
    return {
      op: (first, count) => {
        writevSync(fd, slice(ipc, first, count))
        if (sync === 'fdatasync') fdatasyncSync(fd)
      },
      close: () => closeSync(fd),
    }
  }
}

const cycleLimit: LimitOpener = (_spec, dir, ipc) => {
  mkdirSync(dir, { recursive: true })
  const dirFd = openSync(dir, 'r')
  let n = 0
  return {
    op: (first, count) => {
      const tmp = join(dir, `${n}.tmp`)
      const fd = openSync(tmp, 'wx')
      writevSync(fd, slice(ipc, first, count))
      fsyncSync(fd)
      closeSync(fd)
      renameSync(tmp, join(dir, `${n++}.arrow`))
      fsyncSync(dirFd)
    },
    close: () => closeSync(dirFd),
  }
}

const memcpyLimit: LimitOpener = (_spec, _dir, ipc) => {
  const ring = Buffer.alloc(256 * MIB)
  let at = 0
  return {
    op: (first, count) => {
      for (const b of slice(ipc, first, count)) {
        if (at + b.byteLength > ring.byteLength) at = 0
        b.copy(ring, at)
        at += b.byteLength
      }
    },
    close: () => {},
  }
}

const LIMITS: Record<string, LimitOpener> = {
  'limit-fdatasync': appendLimit('fdatasync'),
  'limit-pagecache': appendLimit('none'),
  'limit-cycle': cycleLimit,
  'limit-memcpy': memcpyLimit,
}

function slice(ipc: Buffer[], first: number, count: number): Buffer[] {
  return Array.from({ length: count }, (_, k) => ipc[(first + k) % ipc.length])
}

// ---------------------------------------------------------------- measuring

async function measureSink(
  spec: RunSpec,
  open: Opener,
  dir: string,
  pool: Workload,
  seconds: number,
): Promise<RunResult> {
  const s = spec.scenario
  const sink = await open(spec, dir, pool)
  const latencies: number[] = []
  let puts = 0
  let payloadBytes = 0
  let next = 0
  const start = performance.now()
  const deadline = start + seconds * 1000
  // Each loop keeps one put outstanding, so N loops keep N in flight.
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const i = next++ % pool.tables.length
      const t0 = performance.now()
      await sink.put(i)
      latencies.push(performance.now() - t0)
      puts++
      payloadBytes += pool.bytes[i]
    }
  }
  await Promise.all(Array.from({ length: s.concurrency }, loop))
  const putsDone = performance.now()
  // A non-durable put has not reached the store when it resolves: the clock
  // runs until close() has written everything.
  let extra: Record<string, unknown> | undefined
  if (!s.durable) extra = await sink.extra?.()
  const closeStart = performance.now()
  if (!s.durable) await sink.close()
  const end = performance.now()
  if (s.durable) {
    extra = await sink.extra?.()
    await sink.close()
  }
  return {
    puts,
    payloadBytes,
    seconds: (end - start) / 1000,
    putSeconds: (putsDone - start) / 1000,
    closeSeconds: s.durable ? 0 : (end - closeStart) / 1000,
    latencies: Float64Array.from(latencies),
    extra,
  }
}

function measureLimit(
  spec: RunSpec,
  open: LimitOpener,
  dir: string,
  pool: Workload,
  ipc: Buffer[],
  seconds: number,
): RunResult {
  const count = spec.scenario.concurrency
  const limit = open(spec, dir, ipc)
  const latencies: number[] = []
  let puts = 0
  let payloadBytes = 0
  const start = performance.now()
  const deadline = start + seconds * 1000
  while (performance.now() < deadline) {
    const first = puts % ipc.length
    const t0 = performance.now()
    limit.op(first, count)
    const took = performance.now() - t0
    for (let k = 0; k < count; k++) {
      latencies.push(took)
      payloadBytes += pool.bytes[(first + k) % ipc.length]
    }
    puts += count
  }
  const end = performance.now()
  limit.close()
  return {
    puts,
    payloadBytes,
    seconds: (end - start) / 1000,
    putSeconds: (end - start) / 1000,
    closeSeconds: 0,
    latencies: Float64Array.from(latencies),
  }
}

export async function runOne(spec: RunSpec): Promise<RunResult> {
  const s = spec.scenario
  const pool = spec.pool ? workloadFromRaw(spec.pool) : workload(s.rows, s.poolSize, s.seed)
  const ipc = pool.tables.map((t) => Buffer.from(tableToIPC(t, 'stream')))
  const warmDir = `${spec.dir}-warmup`
  const gc = (globalThis as { gc?: () => void }).gc
  const opener = OPENERS[spec.impl]
  const limit = LIMITS[spec.impl]
  if (!opener && !limit) throw new Error(`worker: unknown implementation '${spec.impl}'`)
  try {
    // A short untimed run on other files lets V8 compile the hot paths and the
    // addon set up its runtime before the timed run starts from scratch.
    if (spec.warmupSeconds > 0) {
      if (opener) await measureSink(spec, opener, warmDir, pool, spec.warmupSeconds)
      else measureLimit(spec, limit, warmDir, pool, ipc, spec.warmupSeconds)
      rmSync(warmDir, { recursive: true, force: true })
    }
    gc?.()
    return opener
      ? await measureSink(spec, opener, spec.dir, pool, spec.seconds)
      : measureLimit(spec, limit, spec.dir, pool, ipc, spec.seconds)
  } finally {
    rmSync(warmDir, { recursive: true, force: true })
    rmSync(spec.dir, { recursive: true, force: true })
  }
}

// Forked by bench/run.ts: one spec in, one result out, then exit.
if (require.main === module) {
  process.once('message', (spec: RunSpec) => {
    runOne(spec).then(
      (result) => process.send?.({ ok: true, result }, () => process.exit(0)),
      (error: unknown) =>
        process.send?.({ ok: false, error: String((error as Error)?.stack ?? error) }, () =>
          process.exit(0),
        ),
    )
  })
}
