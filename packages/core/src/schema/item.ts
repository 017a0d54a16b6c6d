import * as Schema from "effect/Schema"
import { ProblemId } from "./problem.js"
import { Review, Round, VerificationFailure } from "./round.js"
import { Trace } from "./trace.js"

export const ItemId = Schema.String.pipe(Schema.pattern(/^i_[0-9a-f]{16}$/), Schema.brand("ItemId"))
export type ItemId = typeof ItemId.Type

/** Where an item is in the recipe. */
export const Stage = Schema.Literal("collect", "verify", "align", "done")
export type Stage = typeof Stage.Type

/**
 * An item's fate: still in the recipe, kept, dropped for a reason of the data (a wrong answer, a
 * judge that never said medium), or failed for a reason of the models (a request a server refused,
 * calls that kept failing): a rerun tries failed items again.
 */
export const Fate = Schema.Literal("pending", "kept", "dropped", "failed")
export type Fate = typeof Fate.Type

/** How a kept item reached medium: the three parts of the recipe's final dataset. */
export const KeptAs = Schema.Literal("initial-medium", "easy-to-medium", "hard-to-medium")
export type KeptAs = typeof KeptAs.Type

/**
 * Why an item was dropped or failed: the verifier's failures, the filter's problem flags, the
 * stages' own reasons, and model errors (a failed item). Every code any version has written.
 */
export const DropCode = Schema.Literal(
  ...VerificationFailure.literals,
  "duplicate",
  "near-duplicate",
  "contaminated",
  "no-trace",
  "reasoning-cut-off",
  "truncated",
  "no-rewriter",
  "judge-unparseable",
  "max-rounds",
  "rewrite-changed-answer",
  "request-refused",
  "teacher-error",
  "rewriter-error",
  "judge-error"
)
export type DropCode = typeof DropCode.Type

export const DropReason = Schema.Struct({
  code: DropCode,
  detail: Schema.String
})
export type DropReason = typeof DropReason.Type

/** A reason as one line: `code: detail`, the code once when the detail already starts with it. */
export const describeReason = (reason: DropReason): string =>
  reason.detail === reason.code || reason.detail.startsWith(`${reason.code}:`)
    ? reason.detail
    : `${reason.code}: ${reason.detail}`

export class Item extends Schema.Class<Item>("Item")({
  id: ItemId,
  problemId: ProblemId,
  stage: Stage,
  fate: Fate,
  keptAs: Schema.optional(KeptAs),
  reason: Schema.optional(DropReason),
  /** The current trace (the latest accepted one). */
  trace: Schema.optional(Trace),
  /** The trace the item started from, set when a rewrite replaces it (kept for side-by-side views and preference pairs). */
  original: Schema.optional(Trace),
  rounds: Schema.Array(Round),
  /** The latest review of this item, when a person has reviewed it (each decision is also a round). */
  review: Schema.optional(Review),
  /** What the source said of this trace (an imported dataset's own correctness, finish reason, model). */
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  createdAt: Schema.String,
  updatedAt: Schema.String
}) {}

/**
 * Builds an Item from values the type checker has already checked (pipeline code), skipping the
 * constructor's runtime re-validation, which dominated per-item CPU time. Untrusted input is
 * decoded with the schema instead.
 */
export const makeItem = (props: ConstructorParameters<typeof Item>[0]): Item => new Item(props, true)

/** Where an item stands, in one word: how it was kept, why it was dropped, or the stage it waits at. */
export const fateDetail = (item: Item): string =>
  String(
    (item.fate === "kept"
      ? item.keptAs
      : item.fate === "dropped" || item.fate === "failed"
        ? item.reason?.code
        : item.stage) ?? ""
  )
