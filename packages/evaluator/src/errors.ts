import * as Data from "effect/Data"

/** An evaluation that cannot go on: what is wrong, naming the file (and line) or the benchmark. */
export class EvalError extends Data.TaggedError("EvalError")<{
  readonly reason: "unknown-benchmark" | "no-data" | "unreadable-data" | "predictions" | "unmatched-predictions"
  readonly message: string
}> {}
