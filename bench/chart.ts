// The SVG chart of bench/run.ts, drawn by hand: no dependencies, no network.
// Top: each goal's measured value divided by its target (≥ 1 passes).
// Bottom: memwal ÷ each baseline per scenario and mode, goal targets marked.
import { fmt } from './common.js'
import { type GoalRow, MODE_LABEL, ratioText, type SuiteResults } from './report.js'
import { IMPLS, impl } from './scenarios.js'

const WIDTH = 1180
const LABEL_W = 440
const PLOT_X = LABEL_W + 10
const PLOT_W = 560
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'

const COLORS: Record<string, string> = {
  ts: '#4e79a7',
  'ts-group': '#4e79a7',
  lancedb: '#f28e2b',
  pylance: '#e15759',
  'limit-fdatasync': '#76b7b2',
  'limit-cycle': '#59a14f',
  'limit-pagecache': '#edc948',
  'limit-memcpy': '#b07aa1',
}

const esc = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** A log10 axis from 10^lo to 10^hi over the plot width. */
function axis(lo: number, hi: number): (v: number) => number {
  return (v) => {
    const l = Math.log10(Math.min(10 ** hi, Math.max(10 ** lo, v)))
    return PLOT_X + ((l - lo) / (hi - lo)) * PLOT_W
  }
}

function gridLines(
  x: (v: number) => number,
  lo: number,
  hi: number,
  y0: number,
  y1: number,
): string[] {
  const out: string[] = []
  for (let e = lo; e <= hi; e++) {
    const px = x(10 ** e)
    const strong = e === 0
    out.push(
      `<line x1="${px}" y1="${y0}" x2="${px}" y2="${y1}" stroke="${strong ? '#333' : '#ddd'}" stroke-width="${strong ? 1.5 : 1}"/>`,
      `<text x="${px}" y="${y0 - 4}" font-size="10" text-anchor="middle" fill="#555" ${FONT}>${ratioText(10 ** e)}</text>`,
    )
  }
  return out
}

function bar(x: (v: number) => number, value: number, y: number, h: number, color: string): string {
  const from = x(1)
  const to = x(value)
  return `<rect x="${Math.min(from, to)}" y="${y}" width="${Math.max(1, Math.abs(to - from))}" height="${h}" fill="${color}"/>`
}

export function chart(r: SuiteResults, goals: GoalRow[]): string {
  const parts: string[] = []
  let y = 30
  parts.push(
    `<text x="10" y="${y}" font-size="16" font-weight="bold" ${FONT}>memwal benchmark ${esc(r.startedAt)} — ${esc(r.machine.cpuCount.toString())} CPUs, load ${r.machine.loadAverage[0].toFixed(2)} at start, addon ${esc(r.machine.nativeProfile)}</text>`,
  )
  y += 30

  // ---- goals: measured ÷ target
  parts.push(
    `<text x="10" y="${y}" font-size="14" font-weight="bold" ${FONT}>Goals: measured ÷ target (right of the black line = met)</text>`,
  )
  y += 26
  const gx = axis(-2, 2)
  const goalTop = y
  const rowH = 16
  y += 4
  for (const g of goals) {
    const mode = MODE_LABEL[g.memwal] ?? g.memwal
    const label = `${g.id} · ${g.where} · ${mode} · ${g.measure}`
    parts.push(
      `<text x="${LABEL_W}" y="${y + 11}" font-size="10" text-anchor="end" ${FONT}>${esc(label)}</text>`,
    )
    if (g.pass === undefined) {
      parts.push(
        `<text x="${gx(1) + 6}" y="${y + 11}" font-size="10" fill="#888" ${FONT}>not measured</text>`,
      )
    } else {
      parts.push(bar(gx, g.margin, y + 2, rowH - 5, g.pass ? '#59a14f' : '#e15759'))
      parts.push(
        `<text x="${PLOT_X + PLOT_W + 6}" y="${y + 11}" font-size="10" ${FONT}>${esc(g.pass ? 'met' : 'missed')} ${esc(ratioText(g.margin))}</text>`,
      )
    }
    y += rowH
  }
  parts.push(...gridLines(gx, -2, 2, goalTop, y))
  y += 40

  // ---- ratios: memwal ÷ baseline per scenario and mode
  parts.push(
    `<text x="10" y="${y}" font-size="14" font-weight="bold" ${FONT}>memwal ÷ baseline, median MB/s (right of the black line = memwal faster; black tick = goal)</text>`,
  )
  y += 18
  // Legend
  let lx = 10
  for (const i of IMPLS.filter((k) => k.role !== 'memwal' && k.key !== 'ts-group')) {
    const name = i.key === 'ts' ? 'TS writer / TS group commit' : i.label
    parts.push(
      `<rect x="${lx}" y="${y}" width="10" height="10" fill="${COLORS[i.key]}"/>`,
      `<text x="${lx + 14}" y="${y + 9}" font-size="10" ${FONT}>${esc(name)}</text>`,
    )
    lx += 24 + name.length * 5.6
    if (lx > WIDTH - 200) {
      lx = 10
      y += 14
    }
  }
  y += 34
  const rx = axis(-3, 4)
  const ratioTop = y
  const barH = 9
  for (const s of r.scenarios) {
    for (const mode of ['memwal-wal', 'memwal-mt']) {
      const mine = r.summaries.find((x) => x.scenario === s.key && x.impl === mode)
      const ratios = Object.entries(mine?.ratios ?? {})
      const label = `${s.key} · ${mode === 'memwal-wal' ? 'WAL-only' : 'MemTable'}`
      const h = Math.max(14, ratios.length * (barH + 2) + 4)
      parts.push(
        `<text x="${LABEL_W}" y="${y + Math.min(h, 14) - 3}" font-size="10" text-anchor="end" ${FONT}>${esc(label)}</text>`,
      )
      if (ratios.length === 0) {
        parts.push(
          `<text x="${rx(1) + 6}" y="${y + 11}" font-size="10" fill="#888" ${FONT}>no ratio (not run or failed)</text>`,
        )
      }
      let by = y + 2
      for (const [base, q] of ratios) {
        parts.push(bar(rx, q.median, by, barH, COLORS[base] ?? '#999'))
        parts.push(
          `<text x="${Math.max(rx(1), rx(q.median)) + 4}" y="${by + barH - 1}" font-size="9" fill="#333" ${FONT}>${esc(`${ratioText(q.median)} ${impl(base).label}`)}</text>`,
        )
        const goal = goals.find(
          (g) => g.where === s.key && g.memwal === mode && g.baseline === base,
        )
        if (goal) {
          const tx = rx(goal.target)
          parts.push(
            `<line x1="${tx}" y1="${by - 1}" x2="${tx}" y2="${by + barH + 1}" stroke="#000" stroke-width="2"/>`,
          )
        }
        by += barH + 2
      }
      y += h
    }
    parts.push(
      `<line x1="10" y1="${y + 1}" x2="${WIDTH - 10}" y2="${y + 1}" stroke="#eee" stroke-width="1"/>`,
    )
    y += 3
  }
  parts.push(...gridLines(rx, -3, 4, ratioTop, y))
  y += 20
  parts.push(
    `<text x="10" y="${y}" font-size="10" fill="#555" ${FONT}>${esc(`${r.settings.reps} reps × ${fmt(r.settings.seconds, 1)} s per implementation; MB = 10^6 bytes of Arrow payload; log scales. Full tables: the .md beside this file.`)}</text>`,
  )
  y += 14
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}">`,
    `<rect width="${WIDTH}" height="${y}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}
