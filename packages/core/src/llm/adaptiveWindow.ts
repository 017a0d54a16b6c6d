/** Bounds of an endpoint's adaptive concurrency (see `AdaptiveWindow`). */
export interface AdaptiveBounds {
  /** The window never goes below this. */
  readonly min: number
  /** Nor above this. */
  readonly max: number
}

/**
 * Additive-increase / multiplicative-decrease of an endpoint's concurrency, for servers that say
 * nothing of their limits: the window grows by one after a window's worth of successes, and is
 * halved when the server shows it is overloaded (a 429, or `timeoutBurst` timeouts since the last
 * change). Requests sent before a decrease were sent at the old window: their overload signals
 * are not counted again, so that one burst halves the window once.
 *
 * The controller only counts; requests carry the `epoch` they were sent in (`sent`), and the
 * caller applies `size` to its permits after each signal.
 */
export class AdaptiveWindow {
  private window: number
  private successes = 0
  private timeouts = 0
  private epochNow = 0
  /** Halvings and growths so far, for stats. */
  decreases = 0
  constructor(
    readonly bounds: AdaptiveBounds,
    start: number,
    private readonly timeoutBurst = 2
  ) {
    this.window = clamp(start, bounds)
  }
  get size(): number {
    return this.window
  }
  /** The epoch a request sent now belongs to. */
  sent(): number {
    return this.epochNow
  }
  /** A request answered: after `size` of them the window grows by one. */
  succeeded(): void {
    this.successes++
    if (this.successes >= this.window && this.window < this.bounds.max) {
      this.window++
      this.successes = 0
    }
  }
  /** The server refused a request for load (a 429 with no limits of its own to follow). */
  overloaded(epoch: number): void {
    if (epoch === this.epochNow) this.decrease()
  }
  /** A request timed out: `timeoutBurst` of them in one epoch halve the window. */
  timedOut(epoch: number): void {
    if (epoch !== this.epochNow) return
    this.timeouts++
    if (this.timeouts >= this.timeoutBurst) this.decrease()
  }
  private decrease(): void {
    this.window = clamp(Math.floor(this.window / 2), this.bounds)
    this.successes = 0
    this.timeouts = 0
    this.epochNow++
    this.decreases++
  }
}

const clamp = (n: number, bounds: AdaptiveBounds): number =>
  Math.min(Math.max(1, bounds.max), Math.max(Math.max(1, bounds.min), Math.floor(n)))
