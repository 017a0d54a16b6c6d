/** Option letters, A to Z, in the order choices are given. */
export const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/** Choices as lettered lines, `A. text` (the pipeline's style) or `(A) text` (benchmarks'). */
export const letteredChoices = (choices: ReadonlyArray<string>, style: "dot" | "paren" = "dot"): string =>
  choices.map((c, i) => (style === "dot" ? `${LETTERS[i]}. ${c}` : `(${LETTERS[i]}) ${c}`)).join("\n")

/**
 * A deterministic shuffle seeded by a string, for choices that arrive with the correct one first
 * (GPQA's official layout): the same question always gets the same order, at import and at
 * evaluation alike.
 */
export const seededShuffle = <A>(items: ReadonlyArray<A>, seed: string): Array<A> => {
  let h = 2166136261
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 16777619)
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    h = Math.imul(h ^ (h >>> 15), 2246822507) >>> 0
    const j = h % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
