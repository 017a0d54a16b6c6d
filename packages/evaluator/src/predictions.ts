import { describeParseError, readRows, START } from "@fastcot/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { EvalError } from "./errors.js"

/**
 * Saved outputs to grade (`fastcot eval --predictions FILE`): JSONL, or JSONL compressed with
 * gzip, a line per output with its `output` and what it answers: the question's `id` in the
 * benchmark's file, or the question itself (`problem` or `question`, as other harnesses save it),
 * matched when no id matches (whitespace aside). A line may name its `bench` (as
 * `generations.jsonl` lines do): it then answers that benchmark only, so a whole earlier run's
 * generations can be regraded at once even where benchmarks share ids. A line with an `error` and
 * no output (a generation an earlier run could not get) is not an answer.
 */
export interface SavedOutput {
  readonly output: string
  /** The generation was cut at max_tokens (as `generations.jsonl` records it). */
  readonly truncated: boolean
}

export interface Predictions {
  /** The outputs saved for a benchmark's question: by its id, else by its text. */
  readonly get: (
    bench: string,
    item: { readonly id: string; readonly question: string }
  ) => ReadonlyArray<SavedOutput> | undefined
  /** The questions the file answers (distinct ids, or texts where a line has no id). */
  readonly ids: number
  /** How many of those no `get` has answered so far. */
  readonly unused: () => number
}

const PredictionLine = Schema.Struct({
  id: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  output: Schema.optional(Schema.String),
  bench: Schema.optional(Schema.String),
  problem: Schema.optional(Schema.Unknown),
  question: Schema.optional(Schema.Unknown),
  truncated: Schema.optional(Schema.Unknown),
  error: Schema.optional(Schema.Unknown)
})
const decodeLine = Schema.decodeUnknownEither(PredictionLine)

const failAt = (file: string, line: number, message: string): never => {
  throw new EvalError({ reason: "predictions", message: `${file}:${line}: ${message}` })
}

/** A question's text as matched: whitespace runs as one space, trimmed. */
const textKey = (question: string): string => question.replace(/\s+/g, " ").trim()

/** Outputs grouped by what they answer, with the keys (ids, or texts) of the lines they came from. */
interface Group {
  readonly keys: Set<string>
  readonly outputs: Array<SavedOutput>
}

/**
 * Reads a predictions file through the importer's JSONL reader (gzip decompressed, lines counted,
 * malformed JSON and invalid UTF-8 named); a line that is not an output names the file, the line
 * and what it has.
 */
export const readPredictions = async (file: string): Promise<Predictions> => {
  // Per benchmark named on the lines ("" for lines that name none): by id, and by question text.
  const byId = new Map<string, Map<string, Group>>()
  const byText = new Map<string, Map<string, Group>>()
  const keys = new Set<string>()
  const add = (index: Map<string, Map<string, Group>>, bench: string, lookup: string, key: string, o: SavedOutput) => {
    const map = index.get(bench) ?? new Map<string, Group>()
    index.set(bench, map)
    const group = map.get(lookup) ?? { keys: new Set<string>(), outputs: [] }
    map.set(lookup, group)
    group.keys.add(key)
    group.outputs.push(o)
  }
  for await (const batch of readRows("jsonl", file, START, 5000))
    for (const { line, value: json, error } of batch.rows) {
      if (error !== undefined) return failAt(file, line, error)
      const decoded = decodeLine(json)
      if (Either.isLeft(decoded)) return failAt(file, line, describeParseError(decoded.left))
      const row = decoded.right
      // A generation an earlier run could not get (it has an error, no output) is not an answer.
      if (row.output === undefined && typeof row.error === "string") continue
      const question = [row.problem, row.question].find((q): q is string => typeof q === "string" && q.trim() !== "")
      if ((row.id === undefined && question === undefined) || row.output === undefined) {
        const fields = json !== null && typeof json === "object" ? Object.keys(json).join(", ") : typeof json
        return failAt(
          file,
          line,
          `each line needs a string \`output\` and \`id\` (the question's id in the benchmark's file) or the question (\`problem\` or \`question\`); this one has ${fields}`
        )
      }
      const bench = row.bench ?? ""
      const saved = { output: row.output, truncated: row.truncated === true }
      const key = `${bench}/${row.id !== undefined ? `id:${row.id}` : `text:${textKey(question!)}`}`
      keys.add(key)
      if (row.id !== undefined) add(byId, bench, String(row.id), key, saved)
      if (question !== undefined) add(byText, bench, textKey(question), key, saved)
    }
  const used = new Set<string>()
  const found = (group: Group | undefined) => {
    for (const key of group?.keys ?? []) used.add(key)
    return group?.outputs
  }
  return {
    get: (bench, item) =>
      found(
        byId.get(bench)?.get(item.id) ??
          byId.get("")?.get(item.id) ??
          byText.get(bench)?.get(textKey(item.question)) ??
          byText.get("")?.get(textKey(item.question))
      ),
    ids: keys.size,
    unused: () => keys.size - used.size
  }
}
