/**
 * Reading the chosen option of a multiple-choice reply. `extractLetter` is fastcot's own reading
 * (the last committed answer, never a guess); `officialMmluProLetter` and `officialGpqaLetter`
 * reproduce the benchmarks' published scorers exactly, so scores can stand beside published ones.
 */

const BOXED_LETTER = /\\boxed\{\s*(?:\\text\{\s*)?\(?([A-Z])\)?\s*\}?\s*\}/g
const ANSWER_IS_LETTER = /[Aa]nswer(?: is)?:?\s*(?:\*\*)?\s*\(?([A-Z])\)?(?![a-zA-Z])/g
const ONLY_A_LETTER = /^\s*\(?([A-Z])\)?\.?\s*$/

/**
 * The reply without what a base model writes after its answer when it runs on into a new
 * few-shot question ("\n\nQuestion: …").
 */
export const withoutRunOn = (text: string): string => {
  const runOn = /\n\s*(?:Question|Q):/.exec(text)
  return runOn === null || runOn.index === 0 ? text : text.slice(0, runOn.index)
}

/**
 * fastcot's reading of the chosen letter: in the reply cut before any run-on question, the last
 * boxed letter, else the last "answer is (X)" / "Answer: X", else a reply that is only the letter;
 * undefined ("no answer") otherwise, never a guess.
 */
export const extractLetter = (text: string): string | undefined => {
  const reply = withoutRunOn(text)
  let boxed: string | undefined
  for (const m of reply.matchAll(BOXED_LETTER)) boxed = m[1]
  if (boxed !== undefined) return boxed
  let letter: string | undefined
  for (const m of reply.matchAll(ANSWER_IS_LETTER)) letter = m[1]
  return letter ?? ONLY_A_LETTER.exec(reply)?.[1]
}

/** Python's `\w` for `str` patterns: Unicode letters and digits, and the underscore. */
const WORD = /[\p{L}\p{N}_]/u
const isWordChar = (c: string | undefined) => c !== undefined && WORD.test(c)

/** Python's `\b[A-J]\b` at index i (surrogate pairs aside, which are never A-J). */
const standaloneLetterAt = (text: string, i: number, letters: string): boolean =>
  letters.includes(text[i]!) && !isWordChar(charBefore(text, i)) && !isWordChar(charAt(text, i + 1))

const charBefore = (text: string, i: number): string | undefined => {
  if (i === 0) return undefined
  const code = text.charCodeAt(i - 1)
  return code >= 0xdc00 && code <= 0xdfff && i >= 2 ? text.slice(i - 2, i) : text[i - 1]
}
const charAt = (text: string, i: number): string | undefined =>
  i >= text.length ? undefined : String.fromCodePoint(text.codePointAt(i)!)

/**
 * MMLU-Pro's own extraction (`evaluate_from_api.py`), rule for rule: the first match of
 * `answer is \(?([A-J])\)?`; else `.*[aA]nswer:\s*([A-J])` as Python's `re.search` runs it (the first
 * line holding a match, its last match on that line); else the last standalone capital A-J in the
 * text (`\b[A-J]\b(?!.*\b[A-J]\b)`, DOTALL), found in one pass from the end instead of the
 * quadratic look-ahead. The script's random guess for a missing letter is left out: undefined is
 * "no answer". `rule` says which rule matched.
 */
export const officialMmluProLetter = (
  text: string
): { readonly letter: string; readonly rule: "answer_is" | "answer_colon" | "last_letter" } | undefined => {
  const first = /answer is \(?([A-J])\)?/.exec(text)
  if (first !== null) return { letter: first[1]!, rule: "answer_is" }
  const colon = answerColon(text)
  if (colon !== undefined) return { letter: colon, rule: "answer_colon" }
  for (let i = text.length - 1; i >= 0; i--)
    if (standaloneLetterAt(text, i, "ABCDEFGHIJ")) return { letter: text[i]!, rule: "last_letter" }
  return undefined
}

/** `re.search(r'.*[aA]nswer:\s*([A-J])', text)`: `.` stops at line ends, `\s*` does not. */
const answerColon = (text: string): string | undefined => {
  const re = /[aA]nswer:\s*([A-J])/g
  let lineOfFirst = -1
  let letter: string | undefined
  for (const m of text.matchAll(re)) {
    const line = lineStart(text, m.index!)
    if (lineOfFirst === -1) lineOfFirst = line
    // Greedy `.*` keeps the last match whose "answer:" starts on the first matching line.
    if (line !== lineOfFirst) break
    letter = m[1]
  }
  return letter
}

const lineStart = (text: string, i: number): number => text.lastIndexOf("\n", i - 1) + 1

/**
 * GPQA's published scorer (the baselines of idavidrein/gpqa): the first of `answer is \((.)\)`,
 * `Answer: \((.)\)`, `answer: \((.)\)`, `answer \((.)\)`, `\((.)\)` that matches, counted only when
 * the captured character is A-D; undefined ("no answer") otherwise.
 */
export const officialGpqaLetter = (text: string): string | undefined => {
  for (const re of [/answer is \((.)\)/, /Answer: \((.)\)/, /answer: \((.)\)/, /answer \((.)\)/, /\((.)\)/]) {
    const m = re.exec(text)
    if (m !== null && "ABCD".includes(m[1]!)) return m[1]
  }
  return undefined
}
