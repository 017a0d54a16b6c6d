import * as Schema from "effect/Schema"

export const ChatRole = Schema.Literal("system", "user", "assistant")
export const ChatMessage = Schema.Struct({ role: ChatRole, content: Schema.String })
export type ChatMessage = typeof ChatMessage.Type

export const Split = Schema.Literal("train", "validation")
export type Split = typeof Split.Type

/** One supervised fine-tuning example, before it is written in a trainer's format. */
export class SftSample extends Schema.Class<SftSample>("SftSample")({
  itemId: Schema.String,
  problemId: Schema.String,
  split: Split,
  messages: Schema.Array(ChatMessage).pipe(Schema.minItems(2))
}) {}

/** The export formats, as read back by trainers. */
export const OpenAiRecord = Schema.Struct({ messages: Schema.Array(ChatMessage).pipe(Schema.minItems(2)) })
export const ShareGptRecord = Schema.Struct({
  system: Schema.optional(Schema.String),
  conversations: Schema.Array(Schema.Struct({ from: Schema.Literal("human", "gpt"), value: Schema.String })).pipe(
    Schema.minItems(2)
  )
})
export const AlpacaRecord = Schema.Struct({
  instruction: Schema.String,
  input: Schema.String,
  output: Schema.String,
  system: Schema.optional(Schema.String)
})

const GptTurn = Schema.Struct({ from: Schema.Literal("gpt"), value: Schema.String })
export const PreferenceRecord = Schema.Struct({
  system: Schema.optional(Schema.String),
  conversations: Schema.Array(Schema.Struct({ from: Schema.Literal("human"), value: Schema.String })).pipe(
    Schema.minItems(1)
  ),
  chosen: GptTurn,
  rejected: GptTurn
})
