import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Verification } from "../schema/round.js"
import type { Problem } from "../schema/problem.js"
import type { Trace } from "../schema/trace.js"
import { extractLetter } from "./choiceAnswer.js"
import { answerCandidates } from "./math/extractAnswer.js"
import { gradeMath, MATH_GRADER_VERSION } from "./math/gradeMath.js"

/**
 * Decides whether a trace reaches the problem's reference answer. The core declares the interface
 * (stage 1 and the rewrite loop use it); the evaluator's graders implement it in full.
 */
export interface VerifierShape {
  readonly name: string
  readonly verify: (problem: Problem, trace: Trace) => Effect.Effect<Verification>
}

export class Verifier extends Context.Tag("@fastcot/core/Verifier")<Verifier, VerifierShape>() {}

/** The answer a trace states: its chosen letter, or its final math answer as written. */
export const statedAnswer = (problem: Problem, text: string): string | undefined =>
  problem.choices !== undefined ? extractLetter(text) : answerCandidates(text)[0]?.text

/**
 * The verifier every stage uses unless a sandbox is given: multiple choice by the chosen letter
 * (`extractLetter`); math by `gradeMath` (the final answer extracted and compared with the reference
 * on parsed expression trees); code cannot be verified without the evaluator's sandbox and is
 * reported as such. A math reply that takes past the grader's time cap is not verified (`timeout:`).
 */
export const basicVerifier: VerifierShape = {
  name: MATH_GRADER_VERSION,
  verify: (problem, trace) =>
    Effect.sync((): Verification => {
      const text = `${trace.reasoning}\n\n${trace.finalAnswer ?? ""}`
      if (problem.domain === "code") {
        return {
          ok: false,
          failure: "unverifiable",
          reason: "unverifiable: code needs the evaluator's sandbox, which this version does not have"
        }
      }
      if (problem.answer === undefined || problem.answer.trim() === "") {
        return { ok: false, failure: "no-reference", reason: "no-reference: the problem has no reference answer" }
      }
      if (problem.choices !== undefined) {
        const letter = extractLetter(trace.finalAnswer ?? "") ?? extractLetter(text)
        if (letter === undefined)
          return { ok: false, failure: "no-answer", reason: "no-answer: no chosen letter found" }
        return {
          ok: letter === problem.answer.trim(),
          failure: letter === problem.answer.trim() ? undefined : "answer-mismatch",
          extracted: letter,
          reason:
            letter === problem.answer.trim()
              ? "letter matches"
              : `answer-mismatch: chose ${letter}, reference ${problem.answer}`
        }
      }
      // The trace's own final answer (a long-to-short rewrite states it apart) is tried first.
      const fromFinal =
        trace.finalAnswer !== undefined
          ? gradeMath(problem.answer, trace.finalAnswer, { question: problem.question })
          : undefined
      const grade =
        fromFinal !== undefined && fromFinal.verdict !== "no-answer"
          ? fromFinal
          : gradeMath(problem.answer, text, { question: problem.question })
      switch (grade.verdict) {
        case "correct":
          return { ok: true, extracted: grade.extracted, reason: "equivalent to the reference" }
        case "wrong":
          return {
            ok: false,
            failure: "answer-mismatch",
            extracted: grade.extracted,
            reason: `answer-mismatch: ${clip(grade.extracted ?? "")} vs reference ${clip(problem.answer)}`
          }
        case "timeout":
          return { ok: false, failure: "timeout", reason: "timeout: grading this answer ran past its time cap" }
        case "no-answer":
          return { ok: false, failure: "no-answer", reason: "no-answer: no \\boxed{} or stated final answer found" }
      }
    })
}

const clip = (s: string) => (s.length > 120 ? `${s.slice(0, 117)}...` : s)

export const BasicVerifierLive = Layer.succeed(Verifier, basicVerifier)
