import * as Schema from "effect/Schema"

/** Progress of one stage, emitted as work completes (and by `--json` as one JSON line each). */
export const StageProgress = Schema.TaggedStruct("progress", {
  stage: Schema.String,
  total: Schema.NonNegativeInt,
  done: Schema.NonNegativeInt,
  failed: Schema.NonNegativeInt,
  skipped: Schema.NonNegativeInt,
  cached: Schema.NonNegativeInt,
  promptTokens: Schema.NonNegativeInt,
  completionTokens: Schema.NonNegativeInt,
  costUsd: Schema.NonNegative,
  elapsedMs: Schema.NonNegative
})

export const ItemEvent = Schema.TaggedStruct("item", {
  stage: Schema.String,
  itemId: Schema.String,
  problemId: Schema.String,
  outcome: Schema.Literal("ok", "failed", "dropped"),
  reason: Schema.optional(Schema.String),
  /** Where the item ended up: kept (and how), dropped (and why), or still pending. */
  fate: Schema.optional(Schema.Literal("pending", "kept", "dropped", "failed")),
  keptAs: Schema.optional(Schema.String),
  reasonCode: Schema.optional(Schema.String),
  /** Reasoning tokens of the trace the item started from and of the one it ends with (kept items). */
  tokensBefore: Schema.optional(Schema.NonNegativeInt),
  tokensAfter: Schema.optional(Schema.NonNegativeInt)
})

/** One judge verdict on one trace (each round of the align loop gives one). */
export const VerdictEvent = Schema.TaggedStruct("verdict", {
  itemId: Schema.String,
  level: Schema.Literal("easy", "medium", "hard", "unparseable"),
  round: Schema.NonNegativeInt
})

export const LogEvent = Schema.TaggedStruct("log", {
  level: Schema.Literal("info", "warn", "error"),
  message: Schema.String,
  itemId: Schema.optional(Schema.String)
})

export const StageDone = Schema.TaggedStruct("stage-done", {
  stage: Schema.String,
  done: Schema.NonNegativeInt,
  failed: Schema.NonNegativeInt,
  skipped: Schema.NonNegativeInt,
  elapsedMs: Schema.NonNegative
})

/** The last event of a run: what the aligned stage kept and dropped this time. */
export const PipelineDone = Schema.TaggedStruct("pipeline-done", {
  kept: Schema.NonNegativeInt,
  dropped: Schema.NonNegativeInt,
  failed: Schema.NonNegativeInt
})

export const RunEvent = Schema.Union(StageProgress, ItemEvent, VerdictEvent, LogEvent, StageDone, PipelineDone)
export type RunEvent = typeof RunEvent.Type
