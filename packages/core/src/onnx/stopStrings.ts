/**
 * Stop strings (as transformers.js's `generation/stopping_criteria`): a generation ends where one
 * of them first appears, and the text is cut before it.
 */
export class StopStrings {
  readonly strings: ReadonlyArray<string>
  /** Characters a streamer keeps back: the longest partial match a later token could complete. */
  readonly hold: number
  constructor(strings: ReadonlyArray<string> | undefined) {
    this.strings = (strings ?? []).filter((s) => s.length > 0)
    this.hold = Math.max(0, ...this.strings.map((s) => s.length - 1))
  }
  get any(): boolean {
    return this.strings.length > 0
  }
  /**
   * Where the text must be cut, if a stop string now appears in it; `before` is the text's length
   * before the last token (only a match that the new text completes is looked for).
   */
  cutAt(text: string, before: number): number | undefined {
    const from = Math.max(0, before - this.hold)
    let cut: number | undefined
    for (const s of this.strings) {
      const at = text.indexOf(s, from)
      if (at >= 0 && (cut === undefined || at < cut)) cut = at
    }
    return cut
  }
}
