// The benchmark suite: every scenario of the matrix (bench/scenarios.ts) runs
// memwal in both modes next to its baselines, each run in a fresh process,
// alternating run by run and swapping the order every repetition; then the
// sustained-ingest and replay measurements (bench/sustained.ts and the same
// with pylance). Writes bench/results/<time>.json, .md and .svg. See
// bench/README.md.
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { basename, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { tableToIPC } from 'apache-arrow'
import { chart } from './chart.js'
import {
  envNumber,
  fmt,
  MIB,
  machine,
  type RawBatch,
  REPO,
  RESULTS_DIR,
  rawWorkload,
  SCHEMA,
  workloadFromRaw,
} from './common.js'
import {
  type Availability,
  evaluateGoals,
  markdown,
  type PylanceReplay,
  type PylanceSustained,
  type Run,
  type SuiteResults,
  type SustainedJson,
  summarise,
} from './report.js'
import {
  DEPS_DIR,
  IMPLS,
  type Impl,
  LARGE_ROWS,
  MEMTABLE_SETTINGS,
  PYLANCE_DURABLE_FLUSH_INTERVAL_MS,
  PYLANCE_UNFLUSHED_MAX_ROWS,
  pylanceUnflushed,
  type Scenario,
  scenarioMatrix,
  UNFLUSHED_MEMTABLE_SETTINGS,
} from './scenarios.js'
import type { RunResult, RunSpec } from './worker.js'

const SECONDS = envNumber('BENCH_SECONDS', 2, false)
const REPS = envNumber('BENCH_REPS', 3, true)
const WARMUP = envNumber('BENCH_WARMUP_SECONDS', Math.min(0.5, SECONDS / 2), false)
/** A regular expression on scenario keys, e.g. `file-durable` or `c64`. */
const FILTER = process.env.BENCH_FILTER ? new RegExp(process.env.BENCH_FILTER) : undefined
/** A regular expression on implementation keys, e.g. `memwal|ts`. */
const IMPL_FILTER = process.env.BENCH_IMPLS ? new RegExp(process.env.BENCH_IMPLS) : undefined
const SKIP_SUSTAINED = process.env.BENCH_SKIP_SUSTAINED === '1'
const PYTHON = process.env.PYTHON || 'python3'
const BUDGET_MIB = envNumber('BENCH_BUDGET_MIB', 128, false)
const SUSTAINED_SECONDS = envNumber('BENCH_SUSTAINED_SECONDS', 60, false)
const REPLAY_MIB = envNumber('BENCH_REPLAY_MIB', 256, false)

const PYLANCE_SCRIPT = join(__dirname, 'pylance_bench.py')

// ---------------------------------------------------------------- availability

function lanceDbVersion(): string | undefined {
  const pkg = join(DEPS_DIR, 'node_modules', '@lancedb', 'lancedb', 'package.json')
  if (!existsSync(pkg)) return undefined
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version
}

function pylanceVersion(): string | undefined {
  try {
    return execFileSync(
      PYTHON,
      ['-c', 'import lance, pyarrow; print(lance.__version__, pyarrow.__version__)'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    ).trim()
  } catch {
    return undefined
  }
}

function availability(): Availability {
  const lancedb = lanceDbVersion()
  const pylance = pylanceVersion()
  const missing: Record<string, string> = {}
  if (!lancedb) missing.lancedb = 'not installed: run bash bench/setup.sh'
  if (!pylance)
    missing.pylance = `pylance/pyarrow not importable by ${PYTHON}: run bash bench/setup.sh`
  return {
    versions: {
      lancedb: lancedb ?? 'missing',
      'pylance pyarrow': pylance ?? 'missing',
      'apache-arrow (memwal and TS writer)': (
        JSON.parse(
          readFileSync(join(REPO, 'node_modules', 'apache-arrow', 'package.json'), 'utf8'),
        ) as { version: string }
      ).version,
    },
    missing,
  }
}

// ---------------------------------------------------------------- running one measurement

const RUN_TIMEOUT_MS = (SECONDS + WARMUP) * 1000 * 10 + 120_000

function runNode(spec: RunSpec): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // tsx puts its loader in execArgv, so the child runs the .ts file directly.
    const child: ChildProcess = fork(join(__dirname, 'worker.ts'), [], {
      execArgv: [...process.execArgv, '--expose-gc'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    let settled = false
    const timer = setTimeout(() => {
      if (!settled) child.kill('SIGKILL')
    }, RUN_TIMEOUT_MS)
    child.once('message', (message: { ok: boolean; result?: RunResult; error?: string }) => {
      settled = true
      clearTimeout(timer)
      if (message.ok && message.result) resolve(message.result)
      else reject(new Error(message.error ?? 'worker failed'))
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (!settled) {
        settled = true
        reject(new Error(`worker exited with ${signal ?? code} before reporting`))
      }
    })
    child.send(spec)
  })
}

/** Runs pylance_bench.py; resolves to the JSON it prints last. */
function runPython(
  mode: string,
  spec: Record<string, unknown>,
  specPath: string,
): Promise<unknown> {
  writeFileSync(specPath, JSON.stringify(spec))
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [PYLANCE_SCRIPT, mode, specPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS + SUSTAINED_SECONDS * 3000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const last = out.trim().split('\n').pop() ?? ''
      if (code === 0 && last.startsWith('{')) {
        resolve(JSON.parse(last))
      } else {
        // Python's last line names the exception; Lance appends source locations after a comma.
        const last = err.trim().split('\n').pop() ?? ''
        const why = last.replace(/, \/home\/runner\/.*$/, '').slice(0, 300)
        reject(new Error(`pylance_bench.py ${mode} exited with ${signal ?? code}: ${why}`))
      }
    })
  })
}

interface Pool {
  /** The batches as an IPC stream file, for pylance. */
  path: string
  payloadBytes: number[]
  /** The same batches' arrays, sent to every Node worker. */
  raw: RawBatch[]
}

async function runPylance(spec: RunSpec, pool: Pool): Promise<RunResult> {
  const s = spec.scenario
  const latenciesPath = `${spec.dir}.lat`
  // On memory:// pylance's flush cannot work (see scenarios.ts): a MemTable big
  // enough that nothing freezes during the run.
  const unflushed = pylanceUnflushed(s)
  try {
    const out = (await runPython(
      'run',
      {
        pool_path: pool.path,
        payload_bytes: pool.payloadBytes,
        root: spec.dir,
        store: s.store,
        durable: s.durable,
        concurrency: s.concurrency,
        seconds: spec.seconds,
        warmup_seconds: spec.warmupSeconds,
        max_memtable_size: unflushed
          ? UNFLUSHED_MEMTABLE_SETTINGS.maxMemtableSize
          : MEMTABLE_SETTINGS.maxMemtableSize,
        // Lance wants room for its index reservation above the MemTable size.
        max_unflushed_memtable_bytes: unflushed
          ? UNFLUSHED_MEMTABLE_SETTINGS.maxUnflushedMemtableBytes
          : MEMTABLE_SETTINGS.maxUnflushedMemtableBytes,
        max_memtable_rows: unflushed ? PYLANCE_UNFLUSHED_MAX_ROWS : undefined,
        max_memtable_batches: unflushed
          ? UNFLUSHED_MEMTABLE_SETTINGS.maxMemtableBatches
          : undefined,
        max_wal_flush_interval_ms: s.durable ? PYLANCE_DURABLE_FLUSH_INTERVAL_MS : undefined,
        latencies_path: latenciesPath,
      },
      `${spec.dir}.json`,
    )) as Omit<RunResult, 'latencies'>
    const raw = readFileSync(latenciesPath)
    const latencies = new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8).slice()
    return { ...out, latencies }
  } finally {
    rmSync(latenciesPath, { force: true })
    rmSync(`${spec.dir}.json`, { force: true })
    rmSync(spec.dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- the matrix

/** Each pool once: its arrays for the Node workers and an IPC stream file for pylance. */
function writePools(root: string, scenarios: Scenario[]): Map<number, Pool> {
  const pools = new Map<number, Pool>()
  for (const s of scenarios) {
    if (pools.has(s.rows)) continue
    const raw = rawWorkload(s.rows, s.poolSize, s.seed)
    const w = workloadFromRaw(raw)
    const path = join(root, `pool-${s.rows}.arrows`)
    writeFileSync(
      path,
      tableToIPC(
        w.tables.reduce((a, b) => a.concat(b)),
        'stream',
      ),
    )
    pools.set(s.rows, { path, payloadBytes: w.bytes, raw })
  }
  return pools
}

function implsFor(s: Scenario, avail: Availability): { run: Impl[]; na: Record<string, string> } {
  const run: Impl[] = []
  const na: Record<string, string> = {}
  for (const i of IMPLS) {
    if (IMPL_FILTER && !IMPL_FILTER.test(i.key)) continue
    const reason = i.unsupported(s) ?? avail.missing[i.key]
    if (reason) na[i.key] = reason
    else run.push(i)
  }
  return { run, na }
}

async function matrix(
  root: string,
  scenarios: Scenario[],
  avail: Availability,
  pools: Map<number, Pool>,
): Promise<Run[]> {
  const runs: Run[] = []
  let serial = 0
  for (let rep = 1; rep <= REPS; rep++) {
    for (const s of scenarios) {
      const { run } = implsFor(s, avail)
      // Back to back, in the opposite order every other repetition, so drift of
      // the machine (page cache, disk, other load) hits every side alike.
      const order = rep % 2 === 1 ? run : [...run].reverse()
      for (const i of order) {
        const spec: RunSpec = {
          scenario: s,
          impl: i.key,
          dir: join(root, `run-${serial++}`),
          seconds: SECONDS,
          warmupSeconds: WARMUP,
          pool: i.runner === 'node' ? pools.get(s.rows)?.raw : undefined,
        }
        const t0 = performance.now()
        try {
          const result =
            i.runner === 'python'
              ? await runPylance(spec, pools.get(s.rows) as Pool)
              : await runNode(spec)
          const r = toRun(s, i, rep, result)
          runs.push(r)
          process.stderr.write(
            `rep ${rep}/${REPS} ${s.key} ${i.key}: ${fmt(r.opsPerSec, 0)} puts/s, ${fmt(r.mbPerSec, 1)} MB/s ` +
              `(${fmt((performance.now() - t0) / 1000, 1)} s)\n`,
          )
        } catch (error) {
          const message = (error as Error).message.split('\n')[0]
          runs.push({ scenario: s.key, impl: i.key, rep, error: message } as Run)
          process.stderr.write(`rep ${rep}/${REPS} ${s.key} ${i.key}: FAILED ${message}\n`)
        }
      }
    }
  }
  return runs
}

function toRun(s: Scenario, i: Impl, rep: number, r: RunResult): Run {
  return {
    scenario: s.key,
    impl: i.key,
    rep,
    puts: r.puts,
    payloadBytes: r.payloadBytes,
    seconds: r.seconds,
    putSeconds: r.putSeconds,
    closeSeconds: r.closeSeconds,
    opsPerSec: r.puts / r.seconds,
    mbPerSec: r.payloadBytes / 1e6 / r.seconds,
    latencies: r.latencies,
    extra: r.extra,
  }
}

// ---------------------------------------------------------------- sustained and replay

function runSustainedTs(root: string): Promise<SustainedJson> {
  const out = join(root, 'sustained.json')
  return new Promise((resolve, reject) => {
    const child = fork(join(__dirname, 'sustained.ts'), [], {
      execArgv: process.execArgv,
      env: { ...process.env, BENCH_SUSTAINED_OUT: out, TMPDIR: root },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    child.once('exit', (code, signal) => {
      if (existsSync(out)) resolve(JSON.parse(readFileSync(out, 'utf8')) as SustainedJson)
      else reject(new Error(`bench/sustained.ts exited with ${signal ?? code} and no results`))
    })
  })
}

async function runSustainedPylance(root: string, pool: Pool): Promise<PylanceSustained> {
  const dir = join(root, 'pylance-sustained')
  const budget = Math.round(BUDGET_MIB * MIB)
  try {
    return (await runPython(
      'sustained',
      {
        pool_path: pool.path,
        payload_bytes: pool.payloadBytes,
        root: dir,
        durable: false,
        seconds: SUSTAINED_SECONDS,
        max_memtable_size: Math.floor(budget / 4),
        max_unflushed_memtable_bytes: budget,
        rss_interval_ms: 20,
      },
      `${dir}.json`,
    )) as PylanceSustained
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function runReplayPylance(root: string, pool: Pool): Promise<PylanceReplay> {
  const dir = join(root, 'pylance-replay')
  const big = Math.max(4 * REPLAY_MIB * MIB, 1024 * MIB)
  const limits = {
    max_memtable_size: big,
    max_unflushed_memtable_bytes: 2 * big,
    max_memtable_rows: 1e8,
    max_memtable_batches: 1e7,
  }
  try {
    const written = (await runPython(
      'replay-write',
      {
        pool_path: pool.path,
        payload_bytes: pool.payloadBytes,
        root: dir,
        durable: true,
        max_wal_flush_interval_ms: PYLANCE_DURABLE_FLUSH_INTERVAL_MS,
        target_bytes: REPLAY_MIB * MIB,
        ...limits,
      },
      `${dir}-write.json`,
    )) as PylanceReplay['written']
    const opened = (await runPython(
      'replay-open',
      { root: dir, shard_id: written.shardId, durable: false, ...limits },
      `${dir}-open.json`,
    )) as PylanceReplay['opened']
    return { written, opened }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- main

async function suite(): Promise<void> {
  const startedAt = new Date().toISOString()
  const wall = performance.now()
  const root = mkdtempSync(join(os.tmpdir(), 'memwal-bench-'))
  try {
    const facts = await machine(root)
    const avail = availability()
    const scenarios = scenarioMatrix().filter((s) => !FILTER || FILTER.test(s.key))
    const pools = writePools(root, [
      ...scenarios,
      ...scenarioMatrix().filter((s) => s.rows === LARGE_ROWS),
    ])
    process.stderr.write(
      `bench: ${scenarios.length} scenarios × ${REPS} reps × ${SECONDS} s (+${WARMUP} s warm-up) per implementation; ` +
        `addon ${facts.nativeProfile}; load ${facts.loadAverage.join(' ')}\n`,
    )
    const runs = await matrix(root, scenarios, avail, pools)

    let sustained: SustainedJson | undefined
    let pylanceSustained: PylanceSustained | { error: string } | undefined
    let pylanceReplay: PylanceReplay | { error: string } | undefined
    if (!SKIP_SUSTAINED) {
      const pool = pools.get(LARGE_ROWS) as Pool
      process.stderr.write(`sustained: memwal (bench/sustained.ts), ${SUSTAINED_SECONDS} s…\n`)
      try {
        sustained = await runSustainedTs(root)
      } catch (error) {
        process.stderr.write(`sustained: FAILED ${(error as Error).message}\n`)
      }
      if (!avail.missing.pylance) {
        process.stderr.write(`sustained: pylance, ${SUSTAINED_SECONDS} s…\n`)
        pylanceSustained = await runSustainedPylance(root, pool).catch((e: Error) => ({
          error: e.message,
        }))
        process.stderr.write(`replay: pylance, ${REPLAY_MIB} MiB…\n`)
        pylanceReplay = await runReplayPylance(root, pool).catch((e: Error) => ({
          error: e.message,
        }))
      }
    }

    const finishedLoad = os.loadavg().map((l) => Math.round(l * 100) / 100)
    const results: SuiteResults = {
      startedAt,
      wallSeconds: (performance.now() - wall) / 1000,
      settings: {
        seconds: SECONDS,
        reps: REPS,
        warmupSeconds: WARMUP,
        filter: process.env.BENCH_FILTER,
        impls: process.env.BENCH_IMPLS,
        budgetMiB: BUDGET_MIB,
        sustainedSeconds: SUSTAINED_SECONDS,
        replayMiB: REPLAY_MIB,
        memtableSettings: MEMTABLE_SETTINGS,
        pylanceDurableFlushIntervalMs: PYLANCE_DURABLE_FLUSH_INTERVAL_MS,
      },
      machine: { ...facts, loadAverageAtEnd: finishedLoad },
      availability: avail,
      scenarios: scenarios.map((s) => {
        const { na } = implsFor(s, avail)
        return { ...s, notApplicable: na }
      }),
      summaries: summarise(scenarios, runs),
      sustained,
      pylanceSustained,
      pylanceReplay,
      runs,
    }
    const goals = evaluateGoals(results)
    const stamp = startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')
    const svgName = `${stamp}.svg`
    const report = markdown(results, goals, svgName)
    mkdirSync(RESULTS_DIR, { recursive: true })
    const stem = join(RESULTS_DIR, stamp)
    writeFileSync(`${stem}.svg`, chart(results, goals))
    writeFileSync(`${stem}.md`, report)
    writeFileSync(
      `${stem}.json`,
      `${JSON.stringify(
        {
          ...results,
          goals,
          // Latencies are summarised in `summaries`; the raw arrays would be tens of MB.
          runs: runs.map(({ latencies: _, ...rest }) => rest),
          schema: SCHEMA.fields.map((f) => `${f.name}: ${f.type}`),
        },
        null,
        2,
      )}\n`,
    )
    process.stdout.write(report)
    process.stderr.write(
      `results: ${stem}.json, ${stem}.md, ${stem}.svg (${fmt(results.wallSeconds / 60, 1)} min)\n`,
    )
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

/** `tsx bench/run.ts --render <results.json>`: rewrite the .md and .svg from a run's JSON. */
function render(path: string): void {
  const results = JSON.parse(readFileSync(path, 'utf8')) as SuiteResults
  const stem = path.replace(/\.json$/, '')
  const goals = evaluateGoals(results)
  writeFileSync(`${stem}.svg`, chart(results, goals))
  writeFileSync(`${stem}.md`, markdown(results, goals, `${basename(stem)}.svg`))
  process.stderr.write(`rewrote ${stem}.md and ${stem}.svg\n`)
}

const main = process.argv[2] === '--render' ? async () => render(process.argv[3]) : suite

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
