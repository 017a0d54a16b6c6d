import * as Schema from "effect/Schema"

/**
 * The desktop app's API: one Schema for each channel's request and reply. The Electron main
 * process (IPC) and `fastcot ui` (HTTP on 127.0.0.1) serve the same channels, and both validate
 * requests on the way in and replies on the way out.
 */

const Fate = Schema.Literal("pending", "kept", "dropped", "failed")
const Path = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096))
const Spec = Schema.String.pipe(
  Schema.pattern(/^(openai:.+@https?:\/\/\S+|onnx:.+)$/, {
    message: () => "a model spec: openai:MODEL@BASE_URL or onnx:DIR[#variant]"
  })
)

const ItemIdParam = Schema.String.pipe(Schema.pattern(/^i_[0-9a-f]{4,32}$/))
/** Who reviews: a name set in the app, recorded with each decision. */
const Reviewer = Schema.String.pipe(Schema.pattern(/\S/), Schema.maxLength(100))

export const StatusView = Schema.Struct({
  workspace: Schema.String,
  problems: Schema.Number,
  items: Schema.Number,
  pending: Schema.Number,
  kept: Schema.Number,
  dropped: Schema.Number,
  /** Kept items a person has decided on (accepted, rejected or edited). */
  reviewed: Schema.Number,
  keptAs: Schema.Record({ key: Schema.String, value: Schema.Number }),
  dropReasons: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /** Problems the pipeline's filter left out, by flag (duplicate, near-duplicate, contaminated, no-reference). */
  leftOut: Schema.Record({ key: Schema.String, value: Schema.Number }),
  tokens: Schema.Struct({
    tokenizer: Schema.NullOr(Schema.String),
    histogram: Schema.Array(
      Schema.Struct({ upTo: Schema.NullOr(Schema.Number), before: Schema.Number, after: Schema.Number })
    ),
    ratio: Schema.NullOr(Schema.Number)
  }),
  calls: Schema.Number,
  costUsd: Schema.Number,
  /** Prompt + completion tokens of the calls sent (cache hits are free): what a token budget counts. */
  paidTokens: Schema.Number,
  /** The run working on the workspace now, from this app or another process (`fastcot run`), if any. */
  running: Schema.NullOr(
    Schema.Struct({ pid: Schema.Number, host: Schema.String, startedAt: Schema.String, what: Schema.String })
  )
})
export type StatusView = typeof StatusView.Type

export const RunView = Schema.Struct({
  state: Schema.Literal("idle", "running", "paused", "stopping", "done", "failed"),
  message: Schema.optional(Schema.String),
  stages: Schema.Array(
    Schema.Struct({
      name: Schema.String,
      total: Schema.NullOr(Schema.Number),
      done: Schema.Number,
      dropped: Schema.Number,
      failed: Schema.Number
    })
  ),
  verdicts: Schema.Struct({
    easy: Schema.Number,
    medium: Schema.Number,
    hard: Schema.Number,
    unparseable: Schema.Number
  }),
  kept: Schema.Record({ key: Schema.String, value: Schema.Number }),
  dropped: Schema.Record({ key: Schema.String, value: Schema.Number }),
  tokensBefore: Schema.Array(Schema.Number),
  tokensAfter: Schema.Array(Schema.Number),
  /** Items finished over time, one point a second, in all and per stage: the progress chart. */
  timeline: Schema.Array(
    Schema.Struct({
      t: Schema.Number,
      done: Schema.Number,
      byStage: Schema.Record({ key: Schema.String, value: Schema.Number })
    })
  ),
  /** Where aligned items went, by the judge's first verdict on them (`none`: it never gave one). */
  flow: Schema.Array(
    Schema.Struct({
      first: Schema.Literal("easy", "medium", "hard", "none"),
      kept: Schema.Number,
      dropped: Schema.Number
    })
  ),
  models: Schema.Array(
    Schema.Struct({
      role: Schema.String,
      model: Schema.String,
      inFlight: Schema.Number,
      /** Requests the role's endpoints let in flight now (adaptive windows move). */
      window: Schema.Number,
      retries: Schema.Number,
      errors: Schema.Number,
      cacheHits: Schema.Number,
      completionTokens: Schema.Number,
      costUsd: Schema.Number
    })
  )
})
export type RunView = typeof RunView.Type

export const ItemRow = Schema.Struct({
  id: Schema.String,
  fate: Fate,
  what: Schema.String,
  rounds: Schema.Number,
  question: Schema.String,
  tokensBefore: Schema.NullOr(Schema.Number),
  tokensAfter: Schema.NullOr(Schema.Number),
  verdicts: Schema.Array(Schema.String),
  /** A person's latest decision, with who made it (e.g. "rejected by ana"). */
  review: Schema.NullOr(Schema.String)
})
export type ItemRow = typeof ItemRow.Type

/** How the item list is sorted: a column, ascending or descending (ties by id the same way). */
export const ItemSort = Schema.Struct({
  by: Schema.Literal("id", "tokens", "fate", "review"),
  direction: Schema.Literal("asc", "desc")
})
export type ItemSort = typeof ItemSort.Type

/** Where the next page of a sorted item list starts: after this item, and its value of the column. */
export const ItemCursor = Schema.Struct({
  afterId: ItemIdParam,
  afterValue: Schema.optional(Schema.Union(Schema.String.pipe(Schema.maxLength(200)), Schema.Number))
})
export type ItemCursor = typeof ItemCursor.Type

/** A page of the item list, and where the next starts (`null` on the last page). */
export const ItemPage = Schema.Struct({ rows: Schema.Array(ItemRow), next: Schema.NullOr(ItemCursor) })
export type ItemPage = typeof ItemPage.Type

/** A person's decision on an item, as the views show it. */
export const ReviewView = Schema.Struct({
  decision: Schema.Literal("accepted", "rejected", "edited"),
  reviewer: Schema.String,
  reason: Schema.NullOr(Schema.String),
  at: Schema.String
})
export type ReviewView = typeof ReviewView.Type

export const RoundView = Schema.Struct({
  index: Schema.Number,
  action: Schema.String,
  verdict: Schema.NullOr(Schema.Struct({ level: Schema.String, raw: Schema.String })),
  verification: Schema.NullOr(Schema.Struct({ ok: Schema.Boolean, reason: Schema.String })),
  before: Schema.NullOr(Schema.String),
  after: Schema.NullOr(Schema.String),
  calls: Schema.Array(Schema.String),
  note: Schema.NullOr(Schema.String),
  review: Schema.NullOr(ReviewView)
})

export const ItemDetail = Schema.Struct({
  id: Schema.String,
  fate: Fate,
  keptAs: Schema.NullOr(Schema.String),
  review: Schema.NullOr(ReviewView),
  reason: Schema.NullOr(Schema.String),
  question: Schema.String,
  reference: Schema.NullOr(Schema.String),
  original: Schema.NullOr(Schema.String),
  final: Schema.NullOr(Schema.String),
  rounds: Schema.Array(RoundView)
})
export type ItemDetail = typeof ItemDetail.Type

export const EvalRunView = Schema.Struct({
  dir: Schema.String,
  model: Schema.String,
  benchmarks: Schema.Array(
    Schema.Struct({
      name: Schema.String,
      accuracy: Schema.Number,
      meanOutputTokens: Schema.Number,
      /** Half the width of the accuracy's 95 % confidence interval (a fraction, like accuracy). */
      ci95: Schema.NullOr(Schema.Number),
      /** Generations scored; 0 when all failed (accuracy and tokens then mean nothing). */
      scored: Schema.Number,
      /** Generations the model layer could not get: left out of the scores (see the evaluator). */
      failed: Schema.Number
    })
  ),
  /** Why the run's results.json could not be read (its file and field), when it could not. */
  error: Schema.optional(Schema.String)
})

/** Every channel: its request and its reply. */
export const Channels = {
  "workspace.open": {
    request: Schema.Struct({ path: Path, create: Schema.optionalWith(Schema.Boolean, { default: () => true }) }),
    reply: StatusView
  },
  "workspace.status": { request: Schema.Struct({}), reply: StatusView },
  "import.content": {
    request: Schema.Struct({
      name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255), Schema.pattern(/^[^/\\]+$/)),
      content: Schema.String.pipe(Schema.maxLength(256 * 2 ** 20))
    }),
    reply: Schema.Struct({
      file: Schema.String,
      rows: Schema.Number,
      problemsAdded: Schema.Number,
      itemsAdded: Schema.Number,
      rejected: Schema.Number,
      rejects: Schema.Array(Schema.Struct({ line: Schema.Number, reason: Schema.String }))
    })
  },
  "models.inspect": {
    request: Schema.Struct({ path: Path }),
    reply: Schema.Struct({
      architecture: Schema.String,
      parameters: Schema.NullOr(Schema.Number),
      variants: Schema.Array(
        Schema.Struct({ name: Schema.String, bytes: Schema.Number, runnable: Schema.NullOr(Schema.Boolean) })
      ),
      chatTemplate: Schema.Boolean,
      missing: Schema.Array(Schema.String)
    })
  },
  "run.start": {
    request: Schema.Struct({
      teacher: Schema.optional(Spec),
      rewriter: Schema.optional(Spec),
      judge: Schema.optional(Spec),
      limit: Schema.optional(Schema.Int.pipe(Schema.positive())),
      concurrency: Schema.optional(Schema.Int.pipe(Schema.between(1, 1024))),
      budgetTokens: Schema.optional(Schema.Int.pipe(Schema.positive()))
    }),
    reply: RunView
  },
  "run.pause": { request: Schema.Struct({}), reply: RunView },
  "run.resume": { request: Schema.Struct({}), reply: RunView },
  "run.stop": { request: Schema.Struct({}), reply: RunView },
  "run.view": { request: Schema.Struct({}), reply: RunView },
  "items.list": {
    request: Schema.Struct({
      fate: Schema.optional(Fate),
      search: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
      verdict: Schema.optional(Schema.Literal("easy", "medium", "hard")),
      minTokens: Schema.optional(Schema.NonNegativeInt),
      maxTokens: Schema.optional(Schema.NonNegativeInt),
      /** By a column either way (by id ascending when absent); sorting by tokens leaves out items without a count. */
      order: Schema.optional(ItemSort),
      /** The next page: the `next` of the page before. */
      after: Schema.optional(ItemCursor),
      limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 5000)), { default: () => 200 })
    }),
    reply: ItemPage
  },
  "items.get": {
    request: Schema.Struct({ id: ItemIdParam }),
    reply: ItemDetail
  },
  "review.queue": {
    request: Schema.Struct({
      reviewer: Reviewer,
      order: Schema.optionalWith(Schema.Literal("random", "longest"), { default: () => "random" as const }),
      keptAs: Schema.optional(Schema.Literal("initial-medium", "easy-to-medium", "hard-to-medium")),
      /** Only items whose final trace this stage wrote. */
      origin: Schema.optional(Schema.Literal("teacher", "long-to-short", "expand", "simplify", "imported")),
      /** Hex digits that place a random sample; the same seed gives the same sample. */
      seed: Schema.optional(Schema.String.pipe(Schema.pattern(/^[0-9a-f]{0,16}$/))),
      limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 200)), { default: () => 20 })
    }),
    reply: Schema.Struct({
      /** Items held for this reviewer until decided (or for 15 minutes): no other reviewer gets them. */
      items: Schema.Array(ItemDetail),
      /** Kept items nobody has reviewed yet, this queue's included. */
      waiting: Schema.Number,
      /** Decisions this reviewer has made in the workspace. */
      mine: Schema.Number,
      reasons: Schema.Array(Schema.String)
    })
  },
  "review.decide": {
    request: Schema.Struct({
      id: ItemIdParam,
      reviewer: Reviewer,
      decision: Schema.Literal("accept", "reject", "edit"),
      reason: Schema.optional(Schema.String.pipe(Schema.maxLength(500))),
      reasoning: Schema.optional(Schema.String.pipe(Schema.maxLength(2 ** 20)))
    }),
    reply: ItemDetail
  },
  "export.run": {
    request: Schema.Struct({
      format: Schema.Literal("openai", "sharegpt", "alpaca", "preference"),
      valFraction: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 0.5)), { default: () => 0 })
    }),
    reply: Schema.Struct({ files: Schema.Array(Schema.String), train: Schema.Number, validation: Schema.Number })
  },
  "eval.runs": { request: Schema.Struct({}), reply: Schema.Array(EvalRunView) },
  "eval.start": {
    request: Schema.Struct({
      model: Spec,
      benches: Schema.Array(Schema.Literal("math500", "aime24", "gpqa_diamond", "mmlu_pro", "livecodebench")).pipe(
        Schema.minItems(1)
      ),
      dataDir: Path,
      limit: Schema.optional(Schema.Int.pipe(Schema.positive())),
      maxTokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
      preset: Schema.optionalWith(Schema.Literal("greedy", "r1"), { default: () => "greedy" as const })
    }),
    reply: Schema.Struct({
      state: Schema.Literal("running", "done", "failed"),
      dir: Schema.String,
      message: Schema.optional(Schema.String)
    })
  },
  "eval.state": {
    request: Schema.Struct({}),
    reply: Schema.Struct({
      state: Schema.Literal("idle", "running", "done", "failed"),
      message: Schema.optional(Schema.String),
      progress: Schema.Array(
        Schema.Struct({
          bench: Schema.String,
          done: Schema.Number,
          total: Schema.Number,
          correct: Schema.Number,
          tokens: Schema.Number
        })
      )
    })
  }
} as const

export type ChannelName = keyof typeof Channels
export type Request<C extends ChannelName> = (typeof Channels)[C]["request"]["Encoded"]
export type Reply<C extends ChannelName> = (typeof Channels)[C]["reply"]["Type"]
export const CHANNELS = Object.keys(Channels) as ReadonlyArray<ChannelName>

/**
 * What the backend pushes to its windows: run events (the backend's are @fastcot/core's
 * `RunEvent`; the renderer reads only views) and, once a second, the run's view.
 */
export type Push<Event = unknown> =
  { readonly _tag: "event"; readonly event: Event } | { readonly _tag: "view"; readonly view: RunView }

/** A request the backend refused or could not serve, with what to fix. */
export interface ApiFailure {
  readonly error: { readonly kind: "bad-request" | "failed"; readonly message: string }
}
