import leven from "leven"

/** A name with case, dashes, underscores and spaces folded away: `max_rounds`, `Max-Rounds` and `maxRounds` are one. */
export const foldName = (name: string): string => name.toLowerCase().replace(/[-_\s]/g, "")

/**
 * The name among `known` that `given` was most likely meant to be: the same name in another case
 * convention (`max_rounds` for `maxRounds`), else the nearest within two edits for names of four
 * letters or more (`concurency` for `concurrency`); undefined when none is near enough to say.
 */
export const nearestName = (given: string, known: ReadonlyArray<string>): string | undefined => {
  const same = known.find((k) => foldName(k) === foldName(given))
  if (same !== undefined) return same
  if (given.length < 4) return undefined
  let best: string | undefined
  let bestDistance = 3
  for (const k of known) {
    const d = leven(foldName(given), foldName(k))
    if (d < bestDistance) {
      best = k
      bestDistance = d
    }
  }
  return best
}
