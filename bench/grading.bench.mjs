// Grading speed: all of MATH-500's reference solutions through the math grader, and a generated
// LiveCodeBench-style sample's reference solutions through the code sandbox, serially (the peer)
// and in parallel; prints how many cores the sandbox kept busy.
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { Problem, Trace } from "@fastcot/core"
import { makeSandbox, runTests, Sandbox, verifyMath } from "@fastcot/evaluator"

const MATH500 = join(import.meta.dirname, "..", "..", "shared", "data", "math500", "test.jsonl")
const rows = readFileSync(MATH500, "utf8").trim().split("\n").map((l) => JSON.parse(l))
let t0 = performance.now()
let ok = 0
for (const r of rows) {
  const p = new Problem({ id: "p_0000000000000000", domain: "math", question: r.problem, answer: r.answer, source: "", metadata: {} })
  if ((await Effect.runPromise(verifyMath(p, new Trace({ reasoning: r.solution, origin: "imported" })))).ok) ok++
}
const mathSeconds = (performance.now() - t0) / 1000
console.log(`grading: MATH-500 reference solutions ${ok}/${rows.length} correct in ${mathSeconds.toFixed(2)} s (${(rows.length / mathSeconds).toFixed(0)} answers/s)`)

// A LiveCodeBench-style sample: 24 stdin problems with 4 tests each, solved by reference programs.
const problems = Array.from({ length: 24 }, (_, i) => ({
  code: `import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(sum(x * ${i + 1} for x in nums))\n`,
  tests: Array.from({ length: 4 }, (_, t) => ({ input: `${t} ${t + 1} ${i}\n`, output: `${(t + t + 1 + i) * (i + 1)}\n`, testtype: "stdin" }))
}))
const base = makeSandbox()
let busyMs = 0
const counting = { ...base, runPython: (...args) => Effect.tap(base.runPython(...args), (r) => Effect.sync(() => (busyMs += r.wallMs))) }
const grade = (concurrency) =>
  Effect.runPromise(
    Effect.forEach(problems, (p) => runTests(p.code, p.tests), { concurrency }).pipe(Effect.provide(Layer.succeed(Sandbox, counting)))
  )
for (const [label, concurrency] of [["serial (peer)", 1], ["parallel", availableParallelism() * 2]]) {
  busyMs = 0
  t0 = performance.now()
  const outcomes = await grade(concurrency)
  const seconds = (performance.now() - t0) / 1000
  const passed = outcomes.filter((o) => o.passed).length
  console.log(`  code sample (${base.isolation}) ${label.padEnd(14)} ${passed}/${problems.length} pass, ${problems.length * 4} runs in ${seconds.toFixed(2)} s; sandbox kept ${(busyMs / 1000 / seconds).toFixed(2)} of ${availableParallelism()} cores busy`)
  if (label === "serial (peer)") var serial = seconds
  else console.log(`  parallel / serial speed-up: ${(serial / seconds).toFixed(2)}`)
}
