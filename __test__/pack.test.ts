// Packs the package as it would be published, installs the tarball into an empty project and
// runs a small ESM script against it. The repo's dist/ and native addon must already be built
// (`npm test` runs `npm run build` before `vitest run`).
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const repoRoot = resolve(__dirname, '..')
const isWindows = process.platform === 'win32'

interface PackedFile {
  path: string
}

interface PackResult {
  filename: string
  files: PackedFile[]
}

interface SmokeOutput {
  shardId: unknown
  batchPositions: unknown
  next: unknown
}

const SMOKE_SCRIPT = `import { openShardWriter, openWalTailer } from 'memwal'
import { tableFromArrays } from 'apache-arrow'
const root = process.argv[2]
const table = tableFromArrays({ id: BigInt64Array.from([1n, 2n, 3n]), name: ['a', 'b', 'c'] })
const writer = await openShardWriter(root, { schema: table.schema, config: { enableMemtable: false } })
const { batchPositions } = await writer.put(table)
await writer.close()
const tailer = await openWalTailer(root, writer.shardId)
const next = await tailer.nextPosition()
console.log(JSON.stringify({ shardId: writer.shardId, batchPositions, next }))
`

// Child npm processes must not inherit the npm_* variables of the `npm test` that runs us
// (npm_config_local_prefix and friends would point them back at the repo).
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_')) env[key] = value
  }
  return env
}

// On Windows npm is a .cmd shim, which Node only spawns through a shell; quote every argument.
function npm(args: string[], cwd: string): string {
  const argv = isWindows ? args.map((arg) => `"${arg}"`) : args
  return execFileSync('npm', argv, {
    cwd,
    encoding: 'utf8',
    env: childEnv(),
    shell: isWindows,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  })
}

function lastLine(output: string): string {
  const lines = output
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
  const line = lines.at(-1)
  if (line === undefined) throw new Error('the smoke script printed nothing')
  return line
}

describe('npm package', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'memwal-pack-'))

  afterAll(() => {
    if (!process.env.MEMWAL_KEEP_TMP) rmSync(workDir, { recursive: true, force: true })
  })

  it('packs, installs into an empty project and writes then tails a shard', () => {
    const packDir = join(workDir, 'pack')
    const projectDir = join(workDir, 'project')
    mkdirSync(packDir)
    mkdirSync(projectDir)

    const packOutput = npm(
      ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir],
      repoRoot,
    )
    const packed = JSON.parse(packOutput.slice(packOutput.indexOf('['))) as PackResult[]
    expect(packed).toHaveLength(1)
    const [result] = packed
    const paths = result.files.map((file) => file.path.replaceAll('\\', '/'))
    expect(paths).toContain('dist/index.js')
    expect(paths).toContain('index.js')
    expect(paths).toContain('LICENSE')
    expect(paths.some((path) => /^memwal\.[\w-]+\.node$/.test(path))).toBe(true)

    const rootPackage = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>
    }
    const arrowVersion = rootPackage.devDependencies['apache-arrow']
    expect(arrowVersion).toBeTruthy()

    npm(['init', '-y'], projectDir)
    npm(
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        join(packDir, result.filename),
        `apache-arrow@${arrowVersion}`,
      ],
      projectDir,
    )

    writeFileSync(join(projectDir, 'smoke.mjs'), SMOKE_SCRIPT)
    const dataUrl = pathToFileURL(join(workDir, 'data')).href
    const smokeOutput = execFileSync(process.execPath, ['smoke.mjs', dataUrl], {
      cwd: projectDir,
      encoding: 'utf8',
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const out = JSON.parse(lastLine(smokeOutput)) as SmokeOutput

    expect(out.batchPositions).toEqual({ start: 0, end: 1 })
    expect(typeof out.next).toBe('number')
    expect(out.next as number).toBeGreaterThanOrEqual(2)
  }, 180_000)
})
