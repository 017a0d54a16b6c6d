import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { basicVerifier, Verifier, type VerifierShape } from "@fastcot/core"
import { extractCode, runTests } from "./codeTests.js"
import { Sandbox, SandboxLive, type SandboxOptions, type SandboxShape } from "./sandbox.js"

/** LiveCodeBench keeps `func_name` inside its `metadata` JSON string; imports may lift it. */
const functionName = (metadata: Readonly<Record<string, unknown>>): string | undefined => {
  if (typeof metadata["func_name"] === "string") return metadata["func_name"]
  if (typeof metadata["metadata"] === "string") {
    try {
      const inner = JSON.parse(metadata["metadata"]) as { func_name?: unknown }
      return typeof inner.func_name === "string" ? inner.func_name : undefined
    } catch {
      return undefined
    }
  }
  return undefined
}

/**
 * The evaluator's verifier for the pipeline: code by running the problem's tests in the sandbox;
 * multiple choice and math as the core's basic verifier grades them.
 */
export const makeVerifier = Effect.gen(function* () {
  const sandbox = yield* Sandbox
  const verify: VerifierShape["verify"] = (problem, trace) => {
    if (problem.domain !== "code") return basicVerifier.verify(problem, trace)
    const tests = problem.tests ?? []
    if (tests.length === 0)
      return Effect.succeed({
        ok: false,
        failure: "no-reference",
        reason: "no-reference: the code problem has no tests"
      })
    const code = extractCode(`${trace.reasoning}\n\n${trace.finalAnswer ?? ""}`)
    if (code === undefined)
      return Effect.succeed({ ok: false, failure: "no-answer", reason: "no-answer: no fenced code block found" })
    const funcName = functionName(problem.metadata)
    return runTests(code, tests, funcName).pipe(
      Effect.provideService(Sandbox, sandbox),
      Effect.map((outcome) =>
        outcome.passed
          ? {
              ok: true,
              extracted: code.slice(0, 200),
              reason: `all ${outcome.ran} tests pass (sandbox: ${sandbox.isolation})`
            }
          : {
              ok: false,
              failure: "tests-failed" as const,
              extracted: code.slice(0, 200),
              reason: `tests-failed: ${outcome.failure!.reason}`
            }
      )
    )
  }
  return { name: `${basicVerifier.name} (code sandbox: ${sandbox.isolation})`, verify } satisfies VerifierShape
})

export const EvaluatorVerifierLive = (options: SandboxOptions = {}): Layer.Layer<Verifier> =>
  Layer.effect(Verifier, makeVerifier).pipe(Layer.provide(SandboxLive(options)))

/** The verifier over a sandbox already made (so a caller that also reports it probes once). */
export const verifierFor = (sandbox: SandboxShape): Layer.Layer<Verifier> =>
  Layer.effect(Verifier, makeVerifier).pipe(Layer.provide(Layer.succeed(Sandbox, sandbox)))
