// Shared fixtures for the vitest suites: a temp root per test and small tables.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  Field,
  Int64,
  RecordBatch,
  Schema,
  Table,
  tableFromArrays,
  Utf8,
  vectorFromArray,
} from 'apache-arrow'
import { expect, inject } from 'vitest'
import {
  MemWalError,
  type MemWalErrorCode,
  type OpenShardWriterOptions,
  openShardReader,
  openShardWriter,
  openWalTailer,
  type ShardReader,
  type ShardWriter,
  type StorageOptions,
  type WalTailer,
} from '../ts/index.js'

/** A fresh local directory; removed by the returned cleanup. */
export function tempRoot(): { dir: string; uri: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'memwal-test-'))
  return { dir, uri: `file://${dir}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A unique in-process memory root. */
export function memoryRoot(name: string): string {
  return `memory://${name}-${Math.random().toString(36).slice(2)}`
}

/** The storage backends the behaviour suites run on. */
export type BackendKind = 'file' | 'memory' | 's3'
export const BACKENDS: readonly BackendKind[] = ['file', 'memory', 's3']

/** storageOptions for the run's moto server (started by global-setup.ts). */
export function s3StorageOptions(): StorageOptions {
  const s3 = inject('memwalS3')
  return {
    region: s3.region,
    endpoint: s3.endpoint,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    allowHttp: true,
  }
}

/**
 * A fresh, empty storage root on one backend, with opens that pass the
 * root's storageOptions along.
 */
export interface TestRoot {
  kind: BackendKind
  uri: string
  storageOptions?: StorageOptions
  /** The local directory (file backend only). */
  dir?: string
  writer(options: Omit<OpenShardWriterOptions, 'storageOptions'>): Promise<ShardWriter>
  tailer(shardId: string): Promise<WalTailer>
  reader(shardId: string): Promise<ShardReader>
  /** Removes a local root; memory and S3 roots die with the process and the server. */
  cleanup(): void
}

export function backendRoot(kind: BackendKind, label = 'root'): TestRoot {
  let uri: string
  let dir: string | undefined
  let storageOptions: StorageOptions | undefined
  let cleanup = () => {}
  if (kind === 'file') {
    const root = tempRoot()
    ;({ uri, dir, cleanup } = root)
  } else if (kind === 'memory') {
    uri = memoryRoot(label)
  } else {
    uri = `s3://${inject('memwalS3').bucket}/${label}-${crypto.randomUUID()}`
    storageOptions = s3StorageOptions()
  }
  return {
    kind,
    uri,
    dir,
    storageOptions,
    writer: (options) => openShardWriter(uri, { ...options, storageOptions }),
    tailer: (shardId) => openWalTailer(uri, shardId, { storageOptions }),
    reader: (shardId) => openShardReader(uri, shardId, { storageOptions }),
    cleanup,
  }
}

/** Rows with ids `start..start+rows` and a name column. */
export function events(start: number, rows: number): Table {
  const ids = BigInt64Array.from({ length: rows }, (_, i) => BigInt(start + i))
  const names = Array.from({ length: rows }, (_, i) => `event-${start + i}`)
  return tableFromArrays({ id: ids, name: names })
}

export const WAL_ONLY = { enableMemtable: false, maxWalFlushIntervalMs: null } as const

/** Assert that `promise` rejects with a MemWalError of `code`; returns it. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: MemWalErrorCode,
): Promise<MemWalError> {
  let caught: unknown
  try {
    await promise
  } catch (error) {
    caught = error
  }
  expect(caught, `expected a ${code} rejection`).toBeInstanceOf(MemWalError)
  const error = caught as MemWalError
  expect(error.code, error.message).toBe(code)
  return error
}

/** Assert that `fn` throws a MemWalError of `code`; returns it. */
export function throwsWith(fn: () => unknown, code: MemWalErrorCode): MemWalError {
  let caught: unknown
  try {
    fn()
  } catch (error) {
    caught = error
  }
  expect(caught, `expected a ${code} error`).toBeInstanceOf(MemWalError)
  const error = caught as MemWalError
  expect(error.code, error.message).toBe(code)
  return error
}

/** Every id stored in the given batches, in order. */
export function idsOf(
  batches: { getChild(name: string): { toArray(): ArrayLike<unknown> } | null }[],
): number[] {
  return batches.flatMap((b) => Array.from(b.getChild('id')?.toArray() ?? [], (v) => Number(v)))
}

/** `id int64 non-null, name utf8`: plain types every reader agrees on. */
export const ID_NAME_SCHEMA = new Schema([
  new Field('id', new Int64(), false),
  new Field('name', new Utf8(), true),
])

/** Rows of ID_NAME_SCHEMA. */
export function idNameRows(pairs: [number, string][]): Table {
  const inferred = new Table({
    id: vectorFromArray(
      pairs.map(([id]) => BigInt(id)),
      new Int64(),
    ),
    name: vectorFromArray(
      pairs.map(([, name]) => name),
      new Utf8(),
    ),
  })
  return new Table(inferred.batches.map((b) => new RecordBatch(ID_NAME_SCHEMA, b.data)))
}
