// Summaries, goals and the markdown report of bench/run.ts.
import {
  fmt,
  type MachineFacts,
  MIB,
  machineLines,
  median,
  percentile,
  type Spread,
  spread,
} from './common.js'
import {
  CONCURRENCY,
  IMPLS,
  impl,
  LARGE_ROWS,
  pylanceUnflushed,
  type Scenario,
  SMALL_ROWS,
} from './scenarios.js'

// ---------------------------------------------------------------- shapes

export interface Run {
  scenario: string
  impl: string
  rep: number
  puts: number
  payloadBytes: number
  seconds: number
  putSeconds: number
  closeSeconds: number
  opsPerSec: number
  mbPerSec: number
  latencies: Float64Array
  extra?: Record<string, unknown>
  /** Set when the run failed; the other fields are then missing. */
  error?: string
}

export interface Ratio extends Spread {
  /** Repetitions paired for min/max (memwal's rep r against the baseline's rep r). */
  pairs: number
}

export interface Summary {
  scenario: string
  impl: string
  reps: number
  errors: string[]
  opsPerSec: Spread
  mbPerSec: Spread
  /** Per put, every repetition pooled. */
  p50Ms: number
  p99Ms: number
  p999Ms: number
  maxMs: number
  closeSeconds: number
  /** memwal only: its median MB/s over each baseline's (same batches, so the ops/s ratio too). */
  ratios?: Record<string, Ratio>
}

export interface Availability {
  versions: Record<string, string>
  missing: Record<string, string>
}

export interface SustainedJson {
  settings: Record<string, number>
  sustained: {
    mbPerSec: number
    seconds: number
    puts: number
    payloadBytes: number
    peakAboveBaseline: number
    rssGoalBytes: number
    config: { maxUnflushedMemtableBytes?: number; maxMemtableSize?: number }
    stats: { memtableFlushCount: number; backpressureWaitMs: number }
    failures: string[]
  }
  replay: {
    walBytes: number
    walFiles: number
    openMs: number
    walMbPerSec: number
    rows: number
    failures: string[]
  }
  report: string
}

export interface PylanceSustained {
  mbPerSec: number
  seconds: number
  puts: number
  payloadBytes: number
  peakAboveBaseline: number
  closeSeconds: number
  stats: Record<string, number>
  lance: string
}

export interface PylanceReplay {
  written: {
    shardId: string
    puts: number
    rows: number
    payloadBytes: number
    walWriteSeconds: number
    walFiles: number
    walBytes: number
  }
  opened: {
    openMs: number
    walFiles: number
    walBytes: number
    walMbPerSec: number
    replayedRows: number
  }
}

export interface SuiteResults {
  startedAt: string
  wallSeconds: number
  settings: Record<string, unknown> & { seconds: number; reps: number; warmupSeconds: number }
  machine: MachineFacts & { loadAverageAtEnd: number[] }
  availability: Availability
  scenarios: (Scenario & { notApplicable: Record<string, string> })[]
  summaries: Summary[]
  sustained?: SustainedJson
  pylanceSustained?: PylanceSustained | { error: string }
  pylanceReplay?: PylanceReplay | { error: string }
  runs: Run[]
}

// ---------------------------------------------------------------- summaries

const MEMWAL_KEYS = IMPLS.filter((i) => i.role === 'memwal').map((i) => i.key)

/** pylance has a MemTable and no WAL-only mode: it is compared with memwal's MemTable mode only. */
export function comparable(memwal: string, baseline: string): boolean {
  return !(baseline === 'pylance' && memwal === 'memwal-wal')
}

export function summarise(scenarios: Scenario[], runs: Run[]): Summary[] {
  const out: Summary[] = []
  for (const s of scenarios) {
    const here = runs.filter((r) => r.scenario === s.key)
    const byImpl = new Map<string, Run[]>()
    for (const r of here) byImpl.set(r.impl, [...(byImpl.get(r.impl) ?? []), r])
    const summaries = new Map<string, Summary>()
    for (const [key, all] of byImpl) {
      const ok = all.filter((r) => !r.error)
      const pooled = concatSorted(ok.map((r) => r.latencies))
      summaries.set(key, {
        scenario: s.key,
        impl: key,
        reps: ok.length,
        errors: all.filter((r) => r.error).map((r) => `rep ${r.rep}: ${r.error}`),
        opsPerSec: spread(ok.map((r) => r.opsPerSec)),
        mbPerSec: spread(ok.map((r) => r.mbPerSec)),
        p50Ms: percentile(pooled, 0.5),
        p99Ms: percentile(pooled, 0.99),
        p999Ms: percentile(pooled, 0.999),
        maxMs: pooled.length > 0 ? pooled[pooled.length - 1] : Number.NaN,
        closeSeconds: median(ok.map((r) => r.closeSeconds)),
      })
    }
    for (const m of MEMWAL_KEYS) {
      const mine = summaries.get(m)
      if (!mine || mine.reps === 0) continue
      mine.ratios = {}
      for (const [key, base] of summaries) {
        if (MEMWAL_KEYS.includes(key) || base.reps === 0 || !comparable(m, key)) continue
        const perRep: number[] = []
        for (const r of byImpl.get(m) ?? []) {
          const b = (byImpl.get(key) ?? []).find((x) => x.rep === r.rep && !x.error)
          if (!r.error && b) perRep.push(r.mbPerSec / b.mbPerSec)
        }
        const pairs = spread(perRep)
        mine.ratios[key] = {
          median: mine.mbPerSec.median / base.mbPerSec.median,
          min: pairs.min,
          max: pairs.max,
          pairs: perRep.length,
        }
      }
    }
    // Matrix order: memwal first, then baselines, then limits.
    for (const i of IMPLS) {
      const found = summaries.get(i.key)
      if (found) out.push(found)
    }
  }
  return out
}

function concatSorted(parts: Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    all.set(p, at)
    at += p.length
  }
  return all.sort()
}

// ---------------------------------------------------------------- goals

export interface GoalRow {
  /** G1…G8, in the order the issue lists them. */
  id: string
  goal: string
  /** Scenario key, or `sustained` / `replay`. */
  where: string
  memwal: string
  /** What the value is: "÷ TS writer", "puts/s", … */
  measure: string
  /** For ratio goals: the implementation memwal is divided by. */
  baseline?: string
  measured: number
  target: number
  higherIsBetter: boolean
  /** undefined: not measured in this run. */
  pass?: boolean
  /** measured ÷ target when higher is better, target ÷ measured otherwise: ≥ 1 passes. */
  margin: number
  note?: string
}

const G1 = `Durable, 1 writer, ${SMALL_ROWS} rows`
const G2 = `Durable, ${CONCURRENCY} in flight, ${SMALL_ROWS} rows`
const G3 = `Durable, ${LARGE_ROWS}-row (~1.1 MB) batches`
const G4 = `Non-durable, ${SMALL_ROWS} rows, 1 writer awaiting each put`
const G5 = `Non-durable WAL-only, ${LARGE_ROWS}-row batches`
const G6 = 'MemTable mode with Parquet flush, sustained'
const G7 = 'Replay'
const G8 = "Ahead of Lance's own writer (pylance)"
const GOAL_ID: Record<string, string> = Object.fromEntries(
  [G1, G2, G3, G4, G5, G6, G7, G8].map((goal, i) => [goal, `G${i + 1}`]),
)

function row(
  goal: string,
  where: string,
  memwal: string,
  measure: string,
  measured: number | undefined,
  target: number,
  higherIsBetter = true,
  note?: string,
): GoalRow {
  const value = measured ?? Number.NaN
  const ok = Number.isFinite(value)
  const margin = ok ? (higherIsBetter ? value / target : target / value) : Number.NaN
  return {
    id: GOAL_ID[goal] ?? '?',
    goal,
    where,
    memwal,
    measure,
    measured: value,
    target,
    higherIsBetter,
    pass: ok ? margin >= 1 : undefined,
    margin,
    note: ok ? note : `not measured${note ? `: ${note}` : ''}`,
  }
}

export const MODE_LABEL: Record<string, string> = {
  'memwal-wal': 'WAL-only',
  'memwal-mt': 'MemTable',
  'memwal-mt-unflushed': 'MemTable, no flush',
}

export function evaluateGoals(r: SuiteResults): GoalRow[] {
  const ran = new Set<string>(r.scenarios.map((s) => s.key))
  if (r.sustained || r.pylanceSustained) ran.add('sustained')
  if (r.sustained || r.pylanceReplay) ran.add('replay')
  return allGoals(r).filter((g) => ran.has(g.where))
}

function allGoals(r: SuiteResults): GoalRow[] {
  const rows: GoalRow[] = []
  const find = (scenario: string, key: string): Summary | undefined =>
    r.summaries.find((s) => s.scenario === scenario && s.impl === key && s.reps > 0)
  const ratio = (scenario: string, mode: string, base: string): number | undefined =>
    find(scenario, mode)?.ratios?.[base]?.median
  const vs = (
    goal: string,
    sc: string,
    m: string,
    measure: string,
    base: string,
    target: number,
  ) => ({
    ...row(goal, sc, m, measure, ratio(sc, m, base), target),
    baseline: base,
  })
  const modes = ['memwal-wal', 'memwal-mt']
  const small = SMALL_ROWS
  const large = LARGE_ROWS
  const c = CONCURRENCY

  for (const m of modes) {
    const sc = `file-durable-c1-${small}rows`
    rows.push(vs(G1, sc, m, '÷ TS writer (fdatasync per put)', 'ts', 0.8))
    rows.push(vs(G1, sc, m, '÷ LanceDB', 'lancedb', 5))
  }
  for (const m of modes) {
    const sc = `file-durable-c${c}-${small}rows`
    rows.push(vs(G2, sc, m, '÷ TS group commit', 'ts-group', 3))
    rows.push(vs(G2, sc, m, "÷ LanceDB's serial adds", 'lancedb', 100))
  }
  for (const conc of [1, c]) {
    for (const m of modes) {
      const sc = `file-durable-c${conc}-${large}rows`
      rows.push(vs(G3, sc, m, '÷ append + fdatasync', 'limit-fdatasync', 0.75))
    }
  }
  for (const store of ['file', 'memory']) {
    for (const m of modes) {
      const sc = `${store}-nondurable-c1-${small}rows`
      const s = find(sc, m)
      rows.push(row(G4, sc, m, 'puts/s', s?.opsPerSec.median, 100_000))
      rows.push(row(G4, sc, m, 'p99 latency (ms)', s?.p99Ms, 0.05, false))
    }
  }
  for (const conc of [1, c]) {
    const sc = `file-nondurable-c${conc}-${large}rows`
    rows.push(vs(G5, sc, 'memwal-wal', '÷ page-cache write', 'limit-pagecache', 0.6))
  }
  const sus = r.sustained?.sustained
  rows.push(row(G6, 'sustained', 'memwal-mt', 'MB/s', sus?.mbPerSec, 400))
  rows.push(
    row(
      G6,
      'sustained',
      'memwal-mt',
      'peak RSS − baseline (MiB)',
      sus ? sus.peakAboveBaseline / MIB : undefined,
      sus ? sus.rssGoalBytes / MIB : 128 + 256,
      false,
      sus
        ? `budget ${fmt((sus.config.maxUnflushedMemtableBytes ?? 0) / MIB, 0)} MiB + 256 MiB`
        : undefined,
    ),
  )
  const rep = r.sustained?.replay
  rows.push(row(G7, 'replay', 'memwal-mt', 'MB/s of WAL', rep?.walMbPerSec, 1000))

  for (const s of r.scenarios) {
    if (s.notApplicable.pylance) continue
    // Where pylance cannot flush, it is held to memwal doing the same work.
    const mine = pylanceUnflushed(s) && s.durable ? 'memwal-mt-unflushed' : 'memwal-mt'
    if (!find(s.key, 'pylance')) {
      rows.push(row(G8, s.key, mine, '÷ pylance', undefined, 1))
      continue
    }
    rows.push(vs(G8, s.key, mine, '÷ pylance', 'pylance', 1))
  }
  const ps = r.pylanceSustained
  if (ps) {
    const value = 'error' in ps ? undefined : sus ? sus.mbPerSec / ps.mbPerSec : undefined
    rows.push(
      row(
        G8,
        'sustained',
        'memwal-mt',
        '÷ pylance MB/s',
        value,
        1,
        true,
        'error' in ps ? ps.error : undefined,
      ),
    )
  }
  const pr = r.pylanceReplay
  if (pr) {
    const value =
      'error' in pr ? undefined : rep ? rep.walMbPerSec / pr.opened.walMbPerSec : undefined
    rows.push(
      row(
        G8,
        'replay',
        'memwal-mt',
        '÷ pylance WAL MB/s',
        value,
        1,
        true,
        'error' in pr ? pr.error : undefined,
      ),
    )
  }
  return rows
}

// ---------------------------------------------------------------- markdown

/** Latency in µs below 1 ms, in ms above. */
export function latency(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  if (ms < 1) return `${fmt(ms * 1000, ms < 0.01 ? 1 : 0)} µs`
  return `${fmt(ms, ms < 10 ? 2 : 1)} ms`
}

function number(value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (value >= 100) return Math.round(value).toLocaleString('en-US')
  if (value >= 10) return fmt(value, 1)
  return fmt(value, 2)
}

const range = (s: Spread): string => `${number(s.median)} (${number(s.min)}–${number(s.max)})`

export function ratioText(x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  if (x < 0.01) return `${x.toPrecision(1)}×`
  if (x >= 100) return `${Math.round(x)}×`
  if (x >= 10) return `${fmt(x, 1)}×`
  return `${fmt(x, 2)}×`
}

function measuredText(g: GoalRow): string {
  if (!Number.isFinite(g.measured)) return 'n/a'
  if (g.measure.startsWith('÷')) return ratioText(g.measured)
  if (g.measure.includes('(ms)')) return latency(g.measured)
  return number(g.measured)
}

function targetText(g: GoalRow): string {
  const op = g.higherIsBetter ? '≥' : '≤'
  if (g.measure.startsWith('÷')) return `${op} ${ratioText(g.target)}`
  if (g.measure.includes('(ms)')) return `${op} ${latency(g.target)}`
  return `${op} ${number(g.target)}`
}

/** Text safe inside a markdown table cell. */
export function cell(text: string, max = 240): string {
  const flat = text.replace(/\s+/g, ' ').replace(/\|/g, '/').trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

function verdict(g: GoalRow): string {
  if (g.pass === undefined) return cell(g.note ?? 'not measured')
  const pct = (g.margin - 1) * 100
  if (g.pass)
    return `**met** (${pct >= 1000 ? `${fmt(g.margin, 0)}× the target` : `+${fmt(pct, 0)}%`})`
  const factor = 1 / g.margin
  return `**MISSED** by ${fmt(-pct, 0)}% (needs ${ratioText(factor)} more)`
}

export function goalsTable(goals: GoalRow[]): string[] {
  const lines = [
    '| | goal | scenario | memwal | measure | measured | target | result |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ]
  for (const g of goals) {
    lines.push(
      `| ${g.id} | ${g.goal} | ${g.where} | ${MODE_LABEL[g.memwal] ?? g.memwal} | ${g.measure} | ${measuredText(g)} | ${targetText(g)} | ${verdict(g)}${g.note && g.pass !== undefined ? ` — ${g.note}` : ''} |`,
    )
  }
  const met = goals.filter((g) => g.pass === true).length
  const missed = goals.filter((g) => g.pass === false).length
  const open = goals.length - met - missed
  lines.push('', `${met} met, ${missed} missed, ${open} not measured.`)
  return lines
}

export function markdown(r: SuiteResults, goals: GoalRow[], svgName: string): string {
  const st = r.settings
  const load = r.machine.loadAverageAtEnd.map((l) => l.toFixed(2)).join(' ')
  const lines = [
    `# memwal benchmark suite ${r.startedAt}`,
    '',
    ...machineLines(r.machine),
    `- load average at the end: ${load}; whole run ${fmt(r.wallSeconds / 60, 1)} min`,
    `- baselines: ${Object.entries(r.availability.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join('; ')}`,
    `- ${st.reps} repetition(s) of ${st.seconds} s per implementation and scenario (after ${st.warmupSeconds} s of warm-up on other files), each in a fresh process, run back to back and in reverse order every other repetition`,
    "- MB = 10^6 bytes of Arrow payload (the batches' buffers, not file bytes), the same for every implementation, so a MB/s ratio is also the puts/s ratio",
    '- latency per put, every repetition pooled; durable runs stop the clock when the last put resolves, non-durable runs when close() has written everything',
    '',
    '## Goals',
    '',
    ...goalsTable(goals),
    '',
    `![memwal ÷ each baseline per scenario, and each goal's measured ÷ target](${svgName})`,
    '',
    '## Scenarios',
    '',
    'Each row is one implementation; the last two columns are memwal (WAL-only, MemTable) divided by that row, median of medians (min–max over paired repetitions).',
    '',
  ]
  for (const s of r.scenarios) {
    lines.push(`### ${s.title}`, '', `\`${s.key}\``, '')
    lines.push(
      '| implementation | puts/s median (min–max) | MB/s median (min–max) | p50 | p99 | p999 | WAL-only ÷ this | MemTable ÷ this |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    )
    const here = r.summaries.filter((x) => x.scenario === s.key)
    const wal = here.find((x) => x.impl === 'memwal-wal')
    const mt = here.find((x) => x.impl === 'memwal-mt')
    for (const x of here) {
      if (x.reps === 0) {
        lines.push(
          `| ${impl(x.impl).label} | failed: ${cell(x.errors[0] ?? '?', 160)} | | | | | | |`,
        )
        continue
      }
      const ratioCell = (m: Summary | undefined): string => {
        const q = m?.ratios?.[x.impl]
        if (!q) return m && !comparable(m.impl, x.impl) ? '—' : ''
        return q.pairs > 1
          ? `${ratioText(q.median)} (${ratioText(q.min)}–${ratioText(q.max)})`
          : ratioText(q.median)
      }
      lines.push(
        `| ${impl(x.impl).label} | ${range(x.opsPerSec)} | ${range(x.mbPerSec)} | ${latency(x.p50Ms)} | ${latency(x.p99Ms)} | ${latency(x.p999Ms)} | ${ratioCell(wal)} | ${ratioCell(mt)} |`,
      )
    }
    const na = Object.entries(s.notApplicable)
    if (na.length > 0) {
      lines.push('', ...na.map(([k, why]) => `- n/a ${impl(k).label}: ${why}`))
    }
    const failed = here.filter((x) => x.errors.length > 0)
    for (const x of failed) {
      lines.push(`- ${impl(x.impl).label} failed ${x.errors.length}×: ${cell(x.errors[0], 400)}`)
    }
    const notes = memwalNotes(r.runs, s)
    if (notes.length > 0) lines.push('', ...notes.map((n) => `- ${n}`))
    lines.push('')
  }
  lines.push(...sustainedSection(r), '', ...baselineSection(r))
  return `${lines.join('\n')}\n`
}

/** memwal's own counters, median over repetitions: puts per WAL entry, flushes, backpressure. */
function memwalNotes(runs: Run[], s: Scenario): string[] {
  const out: string[] = []
  for (const key of MEMWAL_KEYS) {
    const mine = runs.filter((r) => r.scenario === s.key && r.impl === key && !r.error)
    const stats = mine
      .map((r) => ({ r, st: r.extra?.stats as Record<string, number> | undefined }))
      .filter((x) => x.st)
    if (stats.length === 0) continue
    const perEntry = median(stats.map(({ r, st }) => r.puts / Math.max(1, st?.walFlushCount ?? 0)))
    const flushes = median(stats.map(({ st }) => st?.memtableFlushCount ?? 0))
    const bp = median(stats.map(({ st }) => st?.backpressureWaitMs ?? 0))
    const close = median(mine.map((r) => r.closeSeconds))
    out.push(
      `${impl(key).label}: ${fmt(perEntry, 1)} puts per WAL entry` +
        (key === 'memwal-mt' ? `, ${fmt(flushes, 0)} Parquet flushes` : '') +
        `, backpressure ${fmt(bp, 0)} ms` +
        (s.durable ? '' : `, close() ${fmt(close * 1000, 0)} ms (timed)`) +
        ' (medians per run)',
    )
  }
  return out
}

const errorOf = (x: object | undefined): string | undefined =>
  x && 'error' in x ? String(x.error) : undefined

function sustainedSection(r: SuiteResults): string[] {
  const lines = ['## Sustained ingest and replay', '']
  const s = r.sustained
  if (!s) {
    lines.push('Not run (BENCH_SKIP_SUSTAINED=1, or bench/sustained.ts failed).')
    return lines
  }
  const ps = r.pylanceSustained
  const pr = r.pylanceReplay
  lines.push(
    '| measure | memwal | pylance |',
    '| --- | --- | --- |',
    `| sustained MB/s (${fmt(r.settings.sustainedSeconds as number, 0)} s of puts, then close) | ${fmt(s.sustained.mbPerSec, 1)} | ${ps && !('error' in ps) ? fmt(ps.mbPerSec, 1) : cell(errorOf(ps) ?? 'n/a', 160)} |`,
    `| peak RSS − baseline | ${fmt(s.sustained.peakAboveBaseline / MIB, 0)} MiB | ${ps && !('error' in ps) ? `${fmt(ps.peakAboveBaseline / MIB, 0)} MiB` : 'n/a'} |`,
    `| generations flushed | ${s.sustained.stats.memtableFlushCount} | ${ps && !('error' in ps) ? (ps.stats.memtable_flush_count ?? 'n/a') : 'n/a'} |`,
    `| replay: WAL size | ${fmt(s.replay.walBytes / MIB, 0)} MiB in ${s.replay.walFiles} entries | ${pr && !('error' in pr) ? `${fmt(pr.opened.walBytes / MIB, 0)} MiB in ${pr.opened.walFiles} entries` : cell(errorOf(pr) ?? 'n/a', 160)} |`,
    `| replay: open time | ${fmt(s.replay.openMs, 0)} ms | ${pr && !('error' in pr) ? `${fmt(pr.opened.openMs, 0)} ms` : 'n/a'} |`,
    `| replay: MB/s of WAL | ${fmt(s.replay.walMbPerSec, 0)} | ${pr && !('error' in pr) ? fmt(pr.opened.walMbPerSec, 0) : 'n/a'} |`,
    '',
    '- memwal: bench/sustained.ts in its own process (its full report follows); pylance: the same batches, budget and MemTable size through `mem_wal_writer`, non-durable, RSS of the Python process sampled every 20 ms, timed in Python',
    "- pylance's replay: a durable pylance writer writes the WAL and exits without closing; a new process times `mem_wal_writer(shard)` (which replays it into the MemTable), from the page cache like memwal's",
    '',
    '<details><summary>bench/sustained.ts report</summary>',
    '',
    s.report.replace(/^# /m, '### '),
    '</details>',
  )
  return lines
}

function baselineSection(r: SuiteResults): string[] {
  const lines = ['## What each implementation does', '']
  const example = r.scenarios[0]
  for (const i of IMPLS) {
    lines.push(`- **${i.label}** (\`${i.key}\`): ${example ? i.describe(example) : ''}`)
  }
  lines.push(
    '',
    '## Caveats',
    '',
    '- memwal fsyncs every WAL entry in durable mode (file and directory). Neither LanceDB nor pylance 14.0.2 calls fsync or fdatasync on local files (checked with strace: they write, link and rename only), so their durable numbers are page-cache numbers.',
    '- pylance runs in a Python subprocess that times its own put loop with time.perf_counter() and reports JSON; its batches are cast to the dataset schema (fixed-size-list child nullable) before timing. With several puts in flight it uses Python threads.',
    "- LanceDB's adds are serial in every scenario: each add commits a table version, so concurrent adds to one table would only conflict.",
    '- Physical limits run synchronous fs calls (or Buffer.copy) in Node, one call per put or per group of puts, on the IPC bytes of the same batches; per-call overhead is well under a microsecond next to the I/O.',
    '- The machine is shared with whatever else runs on it: see the load averages at the top.',
  )
  return lines
}
