import leven from "leven"

/** A name as people write it in other conventions: `max_rounds`, `Max-Rounds` and `maxRounds` are one. */
const folded = (name: string): string => name.toLowerCase().replace(/[-_\s]/g, "")

/**
 * The name among `known` that `given` was most likely meant to be: the same name in another case
 * convention (`max_rounds` for `maxRounds`), else the nearest within two edits for names of four
 * letters or more (`concurency` for `concurrency`); undefined when none is near enough to say.
 */
export const nearestName = (given: string, known: ReadonlyArray<string>): string | undefined => {
  const same = known.find((k) => folded(k) === folded(given))
  if (same !== undefined) return same
  if (given.length < 4) return undefined
  let best: string | undefined
  let bestDistance = 3
  for (const k of known) {
    const d = leven(folded(given), folded(k))
    if (d < bestDistance) {
      best = k
      bestDistance = d
    }
  }
  return best
}
