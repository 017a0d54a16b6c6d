import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Verification } from "../schema/round.js"
import type { Problem } from "../schema/problem.js"
import type { Trace } from "../schema/trace.js"
import { lastBoxed } from "../util/latex.js"

/**
 * Decides whether a trace reaches the problem's reference answer. The core declares the interface
 * (stage 1 and the rewrite loop use it); the evaluator's graders implement it in full.
 */
export interface VerifierShape {
  readonly name: string
  readonly verify: (problem: Problem, trace: Trace) => Effect.Effect<Verification>
}

export class Verifier extends Context.Tag("@fastcot/core/Verifier")<Verifier, VerifierShape>() {}

/** Removes what does not change a math answer's value: spacing, styling, units in text, dollars. */
const stripLatex = (input: string): string => {
  let s = input
    .replace(/\\left|\\right|\\!|\\,|\\;|\\:|\\ /g, "")
    .replace(/\\dfrac|\\tfrac|\\cfrac/g, "\\frac")
    // a trailing unit in text after a value: 5 \text{ meters}, \frac{1}{3}\,\mathrm{cm}
    .replace(/(\S)\s*\\(?:text|mbox|mathrm)\{\s*[a-zA-Z][a-zA-Z ]*\}\s*$/, "$1")
    .replace(/\\(?:text|mathrm|textbf|mathbf|textit|mbox|operatorname)\{([^{}]*)\}/g, "$1")
    .replace(/\^\{?\\circ\}?|°/g, "")
    .replace(/\\\$|\$/g, "")
    .replace(/\{,\}/g, ",")
    .replace(/\s+/g, "")
    .replace(/[.。]$/, "")
    .replace(/^([a-zA-Z]|\\theta)=/, "")
  // thousands separators, as many groups as there are: 7,425,000
  for (let prev = ""; prev !== s; ) {
    prev = s
    s = s.replace(/^(-?\d+),(\d{3})(?=(?:,\d{3})*(?:\.\d+)?$)/, "$1$2")
  }
  // parentheses around one value: (113)
  const paren = /^\((.*)\)$/.exec(s)
  if (paren !== null && !paren[1]!.includes(",") && balanced(paren[1]!)) s = paren[1]!
  return s
}

const balanced = (s: string): boolean => {
  let depth = 0
  for (const c of s) {
    if (c === "(" || c === "[" || c === "{") depth++
    else if (c === ")" || c === "]" || c === "}") depth--
    if (depth < 0) return false
  }
  return depth === 0
}

/** A set's elements, sorted, when the answer is written as one: \{1, 2\}. */
const asSet = (s: string): string | undefined => {
  const m = /^\\\{(.*)\\\}$/.exec(s)
  return m === null ? undefined : m[1]!.split(",").map((x) => x.trim()).sort().join(",")
}

/**
 * The final answer of a math solution: the last \boxed{} (nested braces kept), else the last
 * "final answer is …", "the answer is …" or "Answer: …" (Minerva's and common phrasings).
 */
export const extractMathAnswer = (text: string): string | undefined => {
  const boxed = lastBoxed(text)
  if (boxed !== undefined) return boxed
  const patterns = [
    /final answer is[:\s]*(?:\$([^$]+)\$|([^\n]+?))\s*(?:\.\s|\.$|\n|$|I hope)/gi,
    /answer is[:\s]*(?:\$([^$]+)\$|([^\n]+?))\s*(?:\.\s|\.$|\n|$)/gi,
    /^\s*\**answer\**:\s*(?:\$([^$]+)\$|([^\n]+?))\s*$/gim
  ]
  for (const re of patterns) {
    let last: string | undefined
    for (const m of text.matchAll(re)) last = (m[1] ?? m[2])?.trim()
    if (last !== undefined && last !== "") return last
  }
  // Last resort: the result of the last inline formula of the last paragraph ($180 + 24 = 204$).
  const paragraph = text.trim().split(/\n\s*\n/).pop() ?? ""
  const formulas = [...paragraph.matchAll(/\$([^$]+)\$/g)].map((m) => m[1]!)
  const lastFormula = formulas[formulas.length - 1]
  if (lastFormula === undefined) return undefined
  const rhs = lastFormula.split("=").pop()!.trim()
  return rhs === "" ? undefined : rhs
}

/** A number from `3`, `-2.5`, `\frac{3}{4}`, `3/4` or `50\%` (as 50), else undefined. */
const asNumber = (s: string): number | undefined => {
  const t = s.replace(/\\%|%/g, "")
  const frac = /^(-?)\\frac\{?(-?\d+(?:\.\d+)?)\}?\{?(-?\d+(?:\.\d+)?)\}?$/.exec(t) ?? /^(-?)(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(t)
  if (frac !== null) {
    const value = Number(frac[2]) / Number(frac[3])
    return frac[1] === "-" ? -value : value
  }
  return /^-?\d+(?:\.\d+)?$/.test(t) ? Number(t) : undefined
}

const LETTER = /(?:\\boxed\{\s*\(?([A-Z])\)?\s*\}|[Aa]nswer(?: is)?:?\s*\(?([A-Z])\)?(?![a-zA-Z])|^\(?([A-Z])\)?\.?$)/g

/** The chosen letter: the last boxed letter, else the last "answer is X"; "no answer" otherwise. */
export const extractLetter = (text: string): string | undefined => {
  let letter: string | undefined
  for (const m of text.trim().matchAll(LETTER)) letter = m[1] ?? m[2] ?? m[3]
  return letter
}

/**
 * A basic verifier: multiple choice by letter; math by the last `\boxed{}` compared after LaTeX
 * normalisation, then numerically; code cannot be verified without the evaluator's sandbox and is
 * reported as such.
 */
export const basicVerifier: VerifierShape = {
  name: "basic/v2",
  verify: (problem, trace) =>
    Effect.sync((): Verification => {
      const text = `${trace.reasoning}\n\n${trace.finalAnswer ?? ""}`
      if (problem.domain === "code") {
        return { ok: false, reason: "unverifiable: code needs the evaluator's sandbox, which this version does not have" }
      }
      if (problem.answer === undefined || problem.answer.trim() === "") {
        return { ok: false, reason: "no-reference: the problem has no reference answer" }
      }
      if (problem.choices !== undefined) {
        const letter = extractLetter(trace.finalAnswer ?? "") ?? extractLetter(text)
        if (letter === undefined) return { ok: false, reason: "no-answer: no chosen letter found" }
        return { ok: letter === problem.answer.trim(), extracted: letter, reason: letter === problem.answer.trim() ? "letter matches" : `answer-mismatch: chose ${letter}, reference ${problem.answer}` }
      }
      const boxed = lastBoxed(trace.finalAnswer ?? "") ?? extractMathAnswer(text)
      if (boxed === undefined) return { ok: false, reason: "no-answer: no \\boxed{} or stated final answer found" }
      const a = stripLatex(boxed)
      const b = stripLatex(problem.answer)
      if (a === b) return { ok: true, extracted: boxed, reason: "matches after normalisation" }
      const setA = asSet(a)
      if (setA !== undefined && setA === asSet(b)) return { ok: true, extracted: boxed, reason: "the same set" }
      const x = asNumber(a)
      const y = asNumber(b)
      if (x !== undefined && y !== undefined && Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y))) {
        return { ok: true, extracted: boxed, reason: "numerically equal" }
      }
      return { ok: false, extracted: boxed, reason: `answer-mismatch: ${boxed} vs reference ${problem.answer}` }
    })
}

export const BasicVerifierLive = Layer.succeed(Verifier, basicVerifier)
