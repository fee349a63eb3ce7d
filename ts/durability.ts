// Durable puts waiting for the WAL, acknowledged in bulk.
//
// A durable put is queued by the native call itself and comes back with
// its batch positions. The WAL task then reports, once per entry it
// persists, how far the WAL reaches (`durable`); every put whose positions
// end at or before that point is acknowledged. Puts are queued in call
// order, so the waiters form a FIFO sorted by position and one report
// settles a whole prefix. This replaces a promise, a task and a thread
// hop per put with one call per WAL entry.
//
// The puts that callers make while acknowledgements are handed out (their
// continuations run right after a report) are queued without waking the
// WAL task; one append is asked for once that burst is over (setImmediate
// runs after every microtask of the report). N callers in a loop thus
// share one entry instead of the first of them getting one of its own.
import { MemWalError, toMemWalError } from './errors.js'

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
}

export class DurableWaits {
  #waiters: Waiter[] = []
  /** Index of the first unsettled waiter (shifting an array is O(n)). */
  #head = 0
  #durable = 0
  #failure?: MemWalError
  #stopped = false
  #settling = false
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
      if (this.#head === this.#waiters.length) this.#native.hold(true)
      this.#waiters.push({ end, resolve, reject })
    })
  }

  /** A report of the WAL task (see `listenDurable`). */
  progress(durable: number, failure: string | null, stopped: boolean): void {
    if (durable > this.#durable) this.#durable = durable
    if (failure !== null && !this.#failure) this.#failure = toMemWalError(new Error(failure))
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
      if (waiters.length > 0) this.#native.hold(false)
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
