import * as Schema from "effect/Schema"

/** Who wrote a trace: a model at one of the recipe's steps, a dataset, or a person (a review's edit). */
export const TraceOrigin = Schema.Literal("teacher", "long-to-short", "expand", "simplify", "imported", "human")
export type TraceOrigin = typeof TraceOrigin.Type

export const TokenCounts = Schema.Struct({
  reasoning: Schema.NonNegativeInt,
  answer: Schema.NonNegativeInt,
  /** Which tokenizer counted them, e.g. `qwen2.5` or a model folder's name. */
  tokenizer: Schema.String
})
export type TokenCounts = typeof TokenCounts.Type

export class Trace extends Schema.Class<Trace>("Trace")({
  reasoning: Schema.String,
  /** The final answer as the trace states it (a boxed expression, a letter, a code block). */
  finalAnswer: Schema.optional(Schema.String),
  origin: TraceOrigin,
  model: Schema.optional(Schema.String),
  promptVersion: Schema.optional(Schema.String),
  tokens: Schema.optional(TokenCounts),
  /** A long trace (more reasoning tokens than the threshold it was imported with), a candidate for long-to-short rewriting. */
  long: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** The reasoning never ended (the reply was cut off inside it): not a complete trace. */
  cutOff: Schema.optional(Schema.Boolean)
}) {}

/**
 * Builds a Trace from values the type checker has already checked (pipeline code), skipping the
 * constructor's runtime re-validation (defaults still apply), as `makeItem` does. Untrusted input
 * is decoded with the schema instead.
 */
export const makeTrace = (props: ConstructorParameters<typeof Trace>[0]): Trace => new Trace(props, true)
