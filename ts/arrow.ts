import {
  Field,
  type RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  type Table,
  tableFromIPC,
} from 'apache-arrow'
import { MemWalError } from './errors.js'

/** What `put` accepts: a Table, one RecordBatch, or several. */
export type PutInput = Table | RecordBatch | readonly RecordBatch[]

// Structural checks: the caller's apache-arrow may be another copy or
// version than ours, so `instanceof` would reject valid input.
function isTable(value: unknown): value is Table {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as Table).batches) &&
    typeof (value as Table).schema === 'object'
  )
}

function isRecordBatch(value: unknown): value is RecordBatch {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RecordBatch).schema === 'object' &&
    typeof (value as RecordBatch).data === 'object' &&
    typeof (value as RecordBatch).numRows === 'number'
  )
}

export function isSchema(value: unknown): value is Schema {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as Schema).fields) &&
    (value as Schema).metadata instanceof Map
  )
}

/** The batches of a put, in order. */
export function batchesOf(input: PutInput): RecordBatch[] {
  if (isTable(input)) return [...input.batches]
  if (isRecordBatch(input)) return [input]
  if (Array.isArray(input)) {
    input.forEach((batch, i) => {
      if (!isRecordBatch(batch)) {
        throw new MemWalError('INVALID_INPUT', `Element ${i} of the batch list is not a RecordBatch`)
      }
    })
    return [...input]
  }
  throw new MemWalError(
    'INVALID_INPUT',
    'put expects an apache-arrow Table, a RecordBatch or an array of RecordBatches',
  )
}

/** One IPC stream holding `batches` (the native side copies it once). */
export function batchesToIPC(batches: readonly RecordBatch[]): Uint8Array {
  const writer = new RecordBatchStreamWriter()
  for (const batch of batches) writer.write(batch)
  writer.finish()
  return writer.toUint8Array(true)
}

/** An IPC stream with the schema and no batches. */
export function schemaToIPC(schema: Schema): Uint8Array {
  const writer = new RecordBatchStreamWriter()
  writer.reset(undefined, schema)
  writer.finish()
  return writer.toUint8Array(true)
}

/** The batches of an IPC stream produced by the native side. */
export function batchesFromIPC(ipc: Uint8Array): RecordBatch[] {
  return tableFromIPC(ipc).batches
}

/** Field metadata key Lance uses to mark primary-key columns. */
export const PRIMARY_KEY_METADATA = 'lance-schema:unenforced-primary-key'

/** `schema` with the named fields marked as the primary key. */
export function withPrimaryKey(schema: Schema, primaryKey: readonly string[]): Schema {
  if (!Array.isArray(primaryKey) || primaryKey.some((name) => typeof name !== 'string')) {
    throw new MemWalError('INVALID_INPUT', 'primaryKey must be an array of field names')
  }
  const names = new Set(schema.fields.map((f) => f.name))
  for (const name of primaryKey) {
    if (!names.has(name)) {
      throw new MemWalError('INVALID_INPUT', `primaryKey names unknown field '${name}'`)
    }
  }
  const fields = schema.fields.map((field) => {
    const index = primaryKey.indexOf(field.name)
    if (index < 0) return field
    const metadata = new Map(field.metadata)
    metadata.set(PRIMARY_KEY_METADATA, 'true')
    metadata.set(`${PRIMARY_KEY_METADATA}:position`, String(index + 1))
    return new Field(field.name, field.type, field.nullable, metadata)
  })
  return new Schema(fields, new Map(schema.metadata))
}

