// Rebuild Arrow objects made by another copy of apache-arrow (another
// version, or the ESM build while we load the CommonJS one) as objects of
// our copy. apache-arrow dispatches on `instanceof`, so a foreign schema or
// batch would be mis-encoded; here we look only at structural properties
// and reuse the caller's buffers as they are (no copy, no per-value work).
import {
  Binary,
  BinaryView,
  Bool,
  Data,
  DataType,
  Date_,
  Decimal,
  Dictionary,
  Duration,
  Field,
  FixedSizeBinary,
  FixedSizeList,
  Float,
  Int,
  Interval,
  LargeBinary,
  LargeList,
  LargeUtf8,
  List,
  Map_,
  Null,
  RecordBatch,
  Schema,
  Struct,
  Time,
  Timestamp,
  Type,
  Union,
  Utf8,
  Utf8View,
  Vector,
} from 'apache-arrow'
import { MemWalError } from './errors.js'

// Loose views of foreign objects: only the members we read.
interface ForeignType {
  typeId: number
  [key: string]: unknown
}
interface ForeignField {
  name: string
  type: ForeignType
  nullable: boolean
  metadata: Map<string, string>
}
interface ForeignData {
  type: ForeignType
  offset: number
  length: number
  nullCount: number
  valueOffsets?: unknown
  values?: unknown
  nullBitmap?: unknown
  typeIds?: unknown
  children: ForeignData[]
  dictionary?: { data: ForeignData[] }
}

function adoptField(field: ForeignField): Field {
  return new Field(field.name, adoptType(field.type), field.nullable, new Map(field.metadata))
}

function childFields(t: ForeignType): Field[] {
  return (t.children as ForeignField[]).map(adoptField)
}

/** Our equivalent of a DataType from any apache-arrow copy. */
export function adoptType(t: ForeignType): DataType {
  if (t instanceof DataType) return t
  const p = t as unknown as Record<string, never>
  switch (t.typeId) {
    case Type.Null:
      return new Null()
    case Type.Int:
      return new Int(p.isSigned, p.bitWidth)
    case Type.Float:
      return new Float(p.precision)
    case Type.Binary:
      return new Binary()
    case Type.LargeBinary:
      return new LargeBinary()
    case Type.BinaryView:
      return new BinaryView()
    case Type.Utf8:
      return new Utf8()
    case Type.LargeUtf8:
      return new LargeUtf8()
    case Type.Utf8View:
      return new Utf8View()
    case Type.Bool:
      return new Bool()
    case Type.Decimal:
      return new Decimal(p.scale, p.precision, p.bitWidth)
    case Type.Date:
      return new Date_(p.unit)
    case Type.Time:
      return new Time(p.unit, p.bitWidth)
    case Type.Timestamp:
      return new Timestamp(p.unit, p.timezone)
    case Type.Interval:
      return new Interval(p.unit)
    case Type.Duration:
      return new Duration(p.unit)
    case Type.List:
      return new List(childFields(t)[0])
    case Type.LargeList:
      return new LargeList(childFields(t)[0])
    case Type.Struct:
      return new Struct(childFields(t))
    case Type.Union:
      return new Union(p.mode, Array.from(p.typeIds as ArrayLike<number>), childFields(t))
    case Type.FixedSizeBinary:
      return new FixedSizeBinary(p.byteWidth)
    case Type.FixedSizeList:
      return new FixedSizeList(p.listSize, childFields(t)[0])
    case Type.Map:
      return new Map_(childFields(t)[0] as never, p.keysSorted)
    case Type.Dictionary:
      return new Dictionary(
        adoptType(p.dictionary),
        adoptType(p.indices) as never,
        p.id,
        p.isOrdered,
      )
    default:
      throw new MemWalError(
        'INVALID_INPUT',
        `Unsupported Arrow type ${String(t)} (typeId ${t.typeId})`,
      )
  }
}

// Schemas we built, and what we built for each foreign schema. apache-arrow's
// Schema answers `instanceof` for any copy, so identity is what we trust.
const ownSchemas = new WeakSet<Schema>()
const adoptedSchemas = new WeakMap<Schema, Schema>()

/** Our Schema equivalent of any apache-arrow Schema (cached per schema object). */
export function adoptSchema(schema: Schema): Schema {
  if (ownSchemas.has(schema)) return schema
  const known = adoptedSchemas.get(schema)
  if (known) return known
  const foreign = schema as unknown as { fields: ForeignField[]; metadata: Map<string, string> }
  const adopted = new Schema(foreign.fields.map(adoptField), new Map(foreign.metadata))
  ownSchemas.add(adopted)
  adoptedSchemas.set(schema, adopted)
  return adopted
}

function adoptData(d: ForeignData, type: DataType): Data {
  const children = (d.children ?? []).map((child, i) => adoptData(child, type.children[i].type))
  const dictionary =
    d.dictionary && type instanceof Dictionary
      ? new Vector(d.dictionary.data.map((chunk) => adoptData(chunk, type.dictionary)))
      : undefined
  const buffers = [d.valueOffsets, d.values, d.nullBitmap, d.typeIds]
  return new Data(type, d.offset, d.length, d.nullCount, buffers as never, children, dictionary)
}

/** `batch` as a RecordBatch of our copy with `schema` (structurally equal). */
export function adoptBatch(batch: RecordBatch, schema: Schema): RecordBatch {
  if (batch.schema === schema) return batch
  const data = adoptData(batch.data as unknown as ForeignData, new Struct(schema.fields))
  return new RecordBatch(schema, data as Data<Struct>)
}
