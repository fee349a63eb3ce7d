// Filter conformance: the same filter strings, evaluated by memwal and by
// Lance's LsmScanner (pylance 14.0.2) on the same rows, select the same ids,
// or differ exactly as docs/FILTERS.md ("Differences from Lance") says.
//
// The rows (one nullable column per compared type, NULLs in each) come from
// interop/lance_filter_conformance.py. memwal writes them twice: shard A
// keeps them all in its WAL, shard B flushes two generations and keeps the
// last third in its MemTable and WAL. Lance takes shard A over, which replays
// the WAL into its MemTable, and evaluates every filter there (Lance cannot
// open memwal's Parquet generations, docs/FORMAT.md section 13).
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Table, tableFromIPC } from 'apache-arrow'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemWalError, openShardReader, openShardWriter } from '../ts/index.js'
import { tempRoot, WAL_ONLY } from './helpers.js'

const SCRIPT = join(__dirname, 'interop', 'lance_filter_conformance.py')
const ROWS = 24
/** Shard B's rows from this id on stay unflushed (MemTable and WAL). */
const TAIL_FROM = 16

const FILTERS: readonly string[] = [
  // Integers: literals of either side, fractional, negative, quoted and
  // upper-case names, column against column.
  'i32 = 3',
  'i32 <> 3',
  'i32 != 3',
  'i32 < 0',
  'i32 = -1',
  'i32 = -(-2)',
  '1 < i32',
  'i32 > 2.5',
  'i32 = 1.0',
  'I32 = 3',
  '"i32" >= 4',
  "i32 = '3'",
  'i32 = 3000000000',
  'i32 < 3000000000',
  'i64 >= 1000000000000',
  'i64 < -500000000000',
  'i64 = 9223372036854775807',
  'i64 > i32',
  'id < 8',
  'id BETWEEN 9 AND 12',
  // Floats.
  'f64 > 1.5',
  'f64 <= -0.25',
  'f64 = 2',
  'f64 >= i32',
  'f64 = i32',
  'f64 > 1e400',
  // Decimals, including literals finer than the column's scale.
  'dec > 10.5',
  'dec = -3.63',
  'dec < 0',
  'dec >= 2',
  'dec = 1.85',
  'dec = 1.849',
  'dec >= 1.851',
  // Strings.
  "s = 'apple'",
  "s > 'b'",
  "s <> 'apple'",
  "s = ''",
  // Dates and timestamps: typed and plain string literals, across types.
  "d = DATE '2024-02-14'",
  "d = DATE '2024-02-29'",
  "d < '2024-01-15'",
  "d >= DATE '2024-03-01'",
  "d < TIMESTAMP '2024-01-15 00:00:00'",
  "ts > TIMESTAMP '2024-01-02 12:00:00'",
  "ts > TIMESTAMP '2024-01-02 12:00:00+01:00'",
  "ts <= '2024-01-02T00:00:00'",
  "ts = TIMESTAMP '2024-01-01 17:00:00.000001'",
  "ts > DATE '2024-01-02'",
  // Booleans.
  'b = true',
  'b',
  'b = false',
  'NOT b',
  'TRUE',
  'FALSE',
  // NULL logic.
  'i32 IS NULL',
  's IS NOT NULL',
  'dec IS NULL OR d IS NULL',
  'i32 = NULL',
  'i32 <> NULL',
  'i32 > 1 AND s IS NULL',
  "i32 > 1 OR s = 'kiwi'",
  'NOT (i32 > 1)',
  'NOT (i32 > 1 AND f64 > 0)',
  'NOT (i32 > 1 OR f64 > 0)',
  'NOT b OR b IS NULL',
  "s = 'kiwi' AND NOT (i32 = 1)",
  'NULL IS NULL',
  // IN.
  'i32 IN (1, 3, 5)',
  'i32 NOT IN (1, 3, 5)',
  "s IN ('apple', 'kiwi')",
  'i32 IN (1, NULL)',
  'i32 NOT IN (1, NULL)',
  "d IN (DATE '2024-02-29', DATE '2024-01-01')",
  'dec IN (-5, 0.37)',
  // BETWEEN.
  'i32 BETWEEN 1 AND 3',
  'i32 BETWEEN NULL AND 3',
  'f64 NOT BETWEEN 0 AND 2',
  'dec BETWEEN 1 AND 10',
  "d BETWEEN '2024-01-10' AND '2024-02-29'",
  "ts BETWEEN TIMESTAMP '2024-01-01 18:00:00' AND TIMESTAMP '2024-01-02 12:00:00'",
  "s BETWEEN 'b' AND 'k'",
  // LIKE.
  "s LIKE 'a%'",
  "s LIKE '%an%'",
  "s LIKE '_iwi'",
  "s NOT LIKE '%e'",
  "NOT (s LIKE 'a%')",
  "s ILIKE 'A%'",
  "s ILIKE 'APPLE'",
  "s LIKE '50\\%'",
  "s LIKE 'a\\_%'",
  "s LIKE 'a!_%' ESCAPE '!'",
  's LIKE NULL',
  // Precedence.
  "(i32 > 1 OR b) AND NOT s LIKE 'a%'",
  "i32 > 1 OR b AND s = 'kiwi'",
  // Arithmetic.
  'i32 + 1 > 3',
  'f64 * 2 = 3',
  // Rejected by both.
  'nope = 1',
  'i32 IN ()',
  'b = 1',
  's = 3',
]

/** The ids a filter selects, or 'rejects' when the engine refuses it. */
type Outcome = number[] | 'rejects'

/**
 * Every filter on which memwal and Lance disagree, with what each returns
 * and why; docs/FILTERS.md lists the same cases.
 */
const DIFFERENCES: Record<string, { memwal: Outcome; lance: Outcome; why: string }> = {
  "s LIKE 'a!_%' ESCAPE '!'": {
    memwal: [5, 17],
    lance: 'rejects',
    why: "Lance's planner accepts only backslash as the LIKE escape character",
  },
  'i32 + 1 > 3': {
    memwal: 'rejects',
    lance: [4, 5, 11, 16, 22, 23],
    why: 'memwal has no arithmetic',
  },
  'f64 * 2 = 3': { memwal: 'rejects', lance: [2, 7], why: 'memwal has no arithmetic' },
  "i32 = '3'": {
    memwal: 'rejects',
    lance: [4, 16, 22],
    why: 'memwal does not coerce string literals to numbers',
  },
  'NULL IS NULL': {
    memwal: 'rejects',
    lance: Array.from({ length: ROWS }, (_, i) => i),
    why: 'memwal tests only columns for NULL',
  },
  'i32 = 3000000000': {
    memwal: 'rejects',
    lance: [],
    why: "memwal rejects an integer literal outside the column's type",
  },
  'i32 < 3000000000': {
    memwal: 'rejects',
    lance: [0, 1, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23],
    why: "memwal rejects an integer literal outside the column's type",
  },
}

const local = tempRoot()
afterAll(() => local.cleanup())

function python(args: string[]): string {
  return execFileSync('python3', [SCRIPT, ...args], { encoding: 'utf8' })
}

function sortedIds(
  batches: Iterable<{ getChild(name: string): { toArray(): ArrayLike<unknown> } | null }>,
): number[] {
  const ids: number[] = []
  for (const batch of batches) {
    for (const id of Array.from(batch.getChild('id')?.toArray() ?? [])) ids.push(Number(id))
  }
  return ids.sort((a, b) => a - b)
}

/** memwal's outcome: a filter it refuses must be refused as INVALID_INPUT. */
async function outcomeOf(scan: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await scan()
  } catch (error) {
    if (error instanceof MemWalError && error.code === 'INVALID_INPUT') return 'rejects'
    throw error
  }
}

interface Results {
  /** Per filter: memwal on shard A (WAL only). */
  walTail: Outcome[]
  /** Per filter: memwal on shard B (generations, then the WAL tail). */
  generations: Outcome[]
  /** Per filter: shard B's writer on its MemTable. */
  memtable: Outcome[]
  /** Filters for which shard B's reader skipped a row group. */
  pruned: string[]
  /** Per filter: Lance on shard A. */
  lance: Outcome[]
  lanceRows: number
}

async function evaluateAll(rows: Table): Promise<Results> {
  const results: Results = {
    walTail: [],
    generations: [],
    memtable: [],
    pruned: [],
    lance: [],
    lanceRows: 0,
  }
  const shardA = await openShardWriter(local.uri, {
    schema: rows.schema,
    primaryKey: ['id'],
    config: WAL_ONLY,
  })
  await shardA.put(rows.slice(0, 10))
  await shardA.put(rows.slice(10))
  await shardA.close()
  const readerA = await openShardReader(local.uri, shardA.shardId)

  const shardB = await openShardWriter(local.uri, {
    schema: rows.schema,
    primaryKey: ['id'],
    config: { durableWrite: true, maxWalFlushIntervalMs: null, statsLogIntervalMs: null },
  })
  for (const [from, to] of [
    [0, 8],
    [8, TAIL_FROM],
  ]) {
    await shardB.put(rows.slice(from, to))
    await shardB.forceSealActive()
    await shardB.waitForFlushDrain()
  }
  await shardB.put(rows.slice(TAIL_FROM))
  const readerB = await openShardReader(local.uri, shardB.shardId)
  expect(readerB.generations()).toHaveLength(2)
  expect(readerB.tailPositions()).not.toBeNull()

  for (const filter of FILTERS) {
    const options = { columns: ['id'], filter }
    results.walTail.push(
      await outcomeOf(async () => sortedIds((await readerA.scan(options)).batches)),
    )
    results.memtable.push(
      await outcomeOf(async () => sortedIds((await shardB.scan(options)).batches)),
    )
    results.generations.push(
      await outcomeOf(async () => {
        const stream = readerB.scanStream(options)
        const batches = []
        for await (const batch of stream) batches.push(batch)
        const metrics = await stream.metrics()
        if (metrics.rowGroupsRead < metrics.rowGroupsTotal) results.pruned.push(filter)
        return sortedIds(batches)
      }),
    )
  }
  await shardB.close()

  const filtersPath = join(local.dir, 'filters.json')
  writeFileSync(filtersPath, JSON.stringify(FILTERS))
  const lance = JSON.parse(python(['eval', local.dir, shardA.shardId, filtersPath])) as {
    memtable_rows: number
    results: ({ ids: number[] } | { error: string })[]
  }
  results.lanceRows = lance.memtable_rows
  results.lance = lance.results.map((r) => ('ids' in r ? r.ids : 'rejects'))
  return results
}

let results: Results
beforeAll(async () => {
  const path = join(local.dir, 'rows.arrows')
  python(['rows', path])
  results = await evaluateAll(tableFromIPC(readFileSync(path)))
})

describe('filters through memwal and through Lance on the same rows', () => {
  it('checks at least 40 filters on rows Lance replayed in full', () => {
    expect(FILTERS.length).toBeGreaterThanOrEqual(40)
    expect(FILTERS).toEqual(expect.arrayContaining(Object.keys(DIFFERENCES)))
    expect(results.lanceRows).toBe(ROWS)
    expect(results.lance[FILTERS.indexOf('TRUE')]).toHaveLength(ROWS)
  })

  it('memwal selects the same rows from the WAL tail, the generations and the MemTable', () => {
    FILTERS.forEach((filter, i) => {
      const all = results.generations[i]
      expect(results.walTail[i], filter).toEqual(all)
      const tail = all === 'rejects' ? all : all.filter((id) => id >= TAIL_FROM)
      expect(results.memtable[i], filter).toEqual(tail)
    })
  })

  it('row-group pruning ran on the generations (and changed no answer above)', () => {
    expect(results.pruned).toEqual(
      expect.arrayContaining(['id < 8', 'id BETWEEN 9 AND 12', 'FALSE']),
    )
  })

  it('memwal and Lance agree on every filter but the documented differences', () => {
    const found: Record<string, { memwal: Outcome; lance: Outcome }> = {}
    FILTERS.forEach((filter, i) => {
      const memwal = results.walTail[i]
      const lance = results.lance[i]
      if (JSON.stringify(memwal) !== JSON.stringify(lance)) found[filter] = { memwal, lance }
    })
    const documented = Object.fromEntries(
      Object.entries(DIFFERENCES).map(([filter, { memwal, lance }]) => [filter, { memwal, lance }]),
    )
    expect(found).toEqual(documented)
  })
})
