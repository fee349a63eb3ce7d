/** Every failure memwal reports carries one of these codes (SPEC §4). */
export type MemWalErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_CONFIG'
  | 'SCHEMA_MISMATCH'
  | 'FENCED'
  | 'WAL_ONLY_MODE'
  | 'CLOSED'
  | 'IO'
  | 'CORRUPT'
  | 'NOT_FOUND'
  | 'INTERNAL'

const CODES: ReadonlySet<string> = new Set<MemWalErrorCode>([
  'INVALID_INPUT',
  'INVALID_CONFIG',
  'SCHEMA_MISMATCH',
  'FENCED',
  'WAL_ONLY_MODE',
  'CLOSED',
  'IO',
  'CORRUPT',
  'NOT_FOUND',
  'INTERNAL',
])

/** A typed memwal failure: branch on `code`, not on the message text. */
export class MemWalError extends Error {
  readonly code: MemWalErrorCode
  /** The shard the failure concerns, when known. */
  readonly shardId?: string

  constructor(
    code: MemWalErrorCode,
    message: string,
    options?: { shardId?: string; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'MemWalError'
    this.code = code
    if (options?.shardId) this.shardId = options.shardId
  }
}

// The native layer prefixes reasons with `[memwal:<CODE>:<shard>] `.
const NATIVE_REASON = /^\[memwal:([A-Z_]+):([^\]]*)\] ([\s\S]*)$/

/** Turn anything thrown by the native addon into a `MemWalError`. */
export function toMemWalError(error: unknown): MemWalError {
  if (error instanceof MemWalError) return error
  const message = error instanceof Error ? error.message : String(error)
  const match = NATIVE_REASON.exec(message)
  if (match && CODES.has(match[1])) {
    return new MemWalError(match[1] as MemWalErrorCode, match[3], {
      shardId: match[2] || undefined,
    })
  }
  return new MemWalError('INTERNAL', message, { cause: error })
}

/** Run a native call (sync throw or rejected promise) with typed errors. */
export async function native<T>(call: () => T | Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw toMemWalError(error)
  }
}

/** The synchronous twin of `native`. */
export function nativeSync<T>(call: () => T): T {
  try {
    return call()
  } catch (error) {
    throw toMemWalError(error)
  }
}
