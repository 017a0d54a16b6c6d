import * as Effect from "effect/Effect"
import type { TestCase } from "@fastcot/core"
import { type RunResult, Sandbox } from "./sandbox.js"

/** The program to grade: the last fenced code block (```python preferred), as LiveCodeBench does. */
export const extractCode = (text: string): string | undefined => {
  const blocks = [...text.matchAll(/```([\w+-]*)[^\n]*\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1]!.toLowerCase(),
    code: m[2]!
  }))
  const python = blocks.filter((b) => b.lang === "python" || b.lang === "py" || b.lang === "python3")
  return (python[python.length - 1] ?? blocks[blocks.length - 1])?.code
}

const asDecimal = (token: string): number | undefined =>
  /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(token) ? Number(token) : undefined

/** stdin/stdout comparison: line by line after stripping, tokens equal as decimals allowed. */
export const sameOutput = (actual: string, expected: string): boolean => {
  const lines = (s: string) => {
    const out = s.split("\n").map((l) => l.trim())
    while (out.length > 0 && out[out.length - 1] === "") out.pop()
    return out
  }
  const a = lines(actual)
  const b = lines(expected)
  if (a.length !== b.length) return false
  return a.every((line, i) => {
    if (line === b[i]) return true
    const x = line.split(/\s+/)
    const y = b[i]!.split(/\s+/)
    return (
      x.length === y.length &&
      x.every((t, j) => t === y[j] || (asDecimal(t) !== undefined && asDecimal(t) === asDecimal(y[j]!)))
    )
  })
}

/**
 * Calls Solution().<func>(*args) with LiveCodeBench's imports (or a module-level <func>, as APPS and
 * TACO solutions define it); one JSON argument per input line; a tuple result is a list.
 */
const harness = (func: string) => `import sys, json
sys.setrecursionlimit(1 << 16)
_preamble = "from typing import *\\nfrom collections import *\\nfrom functools import *\\nfrom itertools import *\\nfrom heapq import *\\nfrom bisect import *\\nfrom math import *\\nimport collections, heapq, math, itertools, functools, bisect, string, re\\n"
_g = {"__name__": "solution"}
exec(compile(_preamble + open("solution.py").read(), "solution.py", "exec"), _g)
_args = [json.loads(line) for line in sys.stdin.read().split("\\n") if line.strip()]
_name = ${JSON.stringify(func)}
_f = getattr(_g["Solution"](), _name) if "Solution" in _g and hasattr(_g["Solution"], _name) else _g[_name]
_r = _f(*_args)
print(json.dumps(list(_r) if isinstance(_r, tuple) else _r))
`

export interface TestOutcome {
  readonly passed: boolean
  /** Index of the first failing test, and why. */
  readonly failure?: { readonly index: number; readonly reason: string; readonly run?: RunResult } | undefined
  readonly ran: number
}

/**
 * Runs a program against a problem's tests in the sandbox, stopping at the first failure: a
 * solution counts only if every test passes.
 */
export const runTests = (code: string, tests: ReadonlyArray<TestCase>, funcName?: string) =>
  Effect.gen(function* () {
    const sandbox = yield* Sandbox
    for (const [index, test] of tests.entries()) {
      const functional = test.testtype === "functional"
      if (functional && funcName === undefined)
        return {
          passed: false,
          ran: index,
          failure: { index, reason: "a functional test needs the function name (metadata func_name)" }
        } satisfies TestOutcome
      const run = functional
        ? yield* sandbox.runPython({ "solution.py": code, "harness.py": harness(funcName!) }, "harness.py", test.input)
        : yield* sandbox.runPython({ "solution.py": code }, "solution.py", test.input)
      if (run.status !== "ok")
        return {
          passed: false,
          ran: index + 1,
          failure: { index, reason: `${run.status}: ${run.stderr.trim().split("\n").pop() ?? ""}`, run }
        } satisfies TestOutcome
      let same: boolean
      if (functional) {
        try {
          const actual = JSON.stringify(JSON.parse(run.stdout))
          const expected = JSON.parse(test.output) as unknown
          same =
            actual === JSON.stringify(expected) ||
            (test.unwrapOutput === true &&
              Array.isArray(expected) &&
              expected.length === 1 &&
              actual === JSON.stringify(expected[0]))
        } catch {
          same = false
        }
      } else same = sameOutput(run.stdout, test.output)
      if (!same)
        return {
          passed: false,
          ran: index + 1,
          failure: { index, reason: `wrong output on test ${index + 1}`, run }
        } satisfies TestOutcome
    }
    return { passed: true, ran: tests.length } satisfies TestOutcome
  })
