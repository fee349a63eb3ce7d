// Throughput and latency of memwal's WAL-only writer on a local disk, next to
// pure-TypeScript writers run in the same process, alternating repetition by
// repetition so drift of the machine hits both sides. See bench/README.md.
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdir, open, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Table, tableToIPC } from 'apache-arrow'
import { openShardWriter, type ShardWriterOptions } from '../ts/index.js'
import {
  envNumber,
  fmt,
  type MachineFacts,
  MB,
  MIB,
  machine,
  machineLines,
  rowsForBytes,
  SCHEMA,
  type Workload,
  workload,
  writeResults,
} from './common.js'

const SMALL_ROWS = 20
const LARGE_BATCH_BYTES = MIB
const CONCURRENCY = 64
const GROUP_COMMIT_MAX = 64

const SECONDS = envNumber('BENCH_SECONDS', 3, false)
const REPS = envNumber('BENCH_REPS', 3, true)

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
  const largeRows = rowsForBytes(LARGE_BATCH_BYTES, SMALL_ROWS)
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

// ---------------------------------------------------------------- report

const range = (r: { median: number; min: number; max: number }, digits = 1): string =>
  `${fmt(r.median, digits)} (${fmt(r.min, digits)}–${fmt(r.max, digits)})`

function markdown(
  facts: MachineFacts,
  startedAt: string,
  summaries: Summary[],
  notes: string[],
): string {
  const lines = [
    `# memwal benchmark ${startedAt}`,
    '',
    ...machineLines(facts),
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
    writeResults(startedAt, '', json, report)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
