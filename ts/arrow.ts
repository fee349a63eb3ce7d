import {
  Field,
  type RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  type Table,
  tableFromIPC,
} from 'apache-arrow'
import { adoptBatch, adoptSchema } from './adopt.js'
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
    isSchema((value as Table).schema)
  )
}

function isRecordBatch(value: unknown): value is RecordBatch {
  if (typeof value !== 'object' || value === null) return false
  const { schema, data, numRows } = value as RecordBatch
  return (
    isSchema(schema) &&
    typeof data === 'object' &&
    data !== null &&
    Array.isArray(data.children) &&
    typeof numRows === 'number'
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
        throw new MemWalError(
          'INVALID_INPUT',
          `Element ${i} of the batch list is not a RecordBatch`,
        )
      }
    })
    return [...input]
  }
  throw new MemWalError(
    'INVALID_INPUT',
    'put expects an apache-arrow Table, a RecordBatch or an array of RecordBatches',
  )
}

function describeField(field: Field): string {
  return `'${field.name}' ${String(field.type)}`
}

/**
 * How `other` differs from `schema` in names or types, if it does.
 * Nullability may differ: the stream declares a field nullable when any
 * batch does, and the native side checks the values against the writer
 * schema (README, "What a put accepts").
 */
function firstDifference(schema: Schema, other: Schema): string | undefined {
  if (other.fields.length !== schema.fields.length) {
    return `has ${other.fields.length} fields rather`
  }
  for (let j = 0; j < schema.fields.length; j++) {
    const want = describeField(schema.fields[j])
    const have = describeField(other.fields[j])
    if (want !== have) return `has field ${j} ${have} rather`
  }
  return undefined
}

/**
 * One IPC stream holding `batches` (the native side copies it once).
 *
 * Every batch is written under the first batch's schema: batches from
 * different tables carry different dictionary ids, and a schema change in
 * mid-stream would otherwise end the stream and drop the rest.
 */
export function batchesToIPC(batches: readonly RecordBatch[]): Uint8Array {
  try {
    const writer = new RecordBatchStreamWriter({ autoDestroy: false })
    const first = batches[0].schema
    const schema = nullableWhereAny(adoptSchema(first), batches)
    batches.forEach((batch, i) => {
      const difference = batch.schema === first ? undefined : firstDifference(first, batch.schema)
      if (difference) {
        throw new MemWalError('SCHEMA_MISMATCH', `Batch ${i} ${difference} than batch 0`)
      }
      writer.write(adoptBatch(batch, schema))
    })
    writer.finish()
    return writer.toUint8Array(true)
  } catch (error) {
    // Objects that only look like Arrow batches fail inside apache-arrow's
    // encoder: that is bad input, not an internal failure.
    if (error instanceof MemWalError) throw error
    throw new MemWalError(
      'INVALID_INPUT',
      `Malformed Arrow input: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    )
  }
}

/** `schema` with each field nullable if it is in any of `batches`. */
function nullableWhereAny(schema: Schema, batches: readonly RecordBatch[]): Schema {
  const nullable = schema.fields.map((field, j) =>
    batches.some((b) => b.schema.fields[j]?.nullable ?? field.nullable),
  )
  if (nullable.every((n, j) => n === schema.fields[j].nullable)) return schema
  const fields = schema.fields.map(
    (f, j) => new Field(f.name, f.type, nullable[j], new Map(f.metadata)),
  )
  return new Schema(fields, new Map(schema.metadata))
}

/** An IPC stream with the schema and no batches. */
export function schemaToIPC(schema: Schema): Uint8Array {
  const writer = new RecordBatchStreamWriter()
  writer.reset(undefined, adoptSchema(schema))
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
  return adoptSchema(new Schema(fields, new Map(schema.metadata)))
}
