// Durable puts waiting for the WAL, acknowledged in bulk: the one path by
// which every durable put and delete is acknowledged.
//
// The native call admits a put (queues it for the WAL) and returns its end
// batch position, at once or (after a backpressure wait) through a promise.
// The WAL task then reports, once per entry it persists, how far the WAL
// reaches (`durable`); every put whose positions end at or before that
// point is acknowledged. Positions are handed out in admission order, so
// the waiters form a FIFO sorted by position and one report settles a
// whole prefix (a put admitted after a backpressure wait may register
// after a later one: it is inserted in order). This replaces a promise, a
// task and a thread hop per put with one call per WAL entry. A failure
// (poisoned, FENCED) or the WAL task stopping (CLOSED) rejects every put
// still waiting.
//
// The puts that callers make while acknowledgements are handed out (their
// continuations run right after a report) are queued without waking the
// WAL task; one append is asked for once that burst is over (setImmediate
// runs after every microtask of the report). N callers in a loop thus
// share one entry instead of the first of them getting one of its own.
//
// Non-durable puts are acknowledged before they reach the WAL. So that a
// process that returns from main without close() does not drop them, a
// writer with such puts not yet in the WAL registers here; when Node is
// about to exit ('beforeExit': nothing else keeps the loop alive) every
// registered writer is asked to append at once and holds the loop until
// the WAL has caught up (or the writer failed). An explicit process.exit()
// or a crash still loses them: that is what durableWrite is for.
import { MemWalError, toMemWalError } from './errors.js'

/**
 * Writers with acknowledged non-durable puts not yet in the WAL, each with
 * its native writer, held strongly here so that collecting an unreferenced
 * writer cannot drop them.
 */
const unsent = new Map<DurableWaits, unknown>()
let exitListener = false

function appendBeforeExit(): void {
  for (const waits of unsent.keys()) waits.appendBeforeExit()
}

interface Waiter {
  end: number
  resolve: () => void
  reject: (error: MemWalError) => void
}

/** What the waits need of the native writer. */
export interface DurableNative {
  /**
   * `hold(true)` when the first put starts waiting, `hold(false)` when the
   * last one is settled: Node stays alive exactly while a put waits.
   */
  hold(hold: boolean): void
  /** Append the puts queued with `deferAppend`. */
  appendNow(): void
  /** The native writer, kept while non-durable puts are unsent. */
  pin(): unknown
}

export class DurableWaits {
  #waiters: Waiter[] = []
  /** Index of the first unsettled waiter (shifting an array is O(n)). */
  #head = 0
  #durable = 0
  #failure?: MemWalError
  #stopped = false
  #settling = false
  /** Batch positions `[.., end)` were acknowledged without waiting (non-durable). */
  #acknowledged = 0
  /** Holding the loop for unsent non-durable puts at exit. */
  #exitHold = false
  #held = false
  readonly #native: DurableNative
  readonly #shardId: string

  constructor(shardId: string, native: DurableNative) {
    this.#shardId = shardId
    this.#native = native
  }

  /**
   * Whether acknowledgements are being handed out right now: a durable put
   * should then be queued with `deferAppend`, and will be appended at the
   * end of the burst.
   */
  get settling(): boolean {
    return this.#settling
  }

  /** Resolves once batch positions `[.., end)` are in the WAL. */
  wait(end: number): Promise<void> {
    if (end <= this.#durable) return Promise.resolve()
    const verdict = this.#verdict()
    if (verdict) return Promise.reject(verdict)
    return new Promise((resolve, reject) => {
      const waiters = this.#waiters
      let at = waiters.length
      while (at > this.#head && waiters[at - 1].end > end) at--
      if (at === waiters.length) waiters.push({ end, resolve, reject })
      else waiters.splice(at, 0, { end, resolve, reject })
      this.#updateHold()
    })
  }

  /**
   * A non-durable put of positions `[.., end)` was acknowledged: see the
   * file comment for how it still reaches the WAL when main returns.
   */
  acknowledged(end: number): void {
    if (end <= this.#durable || this.#verdict()) return
    if (end > this.#acknowledged) this.#acknowledged = end
    if (!unsent.has(this)) {
      unsent.set(this, this.#native.pin())
      if (!exitListener) {
        exitListener = true
        process.on('beforeExit', appendBeforeExit)
      }
    }
  }

  /** Node is about to exit: append now and hold it until the WAL has caught up. */
  appendBeforeExit(): void {
    this.#exitHold = true
    this.#updateHold()
    this.#native.appendNow()
  }

  /** Drop out of the exit registry once nothing acknowledged is unsent. */
  #settleUnsent(): void {
    if (!unsent.has(this)) return
    if (this.#durable < this.#acknowledged && !this.#verdict()) return
    unsent.delete(this)
    this.#exitHold = false
  }

  /** Hold the loop exactly while a put waits or unsent puts must reach the WAL at exit. */
  #updateHold(): void {
    const hold = this.#head < this.#waiters.length || this.#exitHold
    if (hold !== this.#held) {
      this.#held = hold
      this.#native.hold(hold)
    }
  }

  /** A report of the WAL task (see `listenDurable`). */
  progress(durable: number, failure: Error | null, stopped: boolean): void {
    if (durable > this.#durable) this.#durable = durable
    if (failure !== null && !this.#failure) this.#failure = toMemWalError(failure)
    if (stopped) this.#stopped = true
    const waiters = this.#waiters
    const first = this.#head
    let head = first
    while (head < waiters.length && waiters[head].end <= this.#durable) {
      waiters[head++].resolve()
    }
    if (head > first && !this.#settling) {
      this.#settling = true
      setImmediate(() => {
        this.#settling = false
        this.#native.appendNow()
      })
    }
    const verdict = head < waiters.length ? this.#verdict() : undefined
    if (verdict) {
      while (head < waiters.length) waiters[head++].reject(verdict)
    }
    if (head === waiters.length) {
      this.#waiters = []
      this.#head = 0
    } else if (head > 1024 && head * 2 > waiters.length) {
      // Puts that keep arriving never let the FIFO run empty: drop the
      // settled prefix now and then.
      this.#waiters = waiters.slice(head)
      this.#head = 0
    } else {
      this.#head = head
    }
    this.#settleUnsent()
    this.#updateHold()
  }

  /** Why nothing more will become durable, if that is so. */
  #verdict(): MemWalError | undefined {
    if (this.#failure) return this.#failure
    if (this.#stopped) {
      return new MemWalError('CLOSED', 'The writer stopped before the put reached the WAL', {
        shardId: this.#shardId,
      })
    }
    return undefined
  }
}
