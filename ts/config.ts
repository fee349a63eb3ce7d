// The writer's options, as TypeScript sees them.
//
// They are defined once, in Rust (`ShardWriterConfig` in the core's
// writer/config.rs: fields, defaults, bounds). The binding exports their JS
// shape as `NativeWriterOptions` in the generated index.d.ts (with its doc
// comments), their defaults (`defaultWriterOptions()`) and the list of names
// with kinds and bounds (`writerOptionTable()`). This file writes no option
// down: `ShardWriterOptions` is derived from the generated type, the
// builder's `with…` setters are made from the table, and the only checks
// made here are of names and JS types, from the table's kinds, so that a
// misspelt or mistyped option fails when it is set. Ranges are checked
// natively when the writer opens.
import {
  defaultWriterOptions,
  type NativeOptionSpec,
  type NativeWriterOptions,
  writerOptionTable,
} from '../index.js'
import { MemWalError, nativeSync } from './errors.js'

/**
 * Every writer knob (see each field). Durations are milliseconds, sizes
 * bytes; `null` turns a timer off. Defaults follow Lance's ShardWriter.
 */
export type ShardWriterOptions = Required<NativeWriterOptions>

/** Codecs for flushed Parquet files. */
export type FlushCompression = ShardWriterOptions['flushCompression']

type OptionName = keyof ShardWriterOptions

/** `withMaxWalBufferSize(value)` for `maxWalBufferSize`, and so on. */
type Setters = {
  readonly [K in OptionName as `with${Capitalize<K>}`]: (
    value: ShardWriterOptions[K],
  ) => ShardWriterConfig
}

let table: ReadonlyMap<string, NativeOptionSpec> | undefined

/** The native option list, by name (read once). */
function optionTable(): ReadonlyMap<string, NativeOptionSpec> {
  table ??= new Map(nativeSync(() => writerOptionTable()).map((spec) => [spec.name, spec]))
  return table
}

function nativeDefaults(): ShardWriterOptions {
  return nativeSync(() => defaultWriterOptions()) as ShardWriterOptions
}

function checkValue(spec: NativeOptionSpec, value: unknown): void {
  const name = spec.name
  if (spec.kind === 'choice') {
    const choices = spec.choices ?? []
    if (typeof value !== 'string' || !choices.includes(value)) {
      throw new MemWalError(
        'INVALID_CONFIG',
        `${name} must be one of ${choices.join(', ')}, got ${String(value)}`,
      )
    }
    return
  }
  const ok =
    spec.kind === 'boolean'
      ? typeof value === 'boolean'
      : (typeof value === 'number' && !Number.isNaN(value)) ||
        (spec.kind === 'integer|null' && value === null)
  if (!ok) {
    const expected =
      spec.kind === 'boolean'
        ? 'a boolean'
        : spec.kind === 'integer'
          ? 'a number'
          : 'a number or null'
    throw new MemWalError(
      'INVALID_CONFIG',
      `${name} must be ${expected}, got ${value === null ? 'null' : typeof value}`,
    )
  }
  if (typeof value === 'number' && (value < 0 || !Number.isInteger(value))) {
    throw new MemWalError('INVALID_CONFIG', `${name} must be a non-negative integer, got ${value}`)
  }
}

/** Check names and types of a partial option object (ranges are checked natively). */
function checkOptions(options: object): Partial<ShardWriterOptions> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new MemWalError('INVALID_CONFIG', 'config must be an object or a ShardWriterConfig')
  }
  const known = optionTable()
  for (const [name, value] of Object.entries(options)) {
    const spec = known.get(name)
    if (spec === undefined) {
      throw new MemWalError(
        'INVALID_CONFIG',
        `Unknown option '${name}'; known options: ${[...known.keys()].join(', ')}`,
      )
    }
    if (value !== undefined) checkValue(spec, value)
  }
  return options as Partial<ShardWriterOptions>
}

/**
 * An immutable builder over `ShardWriterOptions`. Each `with…` returns a
 * new config; values are range-checked when the writer opens. There is one
 * `with…` per option (`withDurableWrite`, `withMaxWalFlushIntervalMs`, …).
 *
 * ```ts
 * const config = ShardWriterConfig.defaults().withDurableWrite(false).withMaxWalFlushIntervalMs(50)
 * ```
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface below types the setters defined after it
export class ShardWriterConfig {
  readonly #options: Readonly<ShardWriterOptions>

  private constructor(options: ShardWriterOptions) {
    this.#options = Object.freeze({ ...options })
  }

  /** Lance's defaults. */
  static defaults(): ShardWriterConfig {
    return new ShardWriterConfig(nativeDefaults())
  }

  /** Defaults overridden by `options`; unknown names are INVALID_CONFIG. */
  static from(options: Partial<ShardWriterOptions> | ShardWriterConfig = {}): ShardWriterConfig {
    if (options instanceof ShardWriterConfig) return options
    const checked = checkOptions(options)
    const merged: ShardWriterOptions = { ...nativeDefaults() }
    for (const [name, value] of Object.entries(checked)) {
      if (value !== undefined) (merged as unknown as Record<string, unknown>)[name] = value
    }
    return new ShardWriterConfig(merged)
  }

  /** A copy with one option changed. */
  with<K extends OptionName>(name: K, value: ShardWriterOptions[K]): ShardWriterConfig {
    checkOptions({ [name]: value })
    return new ShardWriterConfig({ ...this.#options, [name]: value })
  }

  /** The resolved options as a plain object. */
  toOptions(): ShardWriterOptions {
    return { ...this.#options }
  }

  /** @internal The shape the native addon takes. */
  toNative(): NativeWriterOptions {
    return { ...this.#options }
  }
}

// The `with…` setters, one per option of the native table: typed by this
// interface, defined on the prototype below (a test checks every one).
export interface ShardWriterConfig extends Setters {}
for (const name of optionTable().keys()) {
  Object.defineProperty(
    ShardWriterConfig.prototype,
    `with${name[0].toUpperCase()}${name.slice(1)}`,
    {
      value(this: ShardWriterConfig, value: unknown): ShardWriterConfig {
        return this.with(name as OptionName, value as never)
      },
      writable: true,
      configurable: true,
    },
  )
}
