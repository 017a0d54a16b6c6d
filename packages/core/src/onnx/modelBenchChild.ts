/**
 * The child process of an isolated `benchModel`: times one variant and prints its rows (or why it
 * could not) as one JSON line on stdout; progress goes to stderr. Its argument is JSON written by
 * the parent: `{ dir, options }`.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { benchModel, type ModelBenchOptions } from "./modelBench.js"

const { dir, options } = JSON.parse(process.argv[2] ?? "{}") as { dir: string; options: ModelBenchOptions }
const result = await Effect.runPromise(
  Effect.either(benchModel(dir, { ...options, onProgress: (line) => process.stderr.write(`${line}\n`) }))
)
process.stdout.write(
  `${JSON.stringify(Either.isRight(result) ? { rows: result.right } : { error: { reason: result.left._tag === "LocalModelError" ? result.left.reason : "load", message: result.left.message } })}\n`
)
