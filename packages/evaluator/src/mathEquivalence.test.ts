import * as Effect from "effect/Effect"
import { Problem, Trace } from "@fastcot/core"
import { describe, expect, it } from "vitest"
import { symbolicallyEqual, verifyMath } from "./mathEquivalence.js"

const same = (a: string, b: string) => Effect.runPromise(symbolicallyEqual(a, b))

describe("symbolic math equivalence", () => {
  it.each([
    ["\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"],
    ["2\\sqrt{3}", "\\sqrt{12}"],
    ["\\frac{\\pi}{2}", "\\pi/2"],
    ["10^{-3}", "0.001"],
    ["\\frac{3}{4}", "0.75"]
  ])("%s equals %s", async (a, b) => expect(await same(a, b)).toBe(true))

  it.each([
    ["(0,1)", "[0,1]"],
    ["28", "0.28"],
    ["3", "3.0001"],
    ["\\frac{1}{3}", "0.33"],
    ["\\text{Evelyn}", "\\text{Bob}"]
  ])("%s differs from %s", async (a, b) => expect(await same(a, b)).toBe(false))

  it("gives the verifier a second look only at math answers the exact comparison rejects", async () => {
    const problem = new Problem({ id: "p_0000000000000000" as Problem["id"], domain: "math", question: "q", answer: "\\frac{\\sqrt{2}}{2}", source: "", metadata: {} })
    const v = await Effect.runPromise(verifyMath(problem, new Trace({ reasoning: "so \\boxed{\\frac{1}{\\sqrt{2}}}", origin: "teacher" })))
    expect(v).toMatchObject({ ok: true, reason: "symbolically equal" })
    const wrong = await Effect.runPromise(verifyMath(problem, new Trace({ reasoning: "so \\boxed{\\sqrt{2}}", origin: "teacher" })))
    expect(wrong.ok).toBe(false)
  })
})
