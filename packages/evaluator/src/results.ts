import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { readFileSync } from "node:fs"
import { describeParseError } from "@fastcot/core"
import type { EvalResults } from "./evaluate.js"
import type { Generation } from "./report.js"

/**
 * The files an evaluation writes, as Schemas: `results.json` and the lines of
 * `generations.jsonl` are read back by `fastcot report` and the desktop app through these, so a
 * hand-edited, truncated or foreign file is refused with its name, line and field.
 */
const SummarySchema = Schema.Struct({
  items: Schema.Number,
  samples: Schema.Number,
  accuracy: Schema.Number,
  ci95: Schema.Number,
  passAtK: Schema.Record({ key: Schema.String, value: Schema.Number }),
  noAnswer: Schema.Number,
  truncated: Schema.Number,
  meanOutputTokens: Schema.Number,
  medianOutputTokens: Schema.Number,
  meanReasoningTokens: Schema.optional(Schema.Number)
})

export const EvalResultsSchema = Schema.Struct({
  fastcot: Schema.Literal("eval/v1"),
  model: Schema.String,
  settings: Schema.Struct({
    preset: Schema.Literal("greedy", "r1"),
    sampling: Schema.Record({ key: Schema.String, value: Schema.Number }),
    samples: Schema.Number,
    limit: Schema.optional(Schema.Number),
    systemPrompt: Schema.String,
    promptVersion: Schema.String,
    graderVersion: Schema.String,
    tokenizer: Schema.String,
    predictions: Schema.optional(Schema.String)
  }),
  startedAt: Schema.String,
  finishedAt: Schema.String,
  benchmarks: Schema.Array(
    Schema.Struct({
      bench: Schema.String,
      file: Schema.String,
      sha256: Schema.String,
      summary: SummarySchema,
      groups: Schema.Record({ key: Schema.String, value: SummarySchema }),
      failed: Schema.optional(Schema.Struct({ samples: Schema.Number, firstError: Schema.String }))
    })
  )
})

/** One line of generations.jsonl, as far as reports read it (the rest of the line is kept out). */
export const GenerationLineSchema = Schema.Struct({
  bench: Schema.String,
  id: Schema.String,
  correct: Schema.optional(Schema.Boolean),
  extracted: Schema.optional(Schema.String)
})

// The Schemas describe exactly the TypeScript records the evaluator writes.
const sameResults = (x: typeof EvalResultsSchema.Type): EvalResults => x
const sameGeneration = (x: typeof GenerationLineSchema.Type): Generation => x
void sameResults
void sameGeneration

const decodeResults = Schema.decodeUnknownEither(Schema.parseJson(EvalResultsSchema))
const decodeGeneration = Schema.decodeUnknownEither(Schema.parseJson(GenerationLineSchema))

/**
 * A results or generations file that cannot be used: unreadable, not JSON (truncated, or still
 * being written), not an evaluation's, or with a field that is wrong. The message names the file
 * (and line) and the field.
 */
export class ResultsFileError extends Data.TaggedError("ResultsFileError")<{
  readonly reason: "unreadable" | "not-json" | "foreign" | "invalid"
  readonly message: string
}> {}

const readText = (file: string): Either.Either<string, ResultsFileError> => {
  try {
    return Either.right(readFileSync(file, "utf8"))
  } catch (e) {
    return Either.left(new ResultsFileError({ reason: "unreadable", message: `${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})` }))
  }
}

/** Reads a results.json; the error names the file and the field at fault. */
export const readEvalResults = (file: string): Either.Either<EvalResults, ResultsFileError> =>
  Either.flatMap(readText(file), (text) => {
    const decoded = decodeResults(text)
    if (Either.isRight(decoded)) return Either.right(decoded.right)
    let fastcot: unknown
    try {
      fastcot = (JSON.parse(text) as { fastcot?: unknown } | null)?.fastcot
    } catch {
      return Either.left(new ResultsFileError({ reason: "not-json", message: `${file}: not JSON (truncated, or still being written?)` }))
    }
    if (fastcot !== "eval/v1") return Either.left(new ResultsFileError({ reason: "foreign", message: `${file}: not a fastcot evaluation result (no "fastcot": "eval/v1")` }))
    return Either.left(new ResultsFileError({ reason: "invalid", message: `${file}: ${describeParseError(decoded.left)}` }))
  })

/** Reads a generations.jsonl; the error names the file, line and field at fault. */
export const readGenerations = (file: string): Either.Either<Array<Generation>, ResultsFileError> =>
  Either.flatMap(readText(file), (text) => {
    const out: Array<Generation> = []
    const lines = text.split("\n")
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.trim() === "") continue
      const decoded = decodeGeneration(lines[i])
      if (Either.isLeft(decoded)) return Either.left(new ResultsFileError({ reason: "invalid", message: `${file}:${i + 1}: ${describeParseError(decoded.left)}` }))
      out.push(decoded.right)
    }
    return Either.right(out)
  })
