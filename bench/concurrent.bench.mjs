// The cost of running an effect over every element of a stream, N at a time: what each pipeline
// stage does with its pending items. Each element is a call that completes on the next turn of
// the event loop (setImmediate), so the numbers are the machinery's own CPU time per element.
// Peers measured in the same run: Effect's Stream.mapEffect (unordered, as the stages used it,
// and ordered) and Effect.forEach over an array (which cannot stream: it needs every element up
// front and keeps every result until the end).
import { Effect, Stream } from "effect"
import { drainConcurrently } from "@fastcot/core"

const N = Number(process.env.ELEMENTS ?? 20_000)
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const call = Effect.async((resume) => {
  setImmediate(() => resume(Effect.void))
})
const contenders = (concurrency) => [
  ["fastcot drainConcurrently", (n) => drainConcurrently(Stream.range(0, n - 1), () => call, concurrency)],
  [
    "Stream.mapEffect unordered",
    (n) =>
      Stream.range(0, n - 1).pipe(
        Stream.mapEffect(() => call, { concurrency, unordered: true }),
        Stream.runDrain
      )
  ],
  [
    "Stream.mapEffect ordered",
    (n) =>
      Stream.range(0, n - 1).pipe(
        Stream.mapEffect(() => call, { concurrency }),
        Stream.runDrain
      )
  ],
  [
    "Effect.forEach (array)",
    (n) => Effect.forEach(Array.from({ length: n }), () => call, { concurrency, discard: true })
  ]
]
const measure = async (make) => {
  const cpu0 = process.cpuUsage()
  await Effect.runPromise(make(N))
  const cpu = process.cpuUsage(cpu0)
  return (cpu.user + cpu.system) / N
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`concurrent: ${N} elements per run, median of ${ROUNDS} interleaved rounds, CPU µs per element`)
for (const concurrency of [32, 256]) {
  const list = contenders(concurrency)
  for (const [, make] of list) await Effect.runPromise(make(2_000)) // warm up
  const results = list.map(() => [])
  for (let r = 0; r < ROUNDS; r++) for (const [i, [, make]] of list.entries()) results[i].push(await measure(make))
  const ours = median(results[0])
  console.log(`  ${concurrency} at a time`)
  for (const [i, [name]] of list.entries()) {
    const m = median(results[i])
    console.log(
      `    ${name.padEnd(28)} ${m.toFixed(1).padStart(7)} µs${i > 0 ? `   (${(m / ours).toFixed(1)}x fastcot's)` : ""}`
    )
  }
}
