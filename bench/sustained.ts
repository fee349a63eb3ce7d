// Sustained ingest into Parquet under backpressure (memory held against the
// budget, MB/s, flushes) and WAL replay speed when a writer reopens a shard.
// See bench/README.md.
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import v8 from 'node:v8'
import vm from 'node:vm'
import {
  type MemTableStats,
  openShardWriter,
  type ShardManifestInfo,
  type ShardWriterOptions,
  type WriterStats,
} from '../ts/index.js'
import {
  envNumber,
  fmt,
  type MachineFacts,
  MB,
  MIB,
  machine,
  machineLines,
  SCHEMA,
  type Workload,
  workload,
  writeResults,
} from './common.js'
import { LARGE_ROWS } from './scenarios.js'

const BUDGET_MIB = envNumber('BENCH_BUDGET_MIB', 128, false)
const SUSTAINED_SECONDS = envNumber('BENCH_SUSTAINED_SECONDS', 60, false)
const REPLAY_MIB = envNumber('BENCH_REPLAY_MIB', 256, false)
/** Set by bench/run.ts: write the JSON there and no files under bench/results. */
const OUT = process.env.BENCH_SUSTAINED_OUT

const POOL_SIZE = 16
const RSS_INTERVAL_MS = 20
/** The goal: peak RSS at most this much above baseline plus the budget. */
const RSS_HEADROOM = 256 * MIB
const DEFAULT_MAX_MEMTABLE_BATCHES = 8_000

const mib = (bytes: number, digits = 1): string => `${fmt(bytes / MIB, digits)} MiB`

// ---------------------------------------------------------------- memory

interface MemorySample {
  rss: number
  heapTotal: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

interface MemoryReport {
  /** The sample with the highest RSS (JS heap and external memory at that moment). */
  peak: MemorySample
  /** Seconds from the start of sampling to the peak, and to the last sample. */
  peakAtSeconds: number
  seconds: number
  /** The last sample, taken when sampling stopped. */
  last: MemorySample
  samples: number
  /** Longest time between two samples: how well the timer kept up. */
  maxGapMs: number
}

// Garbage left by earlier work (building the batch pool, the previous
// measurement) would otherwise sit in the baseline and free itself mid-run.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

/** Two full collections with a pause between, so freed ArrayBuffers are released. */
async function collectGarbage(): Promise<void> {
  gc()
  await new Promise((resolve) => setTimeout(resolve, 50))
  gc()
}

function memorySample(): MemorySample {
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage()
  return { rss, heapTotal, heapUsed, external, arrayBuffers }
}

/** Samples `process.memoryUsage()` on a timer until stopped. */
class MemorySampler {
  readonly #timer: NodeJS.Timeout
  #peak: MemorySample
  #peakAt: number
  #lastSample: MemorySample
  #samples = 0
  readonly #start = performance.now()
  #last = this.#start
  #maxGapMs = 0

  constructor(intervalMs: number) {
    this.#peak = memorySample()
    this.#lastSample = this.#peak
    this.#peakAt = this.#start
    this.#timer = setInterval(() => this.sample(), intervalMs)
  }

  sample(): void {
    const now = performance.now()
    this.#maxGapMs = Math.max(this.#maxGapMs, now - this.#last)
    this.#last = now
    const usage = memorySample()
    this.#samples++
    this.#lastSample = usage
    if (usage.rss > this.#peak.rss) {
      this.#peak = usage
      this.#peakAt = now
    }
  }

  stop(): MemoryReport {
    clearInterval(this.#timer)
    this.sample()
    return {
      peak: this.#peak,
      peakAtSeconds: (this.#peakAt - this.#start) / 1000,
      seconds: (this.#last - this.#start) / 1000,
      last: this.#lastSample,
      samples: this.#samples,
      maxGapMs: this.#maxGapMs,
    }
  }
}

// ---------------------------------------------------------------- files

function filesUnder(dir: string): { files: number; bytes: number } {
  let files = 0
  let bytes = 0
  if (!existsSync(dir)) return { files, bytes }
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      const inner = filesUnder(path)
      files += inner.files
      bytes += inner.bytes
    } else if (entry.isFile()) {
      files++
      bytes += statSync(path).size
    }
  }
  return { files, bytes }
}

const shardDir = (dir: string, shardId: string): string => join(dir, '_mem_wal', shardId)

// ---------------------------------------------------------------- 1. sustained ingest

interface SustainedResult {
  shardId: string
  config: Partial<ShardWriterOptions>
  puts: number
  rows: number
  payloadBytes: number
  openMs: number
  /** First put until the last put resolved. */
  putSeconds: number
  /** forceSealActive + waitForFlushDrain + close. */
  drainAndCloseSeconds: number
  /** First put until close resolved: every row is in Parquet and the manifest. */
  seconds: number
  mbPerSec: number
  /** Before the writer opens, with the batch pool already built. */
  baseline: MemorySample
  memory: MemoryReport
  peakAboveBaseline: number
  rssGoalBytes: number
  rssGoalMet: boolean
  /** Largest active + frozen MemTable bytes seen by memtableStats() after a put. */
  peakUnflushedBytes: number
  /** Writer counters once every generation committed, just before close. */
  stats: WriterStats
  meanFlushMs: number
  manifest: {
    version: number
    generations: number
    physicalRows: number
    inMemoryBytes: number
    parquetFiles: number
    parquetBytes: number
    replayAfterWalEntryPosition: number
  }
  /** Rows a fresh writer replayed from the WAL after close (expected: 0). */
  rowsReplayedAfterClose: number
  failures: string[]
}

async function sustained(dir: string, pool: Workload): Promise<SustainedResult> {
  const budget = Math.round(BUDGET_MIB * MIB)
  const memtableSize = Math.floor(budget / 4)
  const batchBytes = pool.bytes[0]
  const batchesPerMemtable = Math.ceil(memtableSize / batchBytes) + 1
  const config: Partial<ShardWriterOptions> = {
    enableMemtable: true,
    durableWrite: false,
    maxUnflushedMemtableBytes: budget,
    maxMemtableSize: memtableSize,
    // The defaults unless the size limit needs more, so that bytes alone decide
    // when a MemTable freezes.
    maxMemtableBatches: Math.max(DEFAULT_MAX_MEMTABLE_BATCHES, batchesPerMemtable),
  }
  const uri = `file://${dir}`
  const failures: string[] = []

  await collectGarbage()
  const baseline = memorySample()
  const sampler = new MemorySampler(RSS_INTERVAL_MS)
  const openStart = performance.now()
  const writer = await openShardWriter(uri, { schema: SCHEMA, config })
  const openMs = performance.now() - openStart

  let rows = 0
  let payloadBytes = 0
  let peakUnflushedBytes = 0
  let puts = 0
  const start = performance.now()
  const deadline = start + SUSTAINED_SECONDS * 1000
  for (let i = 0; performance.now() < deadline; i++) {
    const k = i % pool.tables.length
    await writer.put(pool.tables[k])
    rows += pool.rows
    payloadBytes += pool.bytes[k]
    const m = await writer.memtableStats()
    peakUnflushedBytes = Math.max(peakUnflushedBytes, m.estimatedSize + m.frozenBytes)
    puts++
  }
  const putsDone = performance.now()
  // close() would flush the rest too; sealing and draining first lets the
  // counters below include every generation.
  await writer.forceSealActive()
  await writer.waitForFlushDrain()
  const stats = writer.stats()
  await writer.close()
  const end = performance.now()
  const memory = sampler.stop()
  const seconds = (end - start) / 1000

  // What a new writer sees: every generation committed, nothing left to replay.
  const check = await openShardWriter(uri, {
    schema: SCHEMA,
    shardId: writer.shardId,
    config: { maxMemtableBatches: config.maxMemtableBatches },
  })
  let manifest: ShardManifestInfo
  let leftover: MemTableStats
  try {
    manifest = await check.manifest()
    leftover = await check.memtableStats()
  } finally {
    await check.close()
  }

  const generations = manifest.flushedGenerations
  let physicalRows = 0
  let inMemoryBytes = 0
  let parquetFiles = 0
  let parquetBytes = 0
  for (const g of generations) {
    if (g.physicalRows === undefined) {
      failures.push(`manifest generation ${g.generation} (${g.path}) has no physicalRows`)
    }
    physicalRows += g.physicalRows ?? 0
    inMemoryBytes += g.inMemoryBytes ?? 0
    const file = join(shardDir(dir, writer.shardId), g.path, 'data.parquet')
    if (existsSync(file)) {
      parquetFiles++
      parquetBytes += statSync(file).size
    } else {
      failures.push(`manifest generation ${g.generation} names ${g.path}/data.parquet, not on disk`)
    }
  }
  if (physicalRows !== rows) {
    failures.push(
      `manifest generations hold ${physicalRows} physicalRows, but ${rows} rows were written`,
    )
  }
  if (generations.length !== stats.memtableFlushCount) {
    failures.push(
      `manifest lists ${generations.length} generations, but the writer counted ${stats.memtableFlushCount} flushes`,
    )
  }
  if (stats.memtableFlushRows !== rows) {
    failures.push(`the writer flushed ${stats.memtableFlushRows} rows of ${rows} written`)
  }
  const rowsReplayedAfterClose = leftover.rowCount + leftover.frozenRows
  if (rowsReplayedAfterClose !== 0) {
    failures.push(
      `a writer reopened after close replayed ${rowsReplayedAfterClose} rows from the WAL (expected 0: all in Parquet)`,
    )
  }

  const peakAboveBaseline = memory.peak.rss - baseline.rss
  const rssGoalBytes = budget + RSS_HEADROOM
  return {
    shardId: writer.shardId,
    config,
    puts,
    rows,
    payloadBytes,
    openMs,
    putSeconds: (putsDone - start) / 1000,
    drainAndCloseSeconds: (end - putsDone) / 1000,
    seconds,
    mbPerSec: payloadBytes / MB / seconds,
    baseline,
    memory,
    peakAboveBaseline,
    rssGoalBytes,
    rssGoalMet: peakAboveBaseline <= rssGoalBytes,
    peakUnflushedBytes,
    stats,
    meanFlushMs:
      stats.memtableFlushCount > 0
        ? stats.memtableFlushTimeMs / stats.memtableFlushCount
        : Number.NaN,
    manifest: {
      version: manifest.version,
      generations: generations.length,
      physicalRows,
      inMemoryBytes,
      parquetFiles,
      parquetBytes,
      replayAfterWalEntryPosition: manifest.replayAfterWalEntryPosition,
    },
    rowsReplayedAfterClose,
    failures,
  }
}

// ---------------------------------------------------------------- 2. replay on reopen

interface ReplayResult {
  shardId: string
  config: Partial<ShardWriterOptions>
  puts: number
  rows: number
  payloadBytes: number
  walWriteSeconds: number
  walFiles: number
  walBytes: number
  openMs: number
  walMbPerSec: number
  replayed: MemTableStats
  baselineRss: number
  memory: MemoryReport
  /** Closing the replaying writer flushes every replayed row; not timed above. */
  closeSeconds: number
  failures: string[]
}

async function replay(dir: string, pool: Workload): Promise<ReplayResult> {
  const target = Math.round(REPLAY_MIB * MIB)
  const puts = Math.ceil(target / pool.bytes[0])
  const uri = `file://${dir}`
  const shardId = randomUUID()
  const failures: string[] = []

  // A WAL-only writer never flushes, so every entry it closes with stays
  // after the replay cursor.
  const walWriter = await openShardWriter(uri, {
    schema: SCHEMA,
    shardId,
    config: { enableMemtable: false, durableWrite: false },
  })
  let rows = 0
  let payloadBytes = 0
  const writeStart = performance.now()
  for (let i = 0; i < puts; i++) {
    const k = i % pool.tables.length
    await walWriter.put(pool.tables[k])
    rows += pool.rows
    payloadBytes += pool.bytes[k]
  }
  await walWriter.close()
  const walWriteSeconds = (performance.now() - writeStart) / 1000
  const wal = filesUnder(join(shardDir(dir, shardId), 'wal'))

  // Limits far above the WAL's size so every row stays in one active MemTable.
  const big = Math.max(4 * target, 1024 * MIB)
  const config: Partial<ShardWriterOptions> = {
    durableWrite: false,
    maxMemtableSize: big,
    maxUnflushedMemtableBytes: big,
    maxMemtableBatches: Math.max(DEFAULT_MAX_MEMTABLE_BATCHES, 2 * puts),
  }
  await collectGarbage()
  const baselineRss = process.memoryUsage().rss
  const sampler = new MemorySampler(RSS_INTERVAL_MS)
  const openStart = performance.now()
  const writer = await openShardWriter(uri, { schema: SCHEMA, shardId, config })
  const openMs = performance.now() - openStart
  const memory = sampler.stop()
  let replayed: MemTableStats
  const closeStart = performance.now()
  try {
    replayed = await writer.memtableStats()
  } finally {
    await writer.close()
  }
  const closeSeconds = (performance.now() - closeStart) / 1000

  if (replayed.rowCount !== rows) {
    failures.push(
      `the reopened writer's active MemTable holds ${replayed.rowCount} rows, but ${rows} were written to the WAL` +
        (replayed.frozenRows > 0 ? ` (${replayed.frozenRows} more in frozen MemTables)` : ''),
    )
  }
  return {
    shardId,
    config,
    puts,
    rows,
    payloadBytes,
    walWriteSeconds,
    walFiles: wal.files,
    walBytes: wal.bytes,
    openMs,
    walMbPerSec: wal.bytes / MB / (openMs / 1000),
    replayed,
    baselineRss,
    memory,
    closeSeconds,
    failures,
  }
}

// ---------------------------------------------------------------- report

function markdown(
  facts: MachineFacts,
  startedAt: string,
  batchRows: number,
  s: SustainedResult,
  r: ReplayResult,
): string {
  const backpressureShare = s.stats.backpressureWaitMs / 1000 / s.seconds
  const peak = s.memory.peak
  const lines = [
    `# memwal sustained-ingest benchmark ${startedAt}`,
    '',
    ...machineLines(facts),
    `- one writer awaiting each put of a ${batchRows}-row (~1.1 MB) batch; MB = 10^6 bytes of Arrow buffers (payload), MiB = 2^20 bytes`,
    '',
    `## Sustained ingest into Parquet (budget ${mib(s.config.maxUnflushedMemtableBytes ?? 0, 0)}, puts for ${SUSTAINED_SECONDS} s)`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| config | MemTable mode, \`durableWrite: false\`, \`maxUnflushedMemtableBytes\` ${mib(s.config.maxUnflushedMemtableBytes ?? 0)}, \`maxMemtableSize\` ${mib(s.config.maxMemtableSize ?? 0)} |`,
    `| written | ${s.puts} puts, ${s.rows} rows, ${mib(s.payloadBytes)} payload |`,
    `| time, first put to close resolved | ${fmt(s.seconds, 2)} s (puts ${fmt(s.putSeconds, 2)} s, seal + drain + close ${fmt(s.drainAndCloseSeconds, 2)} s; open ${fmt(s.openMs, 0)} ms not included) |`,
    `| throughput | **${fmt(s.mbPerSec, 1)} MB/s** |`,
    `| RSS baseline (before open) | ${mib(s.baseline.rss)} (JS heap ${mib(s.baseline.heapTotal)}, external ${mib(s.baseline.external)} of which ArrayBuffers ${mib(s.baseline.arrayBuffers)}) |`,
    `| RSS peak | ${mib(peak.rss)} (JS heap ${mib(peak.heapTotal)}, external ${mib(peak.external)} of which ArrayBuffers ${mib(peak.arrayBuffers)}) |`,
    `| RSS peak − baseline | **${mib(s.peakAboveBaseline)}** = ${fmt(s.peakAboveBaseline / (s.config.maxUnflushedMemtableBytes ?? 1), 2)}× budget |`,
    `| goal: peak − baseline ≤ budget + 256 MiB = ${mib(s.rssGoalBytes, 0)} | ${s.rssGoalMet ? 'met' : '**MISSED**'} |`,
    `| RSS peak reached after | ${fmt(s.memory.peakAtSeconds, 2)} s of ${fmt(s.memory.seconds, 2)} s sampled; RSS after close ${mib(s.memory.last.rss)} |`,
    `| RSS samples | ${s.memory.samples}, every ${RSS_INTERVAL_MS} ms, longest gap ${fmt(s.memory.maxGapMs, 0)} ms |`,
    `| peak unflushed bytes (memtableStats after each put) | ${mib(s.peakUnflushedBytes)} |`,
    `| generations | ${s.manifest.generations} in the manifest, ${s.stats.memtableFlushCount} flushes counted |`,
    `| mean flush latency per generation | ${fmt(s.meanFlushMs, 0)} ms (${s.stats.memtableFlushCount} flushes, ${fmt(s.stats.memtableFlushTimeMs, 0)} ms in all) |`,
    `| backpressure | ${s.stats.backpressureCount} waits, ${fmt(s.stats.backpressureWaitMs, 0)} ms (${fmt(100 * backpressureShare, 0)}% of the time) |`,
    `| Parquet | ${s.manifest.parquetFiles} files, ${mib(s.manifest.parquetBytes)} (${fmt(s.manifest.parquetBytes / s.payloadBytes, 2)}× payload) |`,
    `| manifest check | ${s.failures.length === 0 ? `OK: ${s.manifest.physicalRows} physicalRows = rows written; a reopened writer replayed ${s.rowsReplayedAfterClose} rows` : '**FAILED** (see below)'} |`,
    '',
    `## Replay on reopen (${mib(r.walBytes)} of WAL)`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| WAL | ${r.walFiles} entries, ${mib(r.walBytes)} (${r.puts} puts, ${r.rows} rows, ${mib(r.payloadBytes)} payload), written by a WAL-only writer in ${fmt(r.walWriteSeconds, 2)} s |`,
    `| openShardWriter (claim epoch, fence, replay) | ${fmt(r.openMs, 0)} ms |`,
    `| replay speed | **${fmt(r.walMbPerSec, 1)} MB/s** of WAL files |`,
    `| replayed rows | ${r.replayed.rowCount} in the active MemTable (${r.replayed.batchCount} batches, ${mib(r.replayed.estimatedSize)}), ${r.replayed.frozenCount} frozen; ${r.failures.length === 0 ? 'OK' : '**FAILED**'} |`,
    `| RSS during open | baseline ${mib(r.baselineRss)}, peak ${mib(r.memory.peak.rss)} (+${mib(r.memory.peak.rss - r.baselineRss)}) |`,
    `| close afterwards (flushes the replayed rows; not timed above) | ${fmt(r.closeSeconds, 2)} s |`,
    '',
    '- the WAL was just written, so replay reads it from the page cache: this measures decoding and MemTable inserts, not the disk',
  ]
  const failures = [
    ...s.failures.map((f) => `sustained: ${f}`),
    ...r.failures.map((f) => `replay: ${f}`),
  ]
  if (failures.length > 0) lines.push('', '## FAILURES', '', ...failures.map((f) => `- ${f}`))
  return `${lines.join('\n')}\n`
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = new Date().toISOString()
  const root = mkdtempSync(join(os.tmpdir(), 'memwal-sustained-'))
  try {
    const facts = await machine(root)
    const rows = LARGE_ROWS
    // Built before the baseline RSS is taken, and reused by both measurements.
    // The same batches as the matrix's 2000-row scenarios (and pylance's run).
    const pool = workload(rows, POOL_SIZE, rows)

    process.stderr.write(
      `sustained: budget ${BUDGET_MIB} MiB, putting ${rows}-row batches for ${SUSTAINED_SECONDS} s…\n`,
    )
    const s = await sustained(join(root, 'sustained'), pool)
    process.stderr.write(
      `sustained: ${fmt(s.mbPerSec, 1)} MB/s, peak RSS +${mib(s.peakAboveBaseline)}, ` +
        `${s.manifest.generations} generations\n`,
    )
    process.stderr.write(`replay: writing ${REPLAY_MIB} MiB of WAL, then reopening…\n`)
    const r = await replay(join(root, 'replay'), pool)
    process.stderr.write(`replay: ${fmt(r.openMs, 0)} ms, ${fmt(r.walMbPerSec, 1)} MB/s\n`)

    const report = markdown(facts, startedAt, rows, s, r)
    const json = {
      startedAt,
      settings: {
        budgetMiB: BUDGET_MIB,
        sustainedSeconds: SUSTAINED_SECONDS,
        replayMiB: REPLAY_MIB,
        batchRows: rows,
        batchPayloadBytes: pool.bytes[0],
        rssIntervalMs: RSS_INTERVAL_MS,
        rssHeadroomBytes: RSS_HEADROOM,
      },
      machine: facts,
      sustained: s,
      replay: r,
    }
    if (OUT) {
      writeFileSync(OUT, `${JSON.stringify({ ...json, report }, null, 2)}\n`)
      process.stdout.write(report)
    } else {
      writeResults(startedAt, '-sustained', json, report)
    }
    const failures = s.failures.length + r.failures.length
    if (failures > 0) {
      process.stderr.write(`FAILED: ${failures} check(s) failed, see the report above\n`)
      process.exitCode = 1
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
