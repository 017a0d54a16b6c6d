import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import { Problem } from "../schema/problem.js"
import { Trace } from "../schema/trace.js"
import { extractLetter } from "./choiceAnswer.js"
import { basicVerifier } from "./Verifier.js"

const math = (answer: string) =>
  new Problem({
    id: "p_0000000000000000" as Problem["id"],
    domain: "math",
    question: "q",
    answer,
    source: "",
    metadata: {}
  })
const mc = (answer: string) =>
  new Problem({
    id: "p_0000000000000000" as Problem["id"],
    domain: "science",
    question: "q",
    answer,
    choices: ["a", "b", "c", "d"],
    source: "",
    metadata: {}
  })
const check = (p: Problem, text: string) =>
  Effect.runSync(basicVerifier.verify(p, new Trace({ reasoning: text, origin: "teacher" })))

describe("the basic verifier", () => {
  it.each([
    ["\\frac{1}{2}", "so \\boxed{\\dfrac{1}{2}}"],
    ["\\frac{1}{2}", "\\boxed{0.5}"],
    ["3", "\\boxed{x = 3}"],
    ["1,000", "\\boxed{1000}"],
    ["90^\\circ", "\\boxed{90}"],
    ["\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3,\\frac{\\pi}{2})}"],
    ["\\text{(C)}", "\\boxed{(C)}"],
    ["-\\frac{3}{4}", "\\boxed{-3/4}"]
  ])("accepts %s from %s", (reference, text) => {
    expect(check(math(reference), text).ok).toBe(true)
  })

  it.each([
    ["[0,1]", "\\boxed{(0,1)}"],
    ["0.28", "\\boxed{28}"],
    ["5", "\\boxed{6}"],
    ["\\frac{1}{3}", "\\boxed{0.33}"]
  ])("rejects %s against %s (no lenient guessing)", (reference, text) => {
    expect(check(math(reference), text)).toMatchObject({ ok: false, reason: expect.stringMatching(/^answer-mismatch/) })
  })

  it("reports no answer rather than guessing", () => {
    expect(check(math("5"), "I think it is five")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^no-answer/)
    })
    expect(check(mc("B"), "Both seem plausible.")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^no-answer/)
    })
  })

  it("reads the chosen letter: the last boxed letter, else the last 'answer is'", () => {
    expect(extractLetter("A looks wrong; the answer is (C). Final: \\boxed{B}")).toBe("B")
    expect(extractLetter("So the answer is D.")).toBe("D")
    expect(check(mc("B"), "Therefore \\boxed{B}").ok).toBe(true)
    expect(check(mc("B"), "Therefore \\boxed{C}")).toMatchObject({ ok: false, extracted: "C" })
  })
})
