import * as Schema from "effect/Schema"

export const Message = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant"),
  content: Schema.String
})
export type Message = typeof Message.Type

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const roles: ReadonlySet<unknown> = new Set(Message.fields.role.literals)

/** Exactly a `Message` with no other keys (the Schema's output for it is the input itself). */
const isPlainMessage = (m: unknown): boolean => {
  if (!isObject(m) || !roles.has(m["role"]) || typeof m["content"] !== "string") return false
  let keys = 0
  for (const _ in m) keys++
  return keys === 2 && Object.getPrototypeOf(m) === Object.prototype
}

const optionalNumberIn = (v: unknown, min: number, max: number, integer: boolean): boolean =>
  v === undefined || (typeof v === "number" && v >= min && v <= max && (!integer || Number.isSafeInteger(v)))
const optionalStrings = (v: unknown): boolean => {
  if (v === undefined) return true
  if (!Array.isArray(v)) return false
  for (const x of v) if (typeof x !== "string") return false
  return true
}
const requestKeys: ReadonlySet<string> = new Set([
  "messages",
  "model",
  "temperature",
  "top_p",
  "max_tokens",
  "seed",
  "stop",
  "n",
  "choice"
])

/**
 * Whether props are a valid ChatRequest that the Schema would return unchanged: no other keys,
 * plain objects. A request is built on every model call; this check allocates nothing, where
 * Effect's parser allocates per request (the largest share of a call's garbage in
 * bench/llm.bench.mjs). When it says no, the Schema validates as usual (and names the field
 * that is wrong). The property tests in schema.test.ts hold it to the Schema.
 */
export const isPlainChatRequest = (props: unknown): boolean => {
  if (typeof props !== "object" || props === null || Object.getPrototypeOf(props) !== Object.prototype) return false
  for (const key in props) if (!requestKeys.has(key)) return false
  const p = props as Record<string, unknown>
  const messages = p["messages"]
  if (!Array.isArray(messages) || messages.length === 0) return false
  for (const m of messages) if (!isPlainMessage(m)) return false
  return (
    (p["model"] === undefined || typeof p["model"] === "string") &&
    optionalNumberIn(p["temperature"], 0, 2, false) &&
    optionalNumberIn(p["top_p"], 0, 1, false) &&
    optionalNumberIn(p["max_tokens"], 1, Number.MAX_SAFE_INTEGER, true) &&
    optionalNumberIn(p["seed"], Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true) &&
    optionalNumberIn(p["n"], 1, 1, true) &&
    optionalStrings(p["stop"]) &&
    optionalStrings(p["choice"])
  )
}

const chatRequestFields = {
  messages: Schema.Array(Message).pipe(Schema.minItems(1)),
  /** The model name sent to the endpoint; filled from the role's endpoint when absent. */
  model: Schema.optional(Schema.String),
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  top_p: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  max_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
  seed: Schema.optional(Schema.Int),
  stop: Schema.optional(Schema.Array(Schema.String)),
  n: Schema.optional(Schema.Int.pipe(Schema.between(1, 1))),
  /** Restrict the reply to one of these strings (guided choice where the server supports it). */
  choice: Schema.optional(Schema.Array(Schema.String))
}

/** One chat-completion request: everything that determines the answer, and nothing secret. */
export class ChatRequest extends Schema.Class<ChatRequest>("ChatRequest")(chatRequestFields) {
  constructor(props: Schema.Struct.Constructor<typeof chatRequestFields>, options?: Schema.MakeOptions) {
    // Validation as the Schema does it, without its cost when the props are plainly valid.
    super(props, options ?? isPlainChatRequest(props))
  }
}

export const FinishReason = Schema.Literal("stop", "length", "content_filter", "tool_calls", "unknown")
export type FinishReason = typeof FinishReason.Type

export const Usage = Schema.Struct({
  promptTokens: Schema.NonNegativeInt,
  completionTokens: Schema.NonNegativeInt,
  reasoningTokens: Schema.optional(Schema.NonNegativeInt),
  /** Prompt tokens the server read from its prompt cache (priced at `cachedInput` where given). */
  cachedPromptTokens: Schema.optional(Schema.NonNegativeInt)
})
export type Usage = typeof Usage.Type

/** A model's reply. A plain record (not a class): one is made per call on the hot path. */
export const Completion = Schema.Struct({
  text: Schema.String,
  /** Reasoning returned separately (`reasoning_content`) or found in a leading `<think>` block. */
  reasoning: Schema.optional(Schema.String),
  finishReason: FinishReason,
  usage: Usage,
  model: Schema.String,
  latencyMs: Schema.NonNegative,
  cached: Schema.Boolean,
  /** Tries it took (1 when the first attempt succeeded). */
  attempts: Schema.Int.pipe(Schema.positive()),
  costUsd: Schema.optional(Schema.NonNegative)
})
export type Completion = typeof Completion.Type

/** The wire format of a non-streaming chat completion, as far as fastcot reads it. */
export const WireCompletion = Schema.Struct({
  model: Schema.optional(Schema.String),
  choices: Schema.NonEmptyArray(
    Schema.Struct({
      message: Schema.Struct({
        content: Schema.optional(Schema.NullOr(Schema.String)),
        reasoning_content: Schema.optional(Schema.NullOr(Schema.String)),
        reasoning: Schema.optional(Schema.NullOr(Schema.String))
      }),
      finish_reason: Schema.optional(Schema.NullOr(Schema.String))
    })
  ),
  usage: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        prompt_tokens: Schema.optional(Schema.Number),
        completion_tokens: Schema.optional(Schema.Number),
        completion_tokens_details: Schema.optional(
          Schema.NullOr(Schema.Struct({ reasoning_tokens: Schema.optional(Schema.NullOr(Schema.Number)) }))
        ),
        /** SGLang reports reasoning tokens here. */
        reasoning_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
        /** OpenAI: prompt tokens served from its prompt cache. */
        prompt_tokens_details: Schema.optional(
          Schema.NullOr(Schema.Struct({ cached_tokens: Schema.optional(Schema.NullOr(Schema.Number)) }))
        ),
        /** DeepSeek: prompt tokens served from its context cache. */
        prompt_cache_hit_tokens: Schema.optional(Schema.NullOr(Schema.Number))
      })
    )
  )
})

/** One server-sent event chunk of a streaming completion. */
export const WireChunk = Schema.Struct({
  model: Schema.optional(Schema.String),
  choices: Schema.optional(
    Schema.Array(
      Schema.Struct({
        delta: Schema.optional(
          Schema.Struct({
            content: Schema.optional(Schema.NullOr(Schema.String)),
            reasoning_content: Schema.optional(Schema.NullOr(Schema.String)),
            reasoning: Schema.optional(Schema.NullOr(Schema.String))
          })
        ),
        finish_reason: Schema.optional(Schema.NullOr(Schema.String))
      })
    )
  ),
  usage: WireCompletion.fields.usage
})

/**
 * A server's finish reason in fastcot's words: `repetition` (vLLM cutting a reply that repeats
 * itself) is a truncation like `length`; spellings of a natural end are `stop`. Anything else is
 * `unknown`, which the provider refuses to take as a completion.
 */
export const finishReason = (raw: string | null | undefined): FinishReason => {
  switch (raw) {
    case "stop":
    case "length":
    case "content_filter":
    case "tool_calls":
      return raw
    case "eos":
    case "end_turn":
    case "stop_sequence":
    case "function_call":
      return raw === "function_call" ? "tool_calls" : "stop"
    case "repetition":
    case "max_tokens":
    case "model_length":
      return "length"
    default:
      return "unknown"
  }
}

// Checks that allocate nothing for the replies every call decodes: each implies that the Schema
// accepts the value (whose decoded form then reads the same), and when one says no, the Schema
// decodes as usual. The property tests in schema.test.ts hold them to the Schemas.
const optionalText = (v: unknown): boolean => v === undefined || v === null || typeof v === "string"
const optionalCount = (v: unknown): boolean => v === undefined || typeof v === "number"
const nullableCount = (v: unknown): boolean => v === undefined || v === null || typeof v === "number"
const isWireUsage = (u: unknown): boolean => {
  if (u === undefined || u === null) return true
  if (!isObject(u) || !optionalCount(u["prompt_tokens"]) || !optionalCount(u["completion_tokens"])) return false
  if (!nullableCount(u["reasoning_tokens"]) || !nullableCount(u["prompt_cache_hit_tokens"])) return false
  const prompt = u["prompt_tokens_details"]
  if (prompt !== undefined && prompt !== null && !(isObject(prompt) && nullableCount(prompt["cached_tokens"])))
    return false
  const details = u["completion_tokens_details"]
  if (details === undefined || details === null) return true
  return isObject(details) && nullableCount(details["reasoning_tokens"])
}
const isReplyText = (m: unknown): boolean =>
  isObject(m) && optionalText(m["content"]) && optionalText(m["reasoning_content"]) && optionalText(m["reasoning"])

/** A reply that `WireCompletion` accepts, checked without Effect's parser. */
export const isPlainWireCompletion = (u: unknown): u is typeof WireCompletion.Type => {
  if (!isObject(u) || (u["model"] !== undefined && typeof u["model"] !== "string") || !isWireUsage(u["usage"]))
    return false
  const choices = u["choices"]
  if (!Array.isArray(choices) || choices.length === 0) return false
  for (const c of choices)
    if (!isObject(c) || !isReplyText(c["message"]) || !optionalText(c["finish_reason"])) return false
  return true
}

/** A streamed chunk that `WireChunk` accepts, checked without Effect's parser. */
export const isPlainWireChunk = (u: unknown): u is typeof WireChunk.Type => {
  if (!isObject(u) || (u["model"] !== undefined && typeof u["model"] !== "string") || !isWireUsage(u["usage"]))
    return false
  const choices = u["choices"]
  if (choices === undefined) return true
  if (!Array.isArray(choices)) return false
  for (const c of choices)
    if (!isObject(c) || (c["delta"] !== undefined && !isReplyText(c["delta"])) || !optionalText(c["finish_reason"]))
      return false
  return true
}
