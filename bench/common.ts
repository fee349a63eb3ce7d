// Pieces shared by the benchmark scripts: settings from the environment, the
// deterministic data generator, machine facts and result files.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs'
import { statfs } from 'node:fs/promises'
import os from 'node:os'
import { join, resolve } from 'node:path'
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
  Utf8,
} from 'apache-arrow'

export const REPO = resolve(__dirname, '..')
export const RESULTS_DIR = join(__dirname, 'results')
export const MB = 1e6
export const MIB = 1024 * 1024

export function envNumber(name: string, fallback: number, integer: boolean): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got '${raw}'`)
  }
  return value
}

// ---------------------------------------------------------------- data

export const DIM = 128
export const TEXT_CHARS = 40

const VECTOR_TYPE = new FixedSizeList(DIM, new Field('item', new Float32(), false))
/** `id int64, vector FixedSizeList<Float32>[128], text utf8`, all non-null. */
export const SCHEMA = new Schema([
  new Field('id', new Int64(), false),
  new Field('vector', VECTOR_TYPE, false),
  new Field('text', new Utf8(), false),
])
const STRUCT_TYPE = new Struct(SCHEMA.fields)

// Deterministic data so runs are comparable; mulberry32.
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The column buffers of one batch: plain typed arrays, cheap to send to a worker process. */
export interface RawBatch {
  rows: number
  ids: BigInt64Array
  vectors: Float32Array
  offsets: Int32Array
  text: Uint8Array
}

export function makeRaw(firstId: number, rows: number, random: () => number): RawBatch {
  // Plain loops: TypedArray.from with a callback is several times slower.
  const ids = new BigInt64Array(rows)
  for (let i = 0; i < rows; i++) ids[i] = BigInt(firstId + i)
  const vectors = new Float32Array(rows * DIM)
  for (let i = 0; i < vectors.length; i++) vectors[i] = random() * 2 - 1
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
  return { rows, ids, vectors, offsets, text }
}

/** A one-batch Table over `raw`'s arrays (no copy), as an application would build it. */
export function tableFromRaw(raw: RawBatch): Table {
  const { rows } = raw
  const children = [
    makeData({ type: new Int64(), length: rows, nullCount: 0, data: raw.ids }),
    makeData({
      type: VECTOR_TYPE,
      length: rows,
      nullCount: 0,
      child: makeData({ type: new Float32(), length: rows * DIM, nullCount: 0, data: raw.vectors }),
    }),
    makeData({
      type: new Utf8(),
      length: rows,
      nullCount: 0,
      valueOffsets: raw.offsets,
      data: raw.text,
    }),
  ]
  const data = makeData({ type: STRUCT_TYPE, length: rows, nullCount: 0, children })
  return new Table([new RecordBatch(SCHEMA, data)])
}

export function makeTable(firstId: number, rows: number, random: () => number): Table {
  return tableFromRaw(makeRaw(firstId, rows, random))
}

/** Bytes of every Arrow buffer below `data`: the payload a writer must persist. */
export function dataBytes(data: Data): number {
  let bytes =
    (data.values?.byteLength ?? 0) +
    (data.valueOffsets?.byteLength ?? 0) +
    (data.nullBitmap?.byteLength ?? 0) +
    (data.typeIds?.byteLength ?? 0)
  for (const child of data.children) bytes += dataBytes(child)
  return bytes
}

export function tableBytes(table: Table): number {
  return table.batches.reduce((sum, batch) => sum + dataBytes(batch.data), 0)
}

/** Rows per batch that make a batch of about `bytes` payload bytes. */
export function rowsForBytes(bytes: number, sampleRows = 20): number {
  const sample = makeTable(0, sampleRows, rng(1))
  return Math.round(bytes / (tableBytes(sample) / sampleRows))
}

export interface Workload {
  tables: Table[]
  bytes: number[]
  rows: number
}

/** The arrays of a rotating pool of `count` batches; the same seed gives the same data. */
export function rawWorkload(rows: number, count: number, seed: number): RawBatch[] {
  const random = rng(seed)
  return Array.from({ length: count }, (_, i) => makeRaw(i * rows, rows, random))
}

export function workloadFromRaw(raw: RawBatch[]): Workload {
  const tables = raw.map(tableFromRaw)
  return { tables, bytes: tables.map(tableBytes), rows: raw[0]?.rows ?? 0 }
}

// A rotating pool, built before any clock starts, so data generation is never timed.
export function workload(rows: number, count: number, seed: number): Workload {
  return workloadFromRaw(rawWorkload(rows, count, seed))
}

// ---------------------------------------------------------------- machine facts

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
}

// In chunks: the addon is tens of MB, and a whole-file read would leave that
// much garbage in the process whose memory a benchmark is about to measure.
function sha256(path: string): string {
  const hash = createHash('sha256')
  const chunk = Buffer.allocUnsafe(MIB)
  const fd = openSync(path, 'r')
  try {
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
      hash.update(chunk.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
  return hash.digest('hex')
}

/**
 * The addon the loader picks: `NAPI_RS_NATIVE_LIBRARY_PATH` (which the
 * generated `index.js` honours) or the one next to it.
 */
export function nativeAddonPath(): string {
  return (
    process.env.NAPI_RS_NATIVE_LIBRARY_PATH ||
    join(REPO, `memwal.${os.platform()}-${os.arch()}-gnu.node`)
  )
}

// The addon says nothing about its build profile, so match it against cargo's outputs.
function nativeProfile(): string {
  const addon = nativeAddonPath()
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

export interface MachineFacts {
  cpuModel: string | undefined
  cpuCount: number
  totalMemoryBytes: number
  /** At the time the facts were taken: other work on the machine skews every number. */
  freeMemoryBytes: number
  loadAverage: number[]
  node: string
  platform: string
  kernel: string
  tmpdir: string
  tmpdirFsType: string | undefined
  gitCommit: string | undefined
  gitDirty: boolean
  nativeAddon: string
  nativeProfile: string
}

export async function machine(dir: string): Promise<MachineFacts> {
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
    freeMemoryBytes: os.freemem(),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    tmpdir: os.tmpdir(),
    tmpdirFsType: fsType,
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
    nativeAddon: nativeAddonPath(),
    nativeProfile: nativeProfile(),
  }
}

/** The markdown bullet lines that describe the machine, the build and the commit. */
export function machineLines(facts: MachineFacts): string[] {
  const gib = (facts.totalMemoryBytes / 1024 ** 3).toFixed(1)
  const free = (facts.freeMemoryBytes / 1024 ** 3).toFixed(1)
  const load = facts.loadAverage.map((l) => l.toFixed(2)).join(' ')
  return [
    `- machine: ${facts.cpuCount} × ${facts.cpuModel}, ${gib} GiB RAM (${free} GiB free), ${facts.platform}, kernel ${facts.kernel}`,
    `- load average at the start (1, 5, 15 min): ${load}${facts.loadAverage[0] >= 0.5 ? ' — **the machine was busy; treat the numbers as noisy**' : ''}`,
    `- node ${facts.node}; temp dir ${facts.tmpdir} (${facts.tmpdirFsType ?? 'unknown fs'})`,
    `- commit ${facts.gitCommit ?? 'unknown'}${facts.gitDirty ? ' (with uncommitted changes)' : ''}; native addon build: ${facts.nativeProfile}`,
  ]
}

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentile of ascending `sorted` values (`p` in 0..1). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export interface Spread {
  median: number
  min: number
  max: number
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN }
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

// ---------------------------------------------------------------- report

export const fmt = (value: number, digits = 1): string =>
  Number.isFinite(value) ? value.toFixed(digits) : 'n/a'

/**
 * Write `bench/results/<ISO time><suffix>.json` and `.md`, print the
 * markdown to stdout and the file names to stderr.
 */
export function writeResults(
  startedAt: string,
  suffix: string,
  json: unknown,
  report: string,
): void {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const stamp = startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')
  const stem = join(RESULTS_DIR, `${stamp}${suffix}`)
  writeFileSync(`${stem}.json`, `${JSON.stringify(json, null, 2)}\n`)
  writeFileSync(`${stem}.md`, report)
  process.stdout.write(report)
  process.stderr.write(`results: ${stem}.json, ${stem}.md\n`)
}
