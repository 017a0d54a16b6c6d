import { describeParseError } from "@fastcot/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { readFileSync } from "node:fs"
import { gunzipSync } from "node:zlib"
import { EvalError } from "./errors.js"

/**
 * Saved outputs to grade (`fastcot eval --predictions FILE`): JSONL, or JSONL compressed with
 * gzip (`.gz`), a line per output with its question's `id` and the `output`. A line may name its
 * `bench` (as `generations.jsonl` lines do): it then answers that benchmark only, so a whole
 * earlier run's generations can be regraded at once even where benchmarks share ids. A line with
 * an `error` and no output (a generation an earlier run could not get) is not an answer.
 */
export interface SavedOutput {
  readonly output: string
  /** The generation was cut at max_tokens (as `generations.jsonl` records it). */
  readonly truncated: boolean
}

export interface Predictions {
  readonly get: (bench: string, id: string) => ReadonlyArray<SavedOutput> | undefined
  readonly ids: number
  /** How many of the file's ids no `get` has answered so far. */
  readonly unused: () => number
}

const PredictionLine = Schema.Struct({
  id: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  output: Schema.optional(Schema.String),
  bench: Schema.optional(Schema.String),
  truncated: Schema.optional(Schema.Unknown),
  error: Schema.optional(Schema.Unknown)
})
const decodeLine = Schema.decodeUnknownEither(PredictionLine)

const failAt = (file: string, line: number, message: string): never => {
  throw new EvalError({ reason: "predictions", message: `${file}:${line}: ${message}` })
}

/** The file's text: gunzipped when it is gzip (its magic bytes, whatever its name). */
const readText = (file: string): string => {
  const bytes = readFileSync(file)
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString("utf8") : bytes.toString("utf8")
}

/** Reads a predictions file; a line that is not an output names the file, the line and what it has. */
export const readPredictions = (file: string): Predictions => {
  const any = new Map<string, Array<SavedOutput>>()
  const byBench = new Map<string, Map<string, Array<SavedOutput>>>()
  const ids = new Set<string>()
  readText(file)
    .split("\n")
    .forEach((text, i) => {
      if (text.trim() === "") return
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        return failAt(file, i + 1, "malformed JSON")
      }
      const decoded = decodeLine(json)
      if (Either.isLeft(decoded)) return failAt(file, i + 1, describeParseError(decoded.left))
      const row = decoded.right
      if (row.output === undefined && row.error !== undefined) return
      if (row.id === undefined || row.output === undefined) {
        const fields = json !== null && typeof json === "object" ? Object.keys(json).join(", ") : typeof json
        return failAt(
          file,
          i + 1,
          `each line needs \`id\` (the question's id in the benchmark's file) and a string \`output\`; this one has ${fields}`
        )
      }
      const id = String(row.id)
      ids.add(row.bench === undefined ? id : `${row.bench}/${id}`)
      let map = any
      if (row.bench !== undefined) {
        map = byBench.get(row.bench) ?? new Map<string, Array<SavedOutput>>()
        byBench.set(row.bench, map)
      }
      map.set(id, [...(map.get(id) ?? []), { output: row.output, truncated: row.truncated === true }])
    })
  const used = new Set<string>()
  return {
    get: (bench, id) => {
      const named = byBench.get(bench)?.get(id)
      if (named !== undefined) {
        used.add(`${bench}/${id}`)
        return named
      }
      const saved = any.get(id)
      if (saved !== undefined) used.add(id)
      return saved
    },
    ids: ids.size,
    unused: () => ids.size - used.size
  }
}
