import * as Schema from "effect/Schema"
import { sha256Hex } from "../util/hash.js"
import { type ChatRequest, Completion } from "./schema.js"

/** What the LLM cache stores for a key: the answer, or a refusal that repeats. */
const CachedValue = Schema.parseJson(
  Schema.Union(
    Schema.Struct({
      text: Schema.String,
      reasoning: Schema.optional(Schema.String),
      finishReason: Completion.fields.finishReason,
      usage: Completion.fields.usage,
      model: Schema.String,
      latencyMs: Schema.Number
    }),
    /** A request the server refused in a way that repeats (see `repeatsForRequest`): not sent again. */
    Schema.Struct({ refused: Schema.Struct({ status: Schema.Number, message: Schema.String, at: Schema.String }) })
  )
)
/** A cached answer, or a cached refusal, as the cache stores it (JSON). */
export const decodeCached = Schema.decodeUnknownOption(CachedValue)

/** The cache key: everything that determines a completion, never the URL or a credential. */
export const cacheKey = (model: string, request: ChatRequest, sampleIndex: number): string =>
  sha256Hex(
    // Explicit field order (no key sorting needed): this runs once per call on the hot path.
    JSON.stringify({
      v: 1,
      model: request.model ?? model,
      messages: request.messages.map((m) => [m.role, m.content]),
      temperature: request.temperature,
      top_p: request.top_p,
      max_tokens: request.max_tokens,
      seed: request.seed,
      stop: request.stop,
      n: request.n,
      choice: request.choice,
      sampleIndex
    })
  )
