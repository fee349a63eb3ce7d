// The scenario matrix and the implementations measured in it, shared by the
// orchestrator (bench/run.ts) and the per-run worker (bench/worker.ts).
import { MIB } from './common.js'

export type Store = 'file' | 'memory'

export const SMALL_ROWS = 20
export const LARGE_ROWS = 2000
export const CONCURRENCY = 64
/** Batches in each rotating pool: enough that nothing is the same object twice in a row. */
const POOL_SIZES: Record<number, number> = { [SMALL_ROWS]: 256, [LARGE_ROWS]: 16 }

/** One cell of the matrix; memwal in both modes and every baseline run in it. */
export interface Scenario {
  key: string
  title: string
  store: Store
  durable: boolean
  concurrency: number
  rows: number
  poolSize: number
  seed: number
}

export function scenarioMatrix(): Scenario[] {
  const out: Scenario[] = []
  for (const rows of [SMALL_ROWS, LARGE_ROWS]) {
    for (const durable of [true, false]) {
      for (const concurrency of [1, CONCURRENCY]) {
        for (const store of ['file', 'memory'] as const) {
          const d = durable ? 'durable' : 'nondurable'
          out.push({
            key: `${store}-${d}-c${concurrency}-${rows}rows`,
            title:
              `${store}://, ${durable ? 'durable' : 'non-durable'}, ` +
              `${concurrency === 1 ? '1 writer awaiting each put' : `${concurrency} puts in flight`}, ` +
              `${rows}-row batches`,
            store,
            durable,
            concurrency,
            rows,
            poolSize: POOL_SIZES[rows],
            // The same seed for the same batch size: every scenario of a size writes the same data.
            seed: rows,
          })
        }
      }
    }
  }
  return out
}

/** memwal's MemTable-mode settings in the matrix, so Parquet flushes run during a few-second run. */
export const MEMTABLE_SETTINGS = {
  maxMemtableSize: 64 * MIB,
  maxUnflushedMemtableBytes: 256 * MIB,
}

/**
 * pylance's MemTable on durable memory:// runs, where its flush fails: too big
 * to freeze during a run. memwal runs with it too ("memwal MemTable, no
 * flush") so that G8 compares the same work there; the room for batches is
 * what a few seconds at memwal's fastest small puts need.
 */
export const UNFLUSHED_MEMTABLE_SETTINGS = {
  maxMemtableSize: 16 * 1024 * MIB,
  maxUnflushedMemtableBytes: 32 * 1024 * MIB,
  maxMemtableBatches: 1_000_000,
}

/** pylance's row limit there (memwal has no row limit: bytes and batches decide). */
export const PYLANCE_UNFLUSHED_MAX_ROWS = 100_000_000

/** Where pylance runs with {@link UNFLUSHED_MEMTABLE_SETTINGS}. */
export const pylanceUnflushed = (s: Scenario): boolean => s.store === 'memory'

/**
 * Lance's durable put waits for its WAL task's next tick; 1 ms (its default
 * is 100) is the best it can do, and the same interval memwal does not need.
 */
export const PYLANCE_DURABLE_FLUSH_INTERVAL_MS = 1

export type Role = 'memwal' | 'baseline' | 'limit'

export interface Impl {
  key: string
  label: string
  role: Role
  runner: 'node' | 'python'
  /** What it does in `s`, for the report. */
  describe(s: Scenario): string
  /** Why it does not run in `s`, or undefined when it does. */
  unsupported(s: Scenario): string | undefined
}

const always = (): undefined => undefined

export const IMPLS: Impl[] = [
  {
    key: 'memwal-wal',
    label: 'memwal WAL-only',
    role: 'memwal',
    runner: 'node',
    describe: (s) =>
      `openShardWriter(${s.store}://…, { enableMemtable: false, durableWrite: ${s.durable} }), defaults otherwise`,
    unsupported: always,
  },
  {
    key: 'memwal-mt',
    label: 'memwal MemTable',
    role: 'memwal',
    runner: 'node',
    describe: (s) =>
      `MemTable mode with Parquet flushes (maxMemtableSize ${MEMTABLE_SETTINGS.maxMemtableSize / MIB} MiB, ` +
      `maxUnflushedMemtableBytes ${MEMTABLE_SETTINGS.maxUnflushedMemtableBytes / MIB} MiB), durableWrite: ${s.durable}`,
    unsupported: always,
  },
  {
    key: 'memwal-mt-unflushed',
    label: 'memwal MemTable, no flush',
    role: 'memwal',
    runner: 'node',
    describe: (s) =>
      `MemTable mode with pylance's settings here: a MemTable too big to freeze during the run, so no Parquet flush (maxMemtableSize ${UNFLUSHED_MEMTABLE_SETTINGS.maxMemtableSize / MIB / 1024} GiB), durableWrite: ${s.durable}`,
    unsupported: (s) =>
      pylanceUnflushed(s) && s.durable
        ? undefined
        : 'only where pylance runs without flushing (durable memory://), to compare it with the same work',
  },
  {
    key: 'ts',
    label: 'TS writer',
    role: 'baseline',
    runner: 'node',
    describe: (s) =>
      s.store === 'memory'
        ? 'tableToIPC per put, bytes kept in a JS array'
        : `tableToIPC + FileHandle.write to one append-only file${s.durable ? ' + datasync' : ''} per put`,
    unsupported: (s) =>
      s.concurrency === 1
        ? undefined
        : 'one-put-at-a-time writer; `TS group commit` covers puts in flight',
  },
  {
    key: 'ts-group',
    label: 'TS group commit',
    role: 'baseline',
    runner: 'node',
    describe: (s) =>
      s.store === 'memory'
        ? 'puts waiting while a commit runs share one tableToIPC (≤64 batches), kept in a JS array'
        : `puts waiting while a commit runs share one tableToIPC (≤64 batches) + one write${s.durable ? ' + one datasync' : ''}`,
    unsupported: (s) =>
      s.concurrency > 1 ? undefined : 'with one put at a time there is nothing to group',
  },
  {
    key: 'lancedb',
    label: 'LanceDB (Node)',
    role: 'baseline',
    runner: 'node',
    describe: (s) =>
      `@lancedb/lancedb table.add(batch), one add at a time${s.concurrency > 1 ? ' (serial adds: concurrent adds to one table only conflict and retry)' : ''}; ` +
      `${s.store === 'memory' ? "connect('memory://')" : 'connect(dir)'}; no fsync (LanceDB has no durable-write option)`,
    unsupported: always,
  },
  {
    key: 'pylance',
    label: 'Lance MemWAL (pylance)',
    role: 'baseline',
    runner: 'python',
    describe: (s) =>
      `LanceDataset.mem_wal_writer(shard, durable_write=${s.durable ? 'True' : 'False'}` +
      `${s.durable ? `, max_wal_flush_interval_ms=${PYLANCE_DURABLE_FLUSH_INTERVAL_MS}` : ''}, ` +
      `${pylanceUnflushed(s) ? 'a MemTable too big to flush during the run, since its flush fails on memory://' : 'the same MemTable sizes'}).put(batch)` +
      `${s.concurrency > 1 ? ` from ${s.concurrency} Python threads` : ''}; timed inside a Python process`,
    unsupported: (s) =>
      s.store === 'memory' && !s.durable
        ? "pylance 14.0.2 cannot close a writer on memory://: its MemTable flush reopens the generation through a new memory store ('Dataset … was not found'), and a non-durable run is timed up to close()"
        : undefined,
  },
  {
    key: 'limit-fdatasync',
    label: 'limit: append + fdatasync',
    role: 'limit',
    runner: 'node',
    describe: (s) =>
      `writev of the puts' IPC bytes to one file + fdatasync, ${s.concurrency === 1 ? 'per put' : `per ${s.concurrency} puts`} (synchronous fs calls)`,
    unsupported: (s) =>
      s.store === 'file' && s.durable ? undefined : 'physical limit for durable file:// scenarios',
  },
  {
    key: 'limit-cycle',
    label: 'limit: create+fsync+rename+fsync(dir)',
    role: 'limit',
    runner: 'node',
    describe: (s) =>
      `open(tmp) + writev + fsync + close + rename + fsync(dir), ${s.concurrency === 1 ? 'per put' : `per ${s.concurrency} puts`}: the cost of one durable WAL object`,
    unsupported: (s) =>
      s.store === 'file' && s.durable ? undefined : 'physical limit for durable file:// scenarios',
  },
  {
    key: 'limit-pagecache',
    label: 'limit: page-cache write',
    role: 'limit',
    runner: 'node',
    describe: (s) =>
      `writev of the puts' IPC bytes to one file, never synced, ${s.concurrency === 1 ? 'per put' : `per ${s.concurrency} puts`}`,
    unsupported: (s) =>
      s.store === 'file' && !s.durable
        ? undefined
        : 'physical limit for non-durable file:// scenarios',
  },
  {
    key: 'limit-memcpy',
    label: 'limit: memcpy',
    role: 'limit',
    runner: 'node',
    describe: () => "Buffer.copy of the puts' IPC bytes into a 256 MiB ring",
    unsupported: (s) =>
      s.store === 'memory' ? undefined : 'physical limit for memory:// scenarios',
  },
]

export function impl(key: string): Impl {
  const found = IMPLS.find((i) => i.key === key)
  if (!found) throw new Error(`unknown implementation '${key}'`)
  return found
}

/** Where LanceDB's SDK and its apache-arrow are installed by bench/setup.sh. */
export const DEPS_DIR = `${__dirname}/.deps`
