import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { isMap, isSeq, LineCounter, parseDocument } from "yaml"
import { parseIssues } from "../schema/errors.js"
import { DEFAULT_SYSTEM_PROMPT, MATH_INSTRUCTION } from "./prompts.js"
import { nearestName } from "../util/nearestName.js"
import { isPostgresUrl } from "../store/storeUrl.js"
import { parse as parseConnectionString } from "pg-connection-string"

export const Sampling = Schema.Struct({
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  top_p: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  max_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
  seed: Schema.optional(Schema.Int),
  stop: Schema.optional(Schema.Array(Schema.String))
})
export type Sampling = typeof Sampling.Type

/** Batch mode's defaults: OpenAI's limits, a poll every 5 s growing to every minute, two resubmissions. */
const BATCH_DEFAULTS = {
  maxRequests: 50_000,
  maxMegabytes: 200,
  maxWaiting: 100_000,
  gatherSeconds: 2,
  pollSeconds: 5,
  pollMaxSeconds: 60,
  resubmit: 2,
  fallback: "fail" as const,
  priceFactor: 0.5
}

export const EndpointSettings = Schema.Struct({
  /** `openai:MODEL@BASE_URL` or `onnx:PATH[#variant]`. */
  model: Schema.String,
  /** The environment variable holding the API key (never the key itself). */
  apiKeyEnv: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/))),
  /** Requests in flight at once (with `adaptive`, where the window starts). */
  concurrency: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 4096)), { default: () => 8 }),
  /**
   * Concurrency that adapts between these bounds: halved on a 429 or a burst of timeouts, one more
   * after each window of successes. A server's `x-ratelimit-*` headers govern instead when it sends them.
   */
  adaptive: Schema.optional(
    Schema.Struct({
      min: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 4096)), { default: () => 1 }),
      max: Schema.Int.pipe(Schema.between(1, 4096))
    }).pipe(Schema.filter((b) => b.min <= b.max || `min (${b.min}) is above max (${b.max})`))
  ),
  /**
   * `batch`: calls go to the provider's batch API (OpenAI's, or a compatible one) at the batch
   * price instead of one by one; `live` (default) sends each call at once.
   */
  mode: Schema.optionalWith(Schema.Literal("live", "batch"), { default: () => "live" as const }),
  /** Batch mode's settings (see BatchSettings); every one has a default. */
  batch: Schema.optionalWith(
    Schema.Struct({
      maxRequests: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 50_000)), { default: () => 50_000 }),
      maxMegabytes: Schema.optionalWith(Schema.Number.pipe(Schema.between(0.001, 200)), { default: () => 200 }),
      /** The most calls waiting on batches at once. */
      maxWaiting: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1_000_000)), { default: () => 100_000 }),
      gatherSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.between(0.001, 3600)), { default: () => 2 }),
      pollSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.between(0.001, 3600)), { default: () => 5 }),
      pollMaxSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.between(0.001, 3600)), { default: () => 60 }),
      resubmit: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 20)), { default: () => 2 }),
      /** What a request that failed in every batch does: `live` goes to the endpoint one by one, `fail` fails. */
      fallback: Schema.optionalWith(Schema.Literal("live", "fail"), { default: () => "fail" as const }),
      priceFactor: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { default: () => 0.5 })
    }),
    { default: () => BATCH_DEFAULTS }
  ),
  requestsPerMinute: Schema.optional(Schema.Number.pipe(Schema.positive())),
  tokensPerMinute: Schema.optional(Schema.Number.pipe(Schema.positive())),
  /** Non-streamed calls: the whole request's limit. Streams are held by `firstTokenSeconds` and `stallSeconds` instead. */
  timeoutSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 600 }),
  /** Streams: the first token must arrive within this. */
  firstTokenSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 300 }),
  /** Streams: a stream that sends no token for this long is cut and retried (a stream that keeps sending is never cut). */
  stallSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 60 }),
  stream: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /**
   * How the judge's reply is held to easy / medium / hard: `vllm` (structured_outputs; servers older
   * than 0.12, told by their /version, get guided_choice), `vllm-legacy` (guided_choice), `sglang`
   * (regex), `openai` (a JSON-schema response format), `none`.
   */
  guidedDecoding: Schema.optionalWith(Schema.Literal("vllm", "vllm-legacy", "sglang", "openai", "none"), {
    default: () => "none" as const
  }),
  /** Any JSON object merged into every request body: a server's own parameters (chat_template_kwargs, enable_thinking, ...). */
  extraBody: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  /** The field the reply length goes in (default: max_completion_tokens for OpenAI's o-series and gpt-5, else max_tokens). */
  maxTokensField: Schema.optional(Schema.Literal("max_tokens", "max_completion_tokens")),
  /** The most output tokens the endpoint allows (e.g. 8192 for deepseek-chat): requests are capped, and `truncation: extend` stops there. */
  maxOutputTokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** USD per million input and output tokens; `cachedInput` for prompt tokens the server read from its cache. */
  price: Schema.optional(
    Schema.Struct({
      input: Schema.NonNegative,
      output: Schema.NonNegative,
      cachedInput: Schema.optional(Schema.NonNegative)
    })
  ),
  /** Local (onnx:) models: intra-op threads (default: every core). */
  threads: Schema.optional(Schema.Int.pipe(Schema.between(1, 1024))),
  /** Local (onnx:) 4-bit models: `int8` (default) runs their products on integer kernels; `as-exported` keeps the file's arithmetic. */
  q4Compute: Schema.optional(Schema.Literal("int8", "as-exported")),
  /** Local (onnx:) float16 models: `auto` (default) computes them in float32 when that fits in memory; `float32` always; `as-exported` keeps float16 arithmetic. */
  f16Compute: Schema.optional(Schema.Literal("auto", "float32", "as-exported")),
  /** Local (onnx:) models: pack products that read one input into one (same answers; see README). */
  packProducts: Schema.optional(Schema.Boolean),
  /** Local (onnx:) models: `fused` (default) runs each rotary embedding as one node; `as-exported` keeps the file's nodes. */
  rotary: Schema.optional(Schema.Literal("fused", "as-exported"))
})
export type EndpointSettings = typeof EndpointSettings.Type

export const RoleSettings = Schema.Struct({
  endpoints: Schema.Array(EndpointSettings).pipe(Schema.minItems(1)),
  sampling: Schema.optionalWith(Sampling, { default: () => ({}) }),
  maxAttempts: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 50)), { default: () => 6 })
})
export type RoleSettings = typeof RoleSettings.Type

export const CollectSettings = Schema.Struct({
  /** Teacher samples per problem (0 turns teacher sampling off). */
  samplesPerProblem: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 1024)), { default: () => 1 }),
  systemPrompt: Schema.optionalWith(Schema.String, { default: () => DEFAULT_SYSTEM_PROMPT }),
  mathInstruction: Schema.optionalWith(Schema.String, { default: () => MATH_INSTRUCTION }),
  /** Long (R1-style) traces with more reasoning tokens than this are rewritten short. */
  longToShortAboveTokens: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 1024 }),
  /**
   * A reply cut off at max_tokens: dropped (default), kept and marked truncated, or asked again
   * with twice the max_tokens until it ends or `extendUpTo` is reached (then dropped).
   */
  truncation: Schema.optionalWith(Schema.Literal("drop", "keep", "extend"), { default: () => "drop" as const }),
  /** The largest max_tokens `truncation: extend` asks with (default: 4 × the teacher's max_tokens). */
  extendUpTo: Schema.optional(Schema.Int.pipe(Schema.positive()))
})

export const FilterSettingsSchema = Schema.Struct({
  /** Leave out exact and near-duplicate problems (the earliest by id is kept). */
  dedup: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  nearDuplicateThreshold: Schema.optionalWith(Schema.Number.pipe(Schema.between(0.5, 1)), { default: () => 0.8 }),
  /** Evaluation benchmark files (JSONL, JSON, CSV, Parquet) to decontaminate against. */
  benchmarks: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  ngram: Schema.optionalWith(Schema.Int.pipe(Schema.between(3, 50)), { default: () => 8 })
})

export const AlignSettings = Schema.Struct({
  maxRounds: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 20)), { default: () => 3 }),
  /** The student size named in the judge, expand and simplify prompts. */
  smallModel: Schema.optionalWith(Schema.String, { default: () => "7B" }),
  judgeRetries: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 10)), { default: () => 3 }),
  /** Judges asked per round (k, best odd); the round's verdict is their majority. */
  judges: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 15)), { default: () => 1 }),
  /** Tries for a rewrite that no longer reaches the reference answer, before the item is dropped. */
  rewriteRetries: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 10)), { default: () => 2 })
})

/** A hard limit on what a run may spend, counting what the workspace's earlier runs spent. */
export const BudgetSettings = Schema.Struct({
  /** US dollars, priced by the endpoints' `price` (every remote endpoint then needs one). */
  usd: Schema.optional(Schema.Number.pipe(Schema.positive())),
  /** Prompt + completion tokens of the calls sent (cache hits are free). */
  tokens: Schema.optional(Schema.Int.pipe(Schema.positive()))
})
export type BudgetSettings = typeof BudgetSettings.Type

/**
 * A pipeline file's run store: a PostgreSQL URL without a password (a pipeline file is shared with
 * its recipe; the password comes from PGPASSWORD or the password file). The URL is read as the
 * store's driver reads it (pg-connection-string, libpq's rules), so a Unix socket named by the
 * query (`postgres://team@/math?host=/run/postgresql`) is taken, and a `password=` in the query is
 * refused like one before the host.
 */
export const PipelineStore = Schema.String.pipe(
  Schema.filter((url) => {
    if (!isPostgresUrl(url)) return "a postgres://USER@HOST:PORT/DB URL (a SQLite workspace is chosen with --workspace)"
    const password = (() => {
      try {
        return parseConnectionString(url).password
      } catch {
        return null
      }
    })()
    if (password === null) return "is not a URL: postgres://USER@HOST:PORT/DB"
    return password === undefined || password === ""
      ? true
      : "has a password in it: set PGPASSWORD, or write it in ~/.pgpass, and leave it out of the pipeline file"
  })
)

export const PipelineConfig = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  /** The run store the workers of this pipeline share (`--store` overrides it; it overrides FASTCOT_STORE). */
  store: Schema.optional(PipelineStore),
  budget: Schema.optional(BudgetSettings),
  models: Schema.Struct({
    teacher: Schema.optional(RoleSettings),
    rewriter: Schema.optional(RoleSettings),
    judge: Schema.optional(RoleSettings)
  }),
  stages: Schema.optionalWith(
    Schema.Struct({
      filter: Schema.optionalWith(FilterSettingsSchema, { default: () => Schema.decodeSync(FilterSettingsSchema)({}) }),
      collect: Schema.optionalWith(CollectSettings, { default: () => Schema.decodeSync(CollectSettings)({}) }),
      align: Schema.optionalWith(AlignSettings, { default: () => Schema.decodeSync(AlignSettings)({}) })
    }),
    {
      default: () => ({
        filter: Schema.decodeSync(FilterSettingsSchema)({}),
        collect: Schema.decodeSync(CollectSettings)({}),
        align: Schema.decodeSync(AlignSettings)({})
      })
    }
  )
})
export type PipelineConfig = typeof PipelineConfig.Type

const decodeConfig = Schema.decodeUnknownEither(PipelineConfig, { errors: "all", onExcessProperty: "error" })

/**
 * The file's shorthands, written out: a role given as a model spec (`teacher: openai:MODEL@URL`)
 * is a role with that one endpoint, and an endpoint given as a spec is one with only its model.
 */
const expandShorthands = (raw: unknown): unknown => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw
  const models = (raw as { models?: unknown }).models
  if (typeof models !== "object" || models === null || Array.isArray(models)) return raw
  const endpoint = (e: unknown) => (typeof e === "string" ? { model: e } : e)
  const role = (r: unknown) => {
    if (typeof r === "string") return { endpoints: [{ model: r }] }
    if (typeof r !== "object" || r === null || !Array.isArray((r as { endpoints?: unknown }).endpoints)) return r
    return { ...r, endpoints: (r as { endpoints: Array<unknown> }).endpoints.map(endpoint) }
  }
  return { ...raw, models: Object.fromEntries(Object.entries(models).map(([k, v]) => [k, role(v)])) }
}

/** A key the schema does not take, with the one it likely meant: `is unexpected (did you mean "maxRounds"?), expected: …`. */
const withSuggestion = (key: string | undefined, message: string): string => {
  const m = /^is unexpected, expected: (.+)$/s.exec(message)
  if (key === undefined || m === null) return message
  const known = [...m[1]!.matchAll(/"([^"]+)"/g)].map((k) => k[1]!)
  const meant = nearestName(key, known)
  return meant === undefined ? message : `is unexpected (did you mean "${meant}"?), expected: ${m[1]}`
}

/**
 * Parses a pipeline file (YAML or JSON, which is YAML) and decodes it, naming the key and the line
 * of every problem: `pipeline.yaml:12: models.teacher.endpoints.0.concurrency: ...`.
 */
export const parsePipeline = (text: string, file: string): Either.Either<PipelineConfig, string> => {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false })
  if (doc.errors.length > 0) {
    return Either.left(
      doc.errors
        .map((e) => `${file}:${e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line}: ${e.message.split("\n")[0]}`)
        .join("\n")
    )
  }
  const decoded = decodeConfig(expandShorthands(doc.toJS()))
  if (Either.isRight(decoded)) return Either.right(decoded.right)
  const issues = parseIssues(decoded.left)
  return Either.left(
    issues
      .map((issue) => {
        const path = issue.path.map(String)
        let node: unknown = doc.contents
        let line = 1
        for (const key of path) {
          if (isMap(node)) {
            const pair = node.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === key)
            if (pair === undefined) break
            const range = (pair.key as { range?: [number, number, number] })?.range
            if (range !== undefined) line = lines.linePos(range[0]).line
            node = pair.value
          } else if (isSeq(node)) {
            node = node.items[Number(key)]
            const range = (node as { range?: [number, number, number] })?.range
            if (range !== undefined) line = lines.linePos(range[0]).line
          } else break
        }
        const message = withSuggestion(
          path[path.length - 1],
          issue.message.replace(
            /^Expected Struct \(Encoded side\)|^Expected \{[^]*?\}(?=, actual )/,
            "Expected a mapping (key: value lines)"
          )
        )
        return { line, text: `${file}:${line}: ${path.length > 0 ? path.join(".") : "(top level)"}: ${message}` }
      })
      // In the file's order, as an editor shows it (the sort is stable: one line's issues keep theirs).
      .sort((a, b) => a.line - b.line)
      .map((i) => i.text)
      .join("\n")
  )
}

/**
 * The most output tokens any endpoint of a role allows (its endpoints' `maxOutputTokens`; the
 * smallest, since a request may go to any of them), or undefined when none says.
 */
export const roleMaxOutputTokens = (
  config: PipelineConfig,
  role: "teacher" | "rewriter" | "judge"
): number | undefined => {
  const caps = (config.models[role]?.endpoints ?? [])
    .map((e) => e.maxOutputTokens)
    .filter((x): x is number => x !== undefined)
  return caps.length > 0 ? Math.min(...caps) : undefined
}
