import type { MathNode } from "./ast.js"
import { trimSentenceEnd } from "./cleanLatex.js"
import { equivalent, type EquivalenceContext, GradeTimeout } from "./equivalence.js"
import { type AnswerSource, answerCandidates } from "./extractAnswer.js"
import { parseLatex, ParseBudgetExceeded } from "./parseLatex.js"

/** The grader's name and version: it changes whenever a verdict can change. */
export const MATH_GRADER_VERSION = "fastcot-grader/v4"

export type MathVerdict = "correct" | "wrong" | "no-answer" | "timeout"

export interface MathGrade {
  readonly verdict: MathVerdict
  /** The answer taken from the reply, as written. */
  readonly extracted?: string | undefined
  readonly source?: AnswerSource | undefined
  readonly reason: string
}

export interface MathGradeOptions {
  /** The problem's text: it says whether order matters ("all solutions") and which bases count. */
  readonly question?: string | undefined
  /** The most one item may take, in milliseconds (default 500); past it the verdict is `timeout`. */
  readonly timeoutMs?: number | undefined
}

const UNORDERED =
  /\ball\b[^.?]{0,80}?\b(?:solutions?|roots?|values?|real numbers?|integers?|numbers?|pairs?|triples?|zeros?|possibilities|possible)\b|separated by commas|in any order|\bset of (?:all )?(?:solutions|values)\b/i

/** What a problem's text says about comparing its answers. */
export const contextOf = (question: string | undefined, deadline: number): EquivalenceContext => {
  const bases = new Set<number>()
  for (const m of (question ?? "").matchAll(/\bbase[\s-]*\{?\s*(\d{1,2})\b|_\{?(\d{1,2})\}?(?![\d])/gi)) {
    const b = Number(m[1] ?? m[2])
    if (b >= 2 && b <= 36 && b !== 10) bases.add(b)
  }
  return { unordered: UNORDERED.test(question ?? ""), bases, deadline }
}

const parseOrUndefined = (text: string, words = false): MathNode | undefined => {
  try {
    return parseLatex(text, { words })
  } catch (e) {
    if (e instanceof ParseBudgetExceeded) throw new GradeTimeout(e.message)
    return undefined
  }
}

/** The reference answer as written: it may come in dollars, or with a trailing full stop. */
const referenceText = (reference: string): string => trimSentenceEnd(reference.trim().replace(/^\$+|\$+$/g, ""))

/**
 * A whole number of at most 12 digits. Two of them are equivalent exactly when their values are
 * equal (the relative tolerance of 1e-12 cannot join two distinct ones, and no base applies to
 * bare digits), so they are compared without parsing: most answers of integer-answer sets.
 */
const SMALL_INTEGER = /^-?\d{1,12}$/

/**
 * Grades a math reply against the reference answer: extracts the final answer (see
 * `answerCandidates`; the first that parses is taken), parses both to expression trees and compares
 * them (see `equivalent`). Never throws: input that would take longer than the time cap ends as a
 * `timeout` verdict, a reply with no answer as `no-answer`.
 */
export const gradeMath = (reference: string, reply: string, options: MathGradeOptions = {}): MathGrade => {
  const deadline = performance.now() + (options.timeoutMs ?? 500)
  try {
    const goldText = referenceText(reference)
    const goldInteger = SMALL_INTEGER.test(goldText) ? Number(goldText) : undefined
    // The reference's tree (a boxed reference is unwrapped by the parser), made when first needed.
    let gold: { readonly tree: MathNode | undefined } | undefined
    const ctx = contextOf(options.question, deadline)
    for (const candidate of answerCandidates(reply)) {
      if (performance.now() > deadline) throw new GradeTimeout("grading ran past its time cap")
      const text = trimSentenceEnd(candidate.text)
      let ok: boolean
      if (goldInteger !== undefined && SMALL_INTEGER.test(text)) ok = Number(text) === goldInteger
      else {
        const tree = parseOrUndefined(text, candidate.plain)
        if (tree === undefined) continue
        gold ??= { tree: parseOrUndefined(goldText) }
        ok =
          gold.tree !== undefined
            ? equivalent(gold.tree, tree, ctx)
            : normalisedText(reference) === normalisedText(text)
      }
      return {
        verdict: ok ? "correct" : "wrong",
        extracted: candidate.text,
        source: candidate.source,
        reason: ok
          ? "equivalent to the reference"
          : `answer-mismatch: ${clip(candidate.text)} vs reference ${clip(reference)}`
      }
    }
    return { verdict: "no-answer", reason: "no-answer: no final answer found in the reply" }
  } catch (e) {
    if (e instanceof GradeTimeout) return { verdict: "timeout", reason: `timeout: ${e.message}` }
    throw e
  }
}

const normalisedText = (s: string) => s.replace(/\s+|\\[,;!]|\\left|\\right/g, "").toLowerCase()
const clip = (s: string) => (s.length > 120 ? `${s.slice(0, 117)}...` : s)
