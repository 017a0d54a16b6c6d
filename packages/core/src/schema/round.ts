import * as Schema from "effect/Schema"
import { Trace } from "./trace.js"
import { Verdict } from "./verdict.js"

export const CallRole = Schema.Literal("teacher", "rewriter", "judge")
export type CallRole = typeof CallRole.Type

/** One model call, as recorded in an item's history. */
export const CallRecord = Schema.Struct({
  role: CallRole,
  model: Schema.String,
  promptVersion: Schema.optional(Schema.String),
  promptTokens: Schema.NonNegativeInt,
  completionTokens: Schema.NonNegativeInt,
  costUsd: Schema.optional(Schema.NonNegative),
  latencyMs: Schema.NonNegative,
  cached: Schema.Boolean
})
export type CallRecord = typeof CallRecord.Type

/** Why a trace was not verified: the verifier says so, and a dropped item carries it as its code. */
export const VerificationFailure = Schema.Literal(
  "answer-mismatch",
  "no-answer",
  "no-reference",
  "timeout",
  "unverifiable",
  "tests-failed"
)
export type VerificationFailure = typeof VerificationFailure.Type

export const Verification = Schema.Struct({
  ok: Schema.Boolean,
  /** Set whenever `ok` is false (absent in records written before it existed). */
  failure: Schema.optional(VerificationFailure),
  /** The answer the grader extracted from the trace, if any. */
  extracted: Schema.optional(Schema.String),
  reason: Schema.String
})
export type Verification = typeof Verification.Type

export const RoundAction = Schema.Literal("collect", "long-to-short", "verify", "judge", "expand", "simplify", "review")
export type RoundAction = typeof RoundAction.Type

/** What a person decided of a kept item: keep it, leave it out of the data, or keep it as they edited it. */
export const ReviewDecision = Schema.Literal("accepted", "rejected", "edited")
export type ReviewDecision = typeof ReviewDecision.Type

/** A person's decision on an item: who, what, why (for a rejection), and when. */
export const Review = Schema.Struct({
  decision: ReviewDecision,
  reviewer: Schema.NonEmptyTrimmedString,
  reason: Schema.optional(Schema.String),
  at: Schema.String
})
export type Review = typeof Review.Type

/** One step of an item's history. Nothing is overwritten: every round is appended. */
export class Round extends Schema.Class<Round>("Round")({
  index: Schema.NonNegativeInt,
  action: RoundAction,
  input: Schema.optional(Trace),
  output: Schema.optional(Trace),
  verdict: Schema.optional(Verdict),
  verification: Schema.optional(Verification),
  /** A person's decision (a `review` round); an edit's trace is the round's output. */
  review: Schema.optional(Review),
  calls: Schema.Array(CallRecord),
  startedAt: Schema.String,
  finishedAt: Schema.String,
  note: Schema.optional(Schema.String)
}) {}

/** A Round from type-checked values, without runtime re-validation (see makeItem). */
export const makeRound = (props: ConstructorParameters<typeof Round>[0]): Round => new Round(props, true)
