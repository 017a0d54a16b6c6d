import * as Schema from "effect/Schema"

export const VerdictLevel = Schema.Literal("easy", "medium", "hard", "unparseable")
export type VerdictLevel = typeof VerdictLevel.Type

export class Verdict extends Schema.Class<Verdict>("Verdict")({
  level: VerdictLevel,
  /** The judge's reply exactly as received. */
  raw: Schema.String,
  model: Schema.optional(Schema.String),
  promptVersion: Schema.optional(Schema.String)
}) {}

/** Builds a Verdict from checked values without re-validating them (see `makeTrace`). */
export const makeVerdict = (props: ConstructorParameters<typeof Verdict>[0]): Verdict => new Verdict(props, true)
