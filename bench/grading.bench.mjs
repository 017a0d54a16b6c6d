// Grading speed: the 3,514 real model outputs of ../shared/data/graded-outputs through the math
// grader, one process, with the slowest item; against Math-Verify's rate measured on these machines
// (the data's README: 7,245 rows in 429 s of one process, 59 ms a row); then a generated
// LiveCodeBench-style sample's reference solutions through the code sandbox, serially (the peer)
// and in parallel, with how many cores the sandbox kept busy.
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { join } from "node:path"
import { gunzipSync } from "node:zlib"
import { Effect, Layer } from "effect"
import { gradeMath } from "@fastcot/core"
import { makeSandbox, runTests, Sandbox } from "@fastcot/evaluator"

const OUTPUTS = join(import.meta.dirname, "..", "..", "shared", "data", "graded-outputs", "math-real.jsonl.gz")
/** Math-Verify, one process, on these machines: rows per second (the data's README). */
const MATH_VERIFY_ROWS_PER_SECOND = 7245 / 429
const rows = gunzipSync(readFileSync(OUTPUTS))
  .toString("utf8")
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l))
for (const r of rows.slice(0, 200)) gradeMath(r.gold, r.output, { question: r.problem }) // warm up
let t0 = performance.now()
let slowest = 0
let slowestId = ""
let correct = 0
for (const r of rows) {
  const s = performance.now()
  if (gradeMath(r.gold, r.output, { question: r.problem }).verdict === "correct") correct++
  const ms = performance.now() - s
  if (ms > slowest) [slowest, slowestId] = [ms, r.problem_id]
}
const mathSeconds = (performance.now() - t0) / 1000
const rate = rows.length / mathSeconds
console.log(
  `grading: ${rows.length} real math outputs in ${mathSeconds.toFixed(2)} s, one process: ${rate.toFixed(0)} rows/s, ${((1000 * mathSeconds) / rows.length).toFixed(2)} ms a row (${correct} correct)`
)
console.log(
  `  Math-Verify measured here: ${MATH_VERIFY_ROWS_PER_SECOND.toFixed(1)} rows/s -> fastcot ${(rate / MATH_VERIFY_ROWS_PER_SECOND).toFixed(0)}x (goal: at least 5x)`
)
console.log(`  slowest item: ${slowest.toFixed(1)} ms (${slowestId}; goal: none over 1,000 ms)`)

// A LiveCodeBench-style sample: 24 stdin problems with 4 tests each, solved by reference programs.
const problems = Array.from({ length: 24 }, (_, i) => ({
  code: `import sys\nnums = list(map(int, sys.stdin.read().split()))\nprint(sum(x * ${i + 1} for x in nums))\n`,
  tests: Array.from({ length: 4 }, (_, t) => ({
    input: `${t} ${t + 1} ${i}\n`,
    output: `${(t + t + 1 + i) * (i + 1)}\n`,
    testtype: "stdin"
  }))
}))
const base = makeSandbox()
let busyMs = 0
const counting = {
  ...base,
  runPython: (...args) => Effect.tap(base.runPython(...args), (r) => Effect.sync(() => (busyMs += r.wallMs)))
}
const grade = (concurrency) =>
  Effect.runPromise(
    Effect.forEach(problems, (p) => runTests(p.code, p.tests), { concurrency }).pipe(
      Effect.provide(Layer.succeed(Sandbox, counting))
    )
  )
for (const [label, concurrency] of [
  ["serial (peer)", 1],
  ["parallel", availableParallelism() * 2]
]) {
  busyMs = 0
  t0 = performance.now()
  const outcomes = await grade(concurrency)
  const seconds = (performance.now() - t0) / 1000
  const passed = outcomes.filter((o) => o.passed).length
  console.log(
    `  code sample (${base.isolation}) ${label.padEnd(14)} ${passed}/${problems.length} pass, ${problems.length * 4} runs in ${seconds.toFixed(2)} s; sandbox kept ${(busyMs / 1000 / seconds).toFixed(2)} of ${availableParallelism()} cores busy`
  )
  if (label === "serial (peer)") var serial = seconds
  else console.log(`  parallel / serial speed-up: ${(serial / seconds).toFixed(2)}`)
}
