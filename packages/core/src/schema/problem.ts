import * as Schema from "effect/Schema"

export const Domain = Schema.Literal("math", "code", "science")
export type Domain = typeof Domain.Type

/** A test case in LiveCodeBench's layout: stdin/stdout, or a functional call with JSON arguments. */
export const TestCase = Schema.Struct({
  input: Schema.String,
  output: Schema.String,
  testtype: Schema.optionalWith(Schema.Literal("stdin", "functional"), { default: () => "stdin" as const }),
  /** APPS and TACO write a function's expected value wrapped in a one-item list: either form passes. */
  unwrapOutput: Schema.optional(Schema.Boolean)
})
export type TestCase = typeof TestCase.Type

export const ProblemId = Schema.String.pipe(Schema.pattern(/^p_[0-9a-f]{16}$/), Schema.brand("ProblemId"))
export type ProblemId = typeof ProblemId.Type

const NonBlank = Schema.String.pipe(Schema.filter((s) => s.trim().length > 0, { message: () => "must not be empty" }))

export class Problem extends Schema.Class<Problem>("Problem")({
  id: ProblemId,
  domain: Domain,
  question: NonBlank,
  /** The reference (gold) final answer; absent for code problems graded by tests alone. */
  answer: Schema.optional(Schema.String),
  /** Multiple-choice options, lettered A, B, C, ... in this order. */
  choices: Schema.optional(Schema.Array(Schema.String).pipe(Schema.minItems(2))),
  tests: Schema.optional(Schema.Array(TestCase)),
  /** Where it came from: `file:line`, or a dataset name. */
  source: Schema.String,
  metadata: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}) {}

/** The content that defines a problem's identity (source and metadata are not part of it). */
export const problemIdentity = (p: {
  readonly domain: Domain
  readonly question: string
  readonly answer?: string | undefined
  readonly choices?: ReadonlyArray<string> | undefined
  readonly tests?: ReadonlyArray<TestCase> | undefined
}) => ({
  domain: p.domain,
  question: p.question.trim(),
  answer: p.answer?.trim(),
  choices: p.choices,
  tests: p.tests
})
