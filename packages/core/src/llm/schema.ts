import * as Schema from "effect/Schema"

export const Message = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant"),
  content: Schema.String
})
export type Message = typeof Message.Type

/** One chat-completion request: everything that determines the answer, and nothing secret. */
export class ChatRequest extends Schema.Class<ChatRequest>("ChatRequest")({
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
}) {}

export const FinishReason = Schema.Literal("stop", "length", "content_filter", "tool_calls", "unknown")
export type FinishReason = typeof FinishReason.Type

export const Usage = Schema.Struct({
  promptTokens: Schema.NonNegativeInt,
  completionTokens: Schema.NonNegativeInt,
  reasoningTokens: Schema.optional(Schema.NonNegativeInt)
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
        completion_tokens_details: Schema.optional(Schema.NullOr(Schema.Struct({ reasoning_tokens: Schema.optional(Schema.NullOr(Schema.Number)) })))
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

export const finishReason = (raw: string | null | undefined): FinishReason =>
  raw === "stop" || raw === "length" || raw === "content_filter" || raw === "tool_calls" ? raw : raw === "eos" ? "stop" : "unknown"
