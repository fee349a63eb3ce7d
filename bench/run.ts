// Throughput and latency of memwal's WAL-only writer on a local disk, next to
// pure-TypeScript writers run in the same process, alternating repetition by
// repetition so drift of the machine hits both sides. See bench/README.md.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { mkdir, open, rm, statfs } from 'node:fs/promises'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import {
  type Data,
  Field,
  FixedSizeList,
  Float32,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
  Utf8,
} from 'apache-arrow'
import { openShardWriter, type ShardWriterOptions } from '../ts/index.js'

const REPO = resolve(__dirname, '..')
const RESULTS_DIR = join(__dirname, 'results')
const MB = 1e6
const MIB = 1024 * 1024

const DIM = 128
const TEXT_CHARS = 40
const SMALL_ROWS = 20
const LARGE_BATCH_BYTES = MIB
const CONCURRENCY = 64
const GROUP_COMMIT_MAX = 64

function envNumber(name: string, fallback: number, integer: boolean): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got '${raw}'`)
  }
  return value
}

const SECONDS = envNumber('BENCH_SECONDS', 3, false)
const REPS = envNumber('BENCH_REPS', 3, true)

// ---------------------------------------------------------------- data

const VECTOR_TYPE = new FixedSizeList(DIM, new Field('item', new Float32(), false))
const SCHEMA = new Schema([
  new Field('id', new Int64(), false),
  new Field('vector', VECTOR_TYPE, false),
  new Field('text', new Utf8(), false),
])
const STRUCT_TYPE = new Struct(SCHEMA.fields)

// Deterministic data so runs are comparable; mulberry32.
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function makeTable(firstId: number, rows: number, random: () => number): Table {
  const ids = BigInt64Array.from({ length: rows }, (_, i) => BigInt(firstId + i))
  const vectors = Float32Array.from({ length: rows * DIM }, () => random() * 2 - 1)
  const offsets = new Int32Array(rows + 1)
  const text = new Uint8Array(rows * TEXT_CHARS)
  for (let row = 0; row < rows; row++) {
    const prefix = `doc ${firstId + row} `
    for (let c = 0; c < TEXT_CHARS; c++) {
      text[row * TEXT_CHARS + c] =
        c < prefix.length ? prefix.charCodeAt(c) : 97 + Math.floor(random() * 26)
    }
    offsets[row + 1] = (row + 1) * TEXT_CHARS
  }
  const children = [
    makeData({ type: new Int64(), length: rows, nullCount: 0, data: ids }),
    makeData({
      type: VECTOR_TYPE,
      length: rows,
      nullCount: 0,
      child: makeData({ type: new Float32(), length: rows * DIM, nullCount: 0, data: vectors }),
    }),
    makeData({ type: new Utf8(), length: rows, nullCount: 0, valueOffsets: offsets, data: text }),
  ]
  const data = makeData({ type: STRUCT_TYPE, length: rows, nullCount: 0, children })
  return new Table([new RecordBatch(SCHEMA, data)])
}

/** Bytes of every Arrow buffer below `data`: the payload a writer must persist. */
function dataBytes(data: Data): number {
  let bytes =
    (data.values?.byteLength ?? 0) +
    (data.valueOffsets?.byteLength ?? 0) +
    (data.nullBitmap?.byteLength ?? 0) +
    (data.typeIds?.byteLength ?? 0)
  for (const child of data.children) bytes += dataBytes(child)
  return bytes
}

function tableBytes(table: Table): number {
  return table.batches.reduce((sum, batch) => sum + dataBytes(batch.data), 0)
}

interface Workload {
  tables: Table[]
  bytes: number[]
  rows: number
}

// A rotating pool, built before any clock starts, so data generation is never timed.
function workload(rows: number, count: number, seed: number): Workload {
  const random = rng(seed)
  const tables = Array.from({ length: count }, (_, i) => makeTable(i * rows, rows, random))
  return { tables, bytes: tables.map(tableBytes), rows }
}

// ---------------------------------------------------------------- writers

/** What every implementation offers the measuring loop. */
interface Sink {
  put(table: Table): Promise<void>
  close(): Promise<void>
  /** Counters worth keeping, read just before close. */
  snapshot?(): Record<string, unknown>
}

type Opener = (dir: string) => Promise<Sink>

function memwal(config: Partial<ShardWriterOptions>): Opener {
  return async (dir) => {
    const writer = await openShardWriter(`file://${dir}`, {
      schema: SCHEMA,
      config: { enableMemtable: false, ...config },
    })
    return {
      put: async (table) => {
        await writer.put(table)
      },
      close: () => writer.close(),
      snapshot: () => ({
        stats: writer.stats(),
        walStats: writer.walStats(),
        config: writer.config,
      }),
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** One new file per commit, like memwal's WAL entries; fsync'd (file + directory) if durable. */
class FileCommitter {
  #next = 0
  constructor(
    readonly dir: string,
    readonly durable: boolean,
  ) {}

  async commit(bytes: Uint8Array): Promise<void> {
    const path = join(this.dir, `${String(this.#next++).padStart(20, '0')}.arrow`)
    const file = await open(path, 'wx')
    try {
      await file.writeFile(bytes)
      if (this.durable) await file.datasync()
    } finally {
      await file.close()
    }
    // The new name is durable only once the directory entry is.
    if (this.durable) await syncDir(this.dir)
  }
}

function filePerPut(durable: boolean): Opener {
  return async (dir) => {
    await mkdir(dir, { recursive: true })
    const files = new FileCommitter(dir, durable)
    return {
      put: (table) => files.commit(tableToIPC(table, 'stream')),
      close: async () => {},
    }
  }
}

interface Pending {
  table: Table
  resolve: () => void
  reject: (error: unknown) => void
}

/** Puts that arrive while a commit is in flight share the next file and fsync. */
function groupCommit(maxGroup: number): Opener {
  return async (dir) => {
    await mkdir(dir, { recursive: true })
    const files = new FileCommitter(dir, true)
    const pending: Pending[] = []
    let running = false
    let commits = 0
    const drain = async (): Promise<void> => {
      running = true
      while (pending.length > 0) {
        const group = pending.splice(0, maxGroup)
        try {
          const batches = group.flatMap((p) => p.table.batches)
          await files.commit(tableToIPC(new Table(batches), 'stream'))
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
      close: async () => {},
      snapshot: () => ({ commits }),
    }
  }
}

// ---------------------------------------------------------------- scenarios

interface Impl {
  name: string
  open: Opener
}

interface Scenario {
  key: string
  title: string
  workload: Workload
  concurrency: number
  /** Whether close() is inside the timed region (non-durable puts finish there). */
  closeTimed: boolean
  memwal: Impl
  baseline: Impl
}

function scenarios(): Scenario[] {
  const small = workload(SMALL_ROWS, 256, 1)
  const bytesPerRow = small.bytes[0] / SMALL_ROWS
  const largeRows = Math.round(LARGE_BATCH_BYTES / bytesPerRow)
  const large = workload(largeRows, 16, 2)
  return [
    {
      key: 'durable-serial',
      title: `durable puts, 1 writer, await each, ${SMALL_ROWS}-row batches`,
      workload: small,
      concurrency: 1,
      closeTimed: false,
      memwal: { name: 'memwal', open: memwal({ durableWrite: true }) },
      baseline: { name: 'ts file+fsync per put', open: filePerPut(true) },
    },
    {
      key: 'durable-concurrent',
      title: `durable puts, 1 writer, ${CONCURRENCY} in flight, ${SMALL_ROWS}-row batches`,
      workload: small,
      concurrency: CONCURRENCY,
      closeTimed: false,
      memwal: { name: 'memwal', open: memwal({ durableWrite: true }) },
      baseline: {
        name: `ts group commit (≤${GROUP_COMMIT_MAX})`,
        open: groupCommit(GROUP_COMMIT_MAX),
      },
    },
    {
      key: 'nondurable-bulk',
      title: `non-durable puts, 1 writer, await each, ${largeRows}-row (~1 MiB) batches, close timed`,
      workload: large,
      concurrency: 1,
      closeTimed: true,
      memwal: { name: 'memwal', open: memwal({ durableWrite: false }) },
      baseline: { name: 'ts file per put, no fsync', open: filePerPut(false) },
    },
  ]
}

// ---------------------------------------------------------------- measuring

interface Run {
  scenario: string
  impl: string
  rep: number
  puts: number
  rows: number
  payloadBytes: number
  seconds: number
  opsPerSec: number
  mbPerSec: number
  p50Ms: number
  p99Ms: number
  /** Raw per-put latencies; summarised, then dropped from the JSON. */
  latencies: number[]
  snapshot?: Record<string, unknown>
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function measure(
  scenario: Scenario,
  impl: Impl,
  dir: string,
  seconds: number,
  rep: number,
): Promise<Run> {
  const { tables, bytes } = scenario.workload
  const sink = await impl.open(dir)
  const latencies: number[] = []
  let puts = 0
  let payloadBytes = 0
  let next = 0
  const start = performance.now()
  const deadline = start + seconds * 1000
  // Each loop keeps one put outstanding, so N loops keep N in flight.
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const i = next++ % tables.length
      const t0 = performance.now()
      await sink.put(tables[i])
      latencies.push(performance.now() - t0)
      puts++
      payloadBytes += bytes[i]
    }
  }
  await Promise.all(Array.from({ length: scenario.concurrency }, loop))
  let snapshot: Record<string, unknown> | undefined
  if (scenario.closeTimed) {
    snapshot = sink.snapshot?.()
    await sink.close()
  }
  const elapsed = (performance.now() - start) / 1000
  if (!scenario.closeTimed) {
    snapshot = sink.snapshot?.()
    await sink.close()
  }
  await rm(dir, { recursive: true, force: true })
  const sorted = latencies.sort((a, b) => a - b)
  return {
    scenario: scenario.key,
    impl: impl.name,
    rep,
    puts,
    rows: puts * scenario.workload.rows,
    payloadBytes,
    seconds: elapsed,
    opsPerSec: puts / elapsed,
    mbPerSec: payloadBytes / MB / elapsed,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    latencies: sorted,
    snapshot,
  }
}

interface Summary {
  scenario: string
  title: string
  impl: string
  role: 'memwal' | 'baseline'
  reps: number
  batchRows: number
  batchPayloadBytes: number
  opsPerSec: { median: number; min: number; max: number }
  mbPerSec: { median: number; min: number; max: number }
  /** Over the latencies of every repetition pooled. */
  p50Ms: number
  p99Ms: number
  /** memwal median ops/s over the baseline's (same payload, so also the MB/s ratio). */
  ratioToBaseline?: number
}

function summarise(scenario: Scenario, impl: Impl, role: Summary['role'], runs: Run[]): Summary {
  const mine = runs.filter((r) => r.scenario === scenario.key && r.impl === impl.name)
  const ops = mine.map((r) => r.opsPerSec)
  const mbs = mine.map((r) => r.mbPerSec)
  const pooled = mine.flatMap((r) => r.latencies).sort((a, b) => a - b)
  return {
    scenario: scenario.key,
    title: scenario.title,
    impl: impl.name,
    role,
    reps: mine.length,
    batchRows: scenario.workload.rows,
    batchPayloadBytes: scenario.workload.bytes[0],
    opsPerSec: { median: median(ops), min: Math.min(...ops), max: Math.max(...ops) },
    mbPerSec: { median: median(mbs), min: Math.min(...mbs), max: Math.max(...mbs) },
    p50Ms: percentile(pooled, 0.5),
    p99Ms: percentile(pooled, 0.99),
  }
}

// ---------------------------------------------------------------- machine facts

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

// The addon says nothing about its build profile, so match it against cargo's outputs.
function nativeProfile(): string {
  const addon = join(REPO, `memwal.${os.platform()}-${os.arch()}-gnu.node`)
  if (!existsSync(addon)) return 'unknown'
  const addonHash = sha256(addon)
  for (const profile of ['release', 'debug']) {
    for (const dir of [join(REPO, 'target', profile), ...targetTripleDirs(profile)]) {
      const lib = join(dir, 'libmemwal_node.so')
      if (existsSync(lib) && sha256(lib) === addonHash) return profile
    }
  }
  return 'unknown'
}

function targetTripleDirs(profile: string): string[] {
  const arch = os.arch() === 'x64' ? 'x86_64' : os.arch() === 'arm64' ? 'aarch64' : os.arch()
  return [`${arch}-unknown-linux-gnu`, `${arch}-unknown-linux-musl`].map((triple) =>
    join(REPO, 'target', triple, profile),
  )
}

// fsync costs nothing on tmpfs, so the file system type changes what the numbers mean.
const FS_TYPES = new Map<number, string>([
  [0xef53, 'ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x794c7630, 'overlayfs'],
  [0x2fc12fc1, 'zfs'],
  [0xf2f52010, 'f2fs'],
])

async function machine(dir: string): Promise<Record<string, unknown>> {
  const cpus = os.cpus()
  let fsType: string | undefined
  try {
    const type = (await statfs(dir)).type
    fsType = FS_TYPES.get(type) ?? `0x${type.toString(16)}`
  } catch {
    fsType = undefined
  }
  return {
    cpuModel: cpus[0]?.model.trim(),
    cpuCount: cpus.length,
    totalMemoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    tmpdir: os.tmpdir(),
    tmpdirFsType: fsType,
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
    nativeProfile: nativeProfile(),
  }
}

// ---------------------------------------------------------------- report

const fmt = (value: number, digits = 1): string =>
  Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
const range = (r: { median: number; min: number; max: number }, digits = 1): string =>
  `${fmt(r.median, digits)} (${fmt(r.min, digits)}–${fmt(r.max, digits)})`

function markdown(
  facts: Record<string, unknown>,
  startedAt: string,
  summaries: Summary[],
  notes: string[],
): string {
  const gib = (Number(facts.totalMemoryBytes) / 1024 ** 3).toFixed(1)
  const lines = [
    `# memwal benchmark ${startedAt}`,
    '',
    `- machine: ${facts.cpuCount} × ${facts.cpuModel}, ${gib} GiB RAM, ${facts.platform}, kernel ${facts.kernel}`,
    `- node ${facts.node}; temp dir ${facts.tmpdir} (${facts.tmpdirFsType ?? 'unknown fs'})`,
    `- commit ${facts.gitCommit ?? 'unknown'}${facts.gitDirty ? ' (with uncommitted changes)' : ''}; native addon build: ${facts.nativeProfile}`,
    `- ${REPS} repetition(s) of ${SECONDS} s per implementation and scenario, memwal and baseline alternating`,
    '- MB = 10^6 bytes of Arrow buffers (payload, not file bytes); latency is per put, all repetitions pooled',
    '',
    '| scenario | implementation | ops/s median (min–max) | MB/s median (min–max) | p50 ms | p99 ms | memwal / baseline |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ]
  for (const s of summaries) {
    const ratio = s.ratioToBaseline === undefined ? '' : `${fmt(s.ratioToBaseline, 2)}×`
    lines.push(
      `| ${s.title} | ${s.impl} | ${range(s.opsPerSec)} | ${range(s.mbPerSec, 2)} | ${fmt(s.p50Ms, 3)} | ${fmt(s.p99Ms, 3)} | ${ratio} |`,
    )
  }
  if (notes.length > 0) lines.push('', ...notes.map((n) => `- ${n}`))
  return `${lines.join('\n')}\n`
}

/** memwal's own counters, to tell how many puts shared one WAL entry. */
function memwalNotes(scenario: Scenario, runs: Run[]): string[] {
  return runs
    .filter((r) => r.scenario === scenario.key && r.impl === scenario.memwal.name)
    .flatMap((r) => {
      const stats = r.snapshot?.stats as {
        walFlushCount: number
        walFlushBytes: number
        backpressureCount: number
        backpressureWaitMs: number
      }
      const wal = r.snapshot?.walStats as { pendingBytes: number; pendingBatches: number }
      if (!stats || !wal) return []
      const perEntry = stats.walFlushCount > 0 ? r.puts / stats.walFlushCount : Number.NaN
      const at = scenario.closeTimed ? 'before close' : 'at the end'
      return [
        `${scenario.key} rep ${r.rep}: memwal wrote ${stats.walFlushCount} WAL entries ` +
          `(${fmt(perEntry, 1)} puts each, ${fmt(stats.walFlushBytes / MB, 1)} MB) ${at}; ` +
          `${wal.pendingBatches} batches (${fmt(wal.pendingBytes / MB, 1)} MB by walStats) still queued; ` +
          `backpressure ${stats.backpressureCount}× / ${fmt(stats.backpressureWaitMs, 0)} ms`,
      ]
    })
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = new Date().toISOString()
  const root = mkdtempSync(join(os.tmpdir(), 'memwal-bench-'))
  try {
    const facts = await machine(root)
    const all = scenarios()
    let serial = 0
    const scratch = (): string => join(root, `run-${serial++}`)

    // Load the addon and let V8 compile the Arrow encoders before any timed run.
    for (const impl of [all[0].memwal, all[0].baseline]) {
      await measure(all[0], impl, scratch(), Math.min(0.5, SECONDS), 0)
    }

    const runs: Run[] = []
    for (let rep = 1; rep <= REPS; rep++) {
      for (const scenario of all) {
        // Swap who goes first on every repetition so neither always runs on a warmer disk.
        const order =
          rep % 2 === 1
            ? [scenario.memwal, scenario.baseline]
            : [scenario.baseline, scenario.memwal]
        for (const impl of order) {
          const run = await measure(scenario, impl, scratch(), SECONDS, rep)
          runs.push(run)
          process.stderr.write(
            `rep ${rep}/${REPS} ${scenario.key} ${impl.name}: ${fmt(run.opsPerSec)} ops/s, ` +
              `${fmt(run.mbPerSec, 2)} MB/s, p50 ${fmt(run.p50Ms, 3)} ms, p99 ${fmt(run.p99Ms, 3)} ms\n`,
          )
        }
      }
    }

    const summaries = all.flatMap((scenario) => {
      const mine = summarise(scenario, scenario.memwal, 'memwal', runs)
      const base = summarise(scenario, scenario.baseline, 'baseline', runs)
      mine.ratioToBaseline = mine.opsPerSec.median / base.opsPerSec.median
      return [mine, base]
    })
    const notes = all.flatMap((scenario) => memwalNotes(scenario, runs))
    const report = markdown(facts, startedAt, summaries, notes)

    mkdirSync(RESULTS_DIR, { recursive: true })
    const stem = join(RESULTS_DIR, startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z'))
    const json = {
      startedAt,
      settings: {
        seconds: SECONDS,
        reps: REPS,
        concurrency: CONCURRENCY,
        groupCommitMax: GROUP_COMMIT_MAX,
      },
      machine: facts,
      summaries,
      runs: runs.map(({ latencies: _, ...rest }) => rest),
    }
    writeFileSync(`${stem}.json`, `${JSON.stringify(json, null, 2)}\n`)
    writeFileSync(`${stem}.md`, report)
    process.stdout.write(report)
    process.stderr.write(`results: ${stem}.json, ${stem}.md\n`)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
