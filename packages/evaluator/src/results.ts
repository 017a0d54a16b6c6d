import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { readFileSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { describeParseError } from "@fastcot/core"
import { EvalResults } from "./evaluate.js"
import { Generation } from "./report.js"

// The files an evaluation writes are read back through their Schemas (`EvalResults`, `Generation`),
// so a hand-edited, truncated or foreign file is refused with its name, line and field.
const decodeResults = Schema.decodeUnknownEither(Schema.parseJson(EvalResults))
const decodeGeneration = Schema.decodeUnknownEither(Schema.parseJson(Generation))

/**
 * A results or generations file that cannot be used: unreadable, not JSON (truncated, or still
 * being written), not an evaluation's, or with a field that is wrong. The message names the file
 * (and line) and the field.
 */
export class ResultsFileError extends Data.TaggedError("ResultsFileError")<{
  /** `missing`: there is no such file (an evaluation that has not written it yet). */
  readonly reason: "missing" | "unreadable" | "not-json" | "foreign" | "invalid"
  readonly message: string
}> {}

const unreadable = (file: string, e: unknown) => {
  const code = (e as NodeJS.ErrnoException).code
  return new ResultsFileError({
    reason: code === "ENOENT" ? "missing" : "unreadable",
    message: `${file}: cannot read it (${code ?? String(e)})`
  })
}

const readText = (file: string): Either.Either<string, ResultsFileError> => {
  try {
    return Either.right(readFileSync(file, "utf8"))
  } catch (e) {
    return Either.left(unreadable(file, e))
  }
}

/** A results.json's text, decoded; the error names the file and the field at fault. */
const parseEvalResults = (file: string, text: string): Either.Either<EvalResults, ResultsFileError> => {
  const decoded = decodeResults(text)
  if (Either.isRight(decoded)) return Either.right(decoded.right)
  let fastcot: unknown
  try {
    fastcot = (JSON.parse(text) as { fastcot?: unknown } | null)?.fastcot
  } catch {
    return Either.left(
      new ResultsFileError({ reason: "not-json", message: `${file}: not JSON (truncated, or still being written?)` })
    )
  }
  if (fastcot !== "eval/v1")
    return Either.left(
      new ResultsFileError({
        reason: "foreign",
        message: `${file}: not a fastcot evaluation result (no "fastcot": "eval/v1")`
      })
    )
  return Either.left(
    new ResultsFileError({ reason: "invalid", message: `${file}: ${describeParseError(decoded.left)}` })
  )
}

/** Reads a results.json; the error names the file and the field at fault. */
export const readEvalResults = (file: string): Either.Either<EvalResults, ResultsFileError> =>
  Either.flatMap(readText(file), (text) => parseEvalResults(file, text))

/** `readEvalResults` without blocking the event loop (for servers and the desktop app's backend). */
export const loadEvalResults = (file: string): Promise<Either.Either<EvalResults, ResultsFileError>> =>
  readFile(file, "utf8").then(
    (text) => parseEvalResults(file, text),
    (e: unknown) => Either.left(unreadable(file, e))
  )

/** Reads a generations.jsonl; the error names the file, line and field at fault. */
export const readGenerations = (file: string): Either.Either<Array<Generation>, ResultsFileError> =>
  Either.flatMap(readText(file), (text) => {
    const out: Array<Generation> = []
    const lines = text.split("\n")
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.trim() === "") continue
      const decoded = decodeGeneration(lines[i])
      if (Either.isLeft(decoded))
        return Either.left(
          new ResultsFileError({ reason: "invalid", message: `${file}:${i + 1}: ${describeParseError(decoded.left)}` })
        )
      out.push(decoded.right)
    }
    return Either.right(out)
  })
