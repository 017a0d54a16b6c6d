import * as Effect from "effect/Effect"
import { basicVerifier, type Problem, type Trace, type Verification } from "@fastcot/core"

type Engine = { parse: (latex: string) => { isValid: boolean; isEqual: (other: unknown) => boolean | undefined; N: () => { value: unknown } } }
let engine: Promise<Engine> | undefined
/** The symbolic engine, loaded on first use (it is large). */
const loadEngine = (): Promise<Engine> =>
  (engine ??= import("@cortex-js/compute-engine").then((m) => new m.ComputeEngine() as unknown as Engine))

/**
 * Whether two LaTeX answers are the same value: symbolic equality (`\frac{\sqrt2}{2}` and
 * `\frac{1}{\sqrt2}`, `2\sqrt3` and `\sqrt{12}`), else equal numeric values within 1e-9
 * (relative). Intervals, tuples and text are left to the exact comparison: `(0,1)` is not
 * `[0,1]`, and `28` is not `0.28`.
 */
export const symbolicallyEqual = (reference: string, candidate: string): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    if (/[[\](),]|\\text|\\cup|\\cap/.test(reference + candidate)) return false
    const ce = await loadEngine()
    try {
      const a = ce.parse(reference)
      const b = ce.parse(candidate)
      if (!a.isValid || !b.isValid) return false
      if (a.isEqual(b) === true) return true
      const x = a.N().value
      const y = b.N().value
      return typeof x === "number" && typeof y === "number" && Number.isFinite(x) && Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x))
    } catch {
      return false
    }
  })

/** The basic verifier, with a symbolic second look at math answers it finds different. */
export const verifyMath = (problem: Problem, trace: Trace): Effect.Effect<Verification> =>
  Effect.flatMap(basicVerifier.verify(problem, trace), (v) =>
    v.ok || problem.domain !== "math" || problem.choices !== undefined || v.extracted === undefined || problem.answer === undefined
      ? Effect.succeed(v)
      : Effect.map(symbolicallyEqual(problem.answer, v.extracted), (same): Verification => (same ? { ok: true, extracted: v.extracted, reason: "symbolically equal" } : v))
  )
