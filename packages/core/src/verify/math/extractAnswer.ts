import { lastBoxed } from "../../util/latex.js"

/** Where an extracted answer came from, in the order they are tried. */
export type AnswerSource = "minerva" | "boxed" | "answer-phrase" | "math" | "number"

export interface AnswerCandidate {
  readonly text: string
  readonly source: AnswerSource
  /** Written as plain text, not LaTeX: runs of letters are words ("12 inches"), not products. */
  readonly plain: boolean
}

/**
 * The parts of a reply to search, most final first: what follows `</think>` (R1-style replies)
 * or the `<|begin_of_solution|>` section (Sky-T1, OpenThoughts), then the whole reply.
 */
export const replySections = (reply: string): Array<string> => {
  const sections: Array<string> = []
  const close = reply.lastIndexOf("</think>")
  if (close >= 0) sections.push(reply.slice(close + "</think>".length))
  const solution = reply.lastIndexOf("<|begin_of_solution|>")
  if (solution >= 0) {
    const rest = reply.slice(solution + "<|begin_of_solution|>".length)
    const end = rest.indexOf("<|end_of_solution|>")
    sections.push(end >= 0 ? rest.slice(0, end) : rest)
  }
  sections.push(reply)
  return sections.filter((s, i) => s.trim() !== "" && sections.indexOf(s) === i)
}

/**
 * Candidate final answers of a math reply, in the order a grader should try them, by tiers:
 * Minerva's "final answer is $X$. I hope"; then the last `\boxed{}`/`\fbox{}` (with boxes joined
 * by "and" or commas around it) or "final answer is …", whichever comes last; then "Answer: …"
 * and "answer is …"; then display and inline math in all four delimiters (`$…$`, `$$…$$`,
 * `\(…\)`, `\[…\]`) and numbers in plain text, from the last. Each tier searches the sections of
 * `replySections` in turn (what follows `</think>` first). Linear in the reply's length.
 */
export const answerCandidates = (reply: string): Array<AnswerCandidate> => {
  const out: Array<AnswerCandidate> = []
  const seen = new Set<string>()
  const push = (c: AnswerCandidate | undefined) => {
    const t = c?.text.trim()
    if (c === undefined || t === undefined || t === "" || seen.has(`${c.source}\u0000${t}`)) return
    seen.add(`${c.source}\u0000${t}`)
    out.push({ ...c, text: t })
  }
  const sections = replySections(reply)
  for (const section of sections) {
    const m = minervaAnswer(section)
    if (m !== undefined) push({ text: m, source: "minerva", plain: false })
  }
  for (const section of sections)
    byPositionFromLast([...boxedAnswers(section), ...answerPhrases(section, FINAL_ANSWER_IS)]).forEach(push)
  for (const section of sections) byPositionFromLast(answerPhrases(section, ANSWER_PHRASE)).forEach(push)
  for (const section of sections)
    byPositionFromLast([...mathSegmentsFromLast(section), ...plainNumbers(section)]).forEach(push)
  return out
}

interface Located extends AnswerCandidate {
  /** Where the candidate ends in its section: the later, the more final. */
  readonly end: number
}

const byPositionFromLast = (found: ReadonlyArray<Located>): Array<AnswerCandidate> =>
  [...found].sort((a, b) => b.end - a.end).map(({ text, source, plain }) => ({ text, source, plain }))

/**
 * Whether the reply was cut inside its reasoning: it opens `<think>` or `<|begin_of_thought|>` and
 * never closes it. Such a reply has no final answer, whatever numbers its thinking mentions.
 */
export const unfinishedReasoning = (reply: string): boolean =>
  (reply.includes("<think>") && !reply.includes("</think>")) ||
  (reply.includes("<|begin_of_thought|>") && !reply.includes("<|end_of_thought|>"))

/** Minerva's format: "Final Answer: The final answer is $X$. I hope it is correct." */
const minervaAnswer = (text: string): string | undefined => {
  const at = text.lastIndexOf("final answer is $")
  if (at < 0) return undefined
  const start = at + "final answer is $".length
  const end = text.indexOf("$. I hope", start)
  return end < 0 ? undefined : text.slice(start, end)
}

/** The last box, joined with the boxes just before it when only "and", "or" or commas lie between. */
const boxedAnswers = (text: string): Array<Located> => {
  const last = lastBoxed(text)
  if (last === undefined) return []
  const lastAt = Math.max(text.lastIndexOf("\\boxed"), text.lastIndexOf("\\fbox"))
  const boxes = [last]
  let end = lastAt
  for (let guard = 0; guard < 8; guard++) {
    const before = text.slice(0, end)
    const prev = Math.max(before.lastIndexOf("\\boxed"), before.lastIndexOf("\\fbox"))
    if (prev < 0) break
    const inner = lastBoxed(before)
    if (inner === undefined) break
    const closeAt = before.indexOf(inner, prev) + inner.length + 1
    if (!joinsAnswers(before.slice(closeAt))) break
    boxes.unshift(inner)
    end = prev
  }
  return [{ text: boxes.join(", "), source: "boxed", plain: false, end: lastAt + last.length }]
}

/** "final answer is", "final answer to the problem is": ranked with the boxed answer. */
/**
 * Whether the text between two boxes joins two parts of one answer: "and", "or" or a comma, with
 * spacing, math delimiters, a label (`\text{ for part (a) and }`) or the next unknown's name
 * (`y_2 =`) around it.
 */
const joinsAnswers = (between: string): boolean => {
  const t = between
    .replace(/\\[()[\]]|\$/g, " ")
    .replace(/\\(?:quad|qquad)(?![a-zA-Z])|\\[,;:! ]|~/g, " ")
    .replace(/\\text\{([^{}]*)\}/g, " $1 ")
    .replace(/(?:^|\s)(?:for|in)\s+part\s*\(?[a-z0-9]\)?/gi, " ")
    .replace(/[A-Za-z](?:_\{?\w+\}?)?\s*=\s*$/, " ")
  return /^\s*(?:,|;|,?\s*and|,?\s*or)\s*$/i.test(t)
}

const FINAL_ANSWER_IS = /final answer[^.\n$]{0,100}?\bis\b\s*:?/gi
/** "Answer:", "**Answer:**", "the answer is", "Answer \( 9 \)". */
const ANSWER_PHRASE =
  /\banswer\b(?:[^.\n$\\]{0,50}?\b(?:is|are|equals)\b|\s*(?:\*\*)?\s*[:=]|(?=\s*(?:\*\*)?\s*(?:\\\(|\\\[|\$)))\s*(?:\*\*)?\s*:?/gi

/** What follows each phrase, up to the sentence's end. */
const answerPhrases = (text: string, phrase: RegExp): Array<Located> => {
  const found: Array<Located> = []
  for (const m of text.matchAll(phrase)) {
    const from = m.index! + m[0].length
    const answer = answerAfterPhrase(text.slice(from, from + 400))
    if (answer !== undefined)
      found.push({ text: answer.text, source: "answer-phrase", plain: answer.plain, end: from + answer.length })
  }
  return found
}

/**
 * The answer at the start of `rest`: its first math segment(s); else a short plain answer up to
 * the sentence's end ("5 apples", "x = 5", "Evelyn"); else the number it starts with. Nothing when
 * the phrase is followed by prose ("the final answer is clearly highlighted").
 */
const answerAfterPhrase = (
  rest: string
): { readonly text: string; readonly plain: boolean; readonly length: number } | undefined => {
  const trimmed = rest.replace(/^[\s*:}]+/, "")
  const skipped = rest.length - trimmed.length
  const segments = mathSegments(trimmed.slice(0, 400))
  const first = segments[0]
  if (first !== undefined && first.start <= 3) {
    // "$1$ and $5$": segments joined by "and", "or" or commas.
    let text = first.content
    let end = first.end
    for (const next of segments.slice(1)) {
      if (!/^\s*(?:,|,?\s*and|,?\s*or)\s*$/.test(trimmed.slice(end, next.start))) break
      text += `, ${next.content}`
      end = next.end
    }
    return { text, plain: false, length: skipped + end }
  }
  const line = trimmed.split(/\n/)[0] ?? ""
  const sentence = (/^(.*?)(?:\.(?=\s|$)|$)/.exec(line)?.[1] ?? line).replace(/\*\*/g, "").trim()
  const bareFraction = /^-?\\frac\{\s*-?\d+\s*\}\{\s*-?\d+\s*\}/.exec(sentence)
  if (bareFraction !== null) return { text: bareFraction[0], plain: false, length: skipped + bareFraction[0].length }
  if (
    sentence.length > 0 &&
    sentence.length <= 40 &&
    /^[-+(]?(?:\d|\.\d|[a-zA-Z]\s*=|[a-zA-Z](?![a-zA-Z]))/.test(sentence) &&
    /[\d=+\-*/^]/.test(sentence) &&
    !/\\/.test(sentence)
  ) {
    return { text: sentence, plain: true, length: skipped + sentence.length }
  }
  const leadingNumber = /^-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?(?![\w])/.exec(sentence)
  if (leadingNumber !== null) return { text: leadingNumber[0], plain: true, length: skipped + leadingNumber[0].length }
  // A one-word answer ("Evelyn", "(C)"), not a judgement ("correct").
  const word = /^\(?[A-Za-z][\w'-]*\)?$/.exec(sentence)
  if (word !== null && !NOT_ANSWERS.test(sentence))
    return { text: sentence, plain: true, length: skipped + sentence.length }
  return undefined
}

const NOT_ANSWERS =
  /^(?:correct|incorrect|wrong|right|true|false|yes|no|not|given|below|above|that|this|clear|obvious|unknown|undefined|none|simply|therefore|thus|hence|so|as|the|a|an|to|in|of|for|is|are|clearly)$/i

interface Segment {
  readonly content: string
  readonly start: number
  readonly end: number
}

/** Every math segment in order: `$$…$$`, `\[…\]`, `$…$` (one line), `\(…\)`. One pass, linear. */
export const mathSegments = (text: string): Array<Segment> => {
  const out: Array<Segment> = []
  let i = 0
  while (i < text.length) {
    const c = text[i]
    if (c === "\\" && (text[i + 1] === "[" || text[i + 1] === "(")) {
      const close = text[i + 1] === "[" ? "\\]" : "\\)"
      const end = text.indexOf(close, i + 2)
      if (end < 0) break
      out.push({ content: text.slice(i + 2, end), start: i, end: end + 2 })
      i = end + 2
    } else if (c === "\\") {
      i += 2
    } else if (c === "$" && text[i + 1] === "$") {
      const end = text.indexOf("$$", i + 2)
      if (end < 0) break
      out.push({ content: text.slice(i + 2, end), start: i, end: end + 2 })
      i = end + 2
    } else if (c === "$") {
      let j = i + 1
      while (j < text.length && text[j] !== "$" && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1
      if (text[j] === "$" && j > i + 1) {
        out.push({ content: text.slice(i + 1, j), start: i, end: j + 1 })
        i = j + 1
      } else i = j
    } else i++
  }
  return out
}

/** Math segments, each joined with those just before it by "and", "or" or commas. */
const mathSegmentsFromLast = (text: string): Array<Located> => {
  const segs = mathSegments(text)
  const out: Array<Located> = []
  for (let k = segs.length - 1; k >= 0 && out.length < 8; k--) {
    let content = segs[k]!.content
    let j = k
    while (j > 0 && /^\s*(?:,|,?\s*and|,?\s*or)\s*$/.test(text.slice(segs[j - 1]!.end, segs[j]!.start))) {
      j--
      content = `${segs[j]!.content}, ${content}`
    }
    out.push({ text: content, source: "math", plain: false, end: segs[k]!.end })
  }
  return out
}

/**
 * A number as plain text writes it, standing free (after a space, `=`, a currency sign or the
 * start: not a coordinate inside `(2,1)`): `\frac{a}{b}` written bare, `2/3`, thousands separated
 * by commas or spaces (`1,000.99`, `1 000`), a decimal comma (`2,74`, not followed by three
 * digits), `.5`, a percent sign.
 */
const PLAIN_NUMBER =
  /-?\\frac\{\s*-?\d+\s*\}\{\s*-?\d+\s*\}|(?<=^|[\s=$€£*])-?\d+\/\d+(?![\w/]|[.,]\d)|(?<=^|[\s=$€£*])-?(?:[1-9]\d{0,2}(?:(?:,\d{3})+|(?: \d{3})+)(?:\.\d+)?|\d+,\d{1,2}(?![\d,])|\d+(?:\.\d+)?|\.\d+)%?(?!\d|[.,]\d)/g

/** Plain-text spelling to the parser's: thousands separators dropped, a decimal comma made a point. */
const plainNumberAsLatex = (n: string): string => {
  if (n.includes("\\") || n.includes("/")) return n
  if (/^-?\d+,\d{1,2}%?$/.test(n)) return n.replace(",", ".")
  return n.replace(/[ ,](?=\d{3})/g, "")
}

/** Numbers in plain text, outside math: `1,000.99`, `-3`, `.5`, `45%` (the last few). */
const plainNumbers = (text: string): Array<Located> => {
  const out: Array<Located> = []
  const segs = mathSegments(text)
  let from = 0
  const scan = (a: number, b: number) => {
    for (const m of text.slice(a, b).matchAll(PLAIN_NUMBER)) {
      out.push({
        text: plainNumberAsLatex(m[0]),
        source: "number",
        plain: !m[0].includes("\\"),
        end: a + m.index! + m[0].length
      })
    }
  }
  for (const seg of segs) {
    scan(from, seg.start)
    from = seg.end
  }
  scan(from, text.length)
  return out.slice(-8)
}
