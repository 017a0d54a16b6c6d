/**
 * Streams a row's text as it grows (as transformers.js's `generation/streamers`), holding back
 * the characters a stop string could still claim until the row ends.
 */
export class TextStreamer {
  private emitted = 0
  constructor(
    private readonly hold: number,
    private readonly onText: ((delta: string) => void) | undefined
  ) {}
  /** Passes on what of `text` is safe to show; all of it once the row has `ended`. */
  push(text: string, ended: boolean): void {
    const safe = ended ? text.length : text.length - this.hold
    if (safe > this.emitted) {
      this.onText?.(text.slice(this.emitted, safe))
      this.emitted = safe
    }
  }
}
