/** Every failure memwal reports carries one of these codes (README, "Errors"). */
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

/**
 * Turn anything thrown by the native addon into a `MemWalError`. The
 * binding sets `code` and `shardId` as properties of the errors it throws
 * (crates/memwal-node/src/errors.rs); anything else (a napi-rs argument
 * check, a panic caught by napi-rs) is INTERNAL, with the original as
 * `cause`.
 */
export function toMemWalError(error: unknown): MemWalError {
  if (error instanceof MemWalError) return error
  if (error instanceof Error) {
    const { code, shardId } = error as Error & { code?: unknown; shardId?: unknown }
    if (typeof code === 'string' && CODES.has(code)) {
      return new MemWalError(code as MemWalErrorCode, error.message, {
        shardId: typeof shardId === 'string' ? shardId : undefined,
      })
    }
    return new MemWalError('INTERNAL', error.message, { cause: error })
  }
  return new MemWalError('INTERNAL', String(error), { cause: error })
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
