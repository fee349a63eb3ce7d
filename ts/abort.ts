import { abortToken, createAbortToken, dropAbortToken } from '../index.js'
import { MemWalError } from './errors.js'

/**
 * The error an aborted open rejects with: a `MemWalError` with code
 * `CLOSED` (the caller ended the call), named `AbortError` like the DOM's,
 * with the signal's reason as `cause`.
 */
export function abortError(call: string, signal: AbortSignal): MemWalError {
  const error = new MemWalError('CLOSED', `${call} was aborted`, { cause: signal.reason })
  error.name = 'AbortError'
  return error
}

/** @internal Check an open's `signal` option. */
export function checkSignal(call: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (!(signal instanceof AbortSignal)) {
    throw new MemWalError('INVALID_CONFIG', `${call} option 'signal' must be an AbortSignal`)
  }
  return signal
}

/**
 * @internal Run a native open that `signal` can abort. An abort rejects at
 * once and tells the native side to drop the open where it stands (no
 * request is started after it). If the open completes anyway, `discard`
 * closes what it opened: nothing outlives an aborted open.
 */
export async function abortableOpen<T>(
  call: string,
  signal: AbortSignal | undefined,
  open: (token: number | undefined) => Promise<T>,
  discard: (opened: T) => Promise<unknown>,
): Promise<T> {
  if (signal === undefined) return open(undefined)
  if (signal.aborted) throw abortError(call, signal)
  const token = createAbortToken()
  let onAbort = () => {}
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      abortToken(token)
      reject(abortError(call, signal))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  const opening = open(token)
  let opened: T
  try {
    opened = await Promise.race([opening, aborted])
  } catch (error) {
    if (!signal.aborted) throw error
    // The abort won: whatever the open still produces is closed.
    opening.then(discard).catch(() => undefined)
    throw abortError(call, signal)
  } finally {
    signal.removeEventListener('abort', onAbort)
    dropAbortToken(token)
  }
  if (signal.aborted) {
    // Opened in the same turn as the abort: the caller no longer wants it.
    await discard(opened).catch(() => undefined)
    throw abortError(call, signal)
  }
  return opened
}
