import { Template } from "@huggingface/jinja"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { readFile, stat } from "node:fs/promises"
import { join } from "node:path"
import type { ChatMessage } from "../schema/sft.js"
import * as Data from "effect/Data"

/** A chat template as a trainer applies it: Jinja, with the tokenizer's special tokens in scope. */
/** A chat template that cannot be read or rendered, naming its file. */
export class ChatTemplateError extends Data.TaggedError("ChatTemplateError")<{
  readonly file: string
  readonly message: string
}> {}

export interface ChatTemplate {
  /** Where it was read from. */
  readonly source: string
  readonly render: (messages: ReadonlyArray<ChatMessage>) => string
}

// tokenizer_config.json, as far as a template needs it. A template list (`[{name, template}]`)
// is also how some repositories ship several; the one named "default" is what trainers use.
const TokenText = Schema.Union(Schema.String, Schema.Struct({ content: Schema.String }), Schema.Null)
const TokenizerConfig = Schema.Struct({
  chat_template: Schema.optional(
    Schema.Union(Schema.String, Schema.Array(Schema.Struct({ name: Schema.String, template: Schema.String })))
  ),
  bos_token: Schema.optional(TokenText),
  eos_token: Schema.optional(TokenText),
  pad_token: Schema.optional(TokenText),
  unk_token: Schema.optional(TokenText)
})
const decodeConfig = Schema.decodeUnknownEither(Schema.parseJson(TokenizerConfig))

/**
 * The special tokens a chat template may use, as tokenizer_config.json gives them: each a string
 * or `{content}`, else null. (The local runtime's templates read them the same way.)
 */
export const specialTokens = (
  config: Readonly<Record<string, unknown>>
): Record<"bos_token" | "eos_token" | "pad_token" | "unk_token", string | null> => {
  const text = (v: unknown): string | null =>
    typeof v === "string"
      ? v
      : typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string"
        ? (v as { content: string }).content
        : null
  return {
    bos_token: text(config["bos_token"]),
    eos_token: text(config["eos_token"]),
    pad_token: text(config["pad_token"]),
    unk_token: text(config["unk_token"])
  }
}

/**
 * The chat template a model folder holds, picked as Hugging Face's tokenizers pick it: a
 * `chat_template.jinja` file first (it takes priority over the config's entry), else
 * tokenizer_config.json's `chat_template`, a string or a list of named templates (`default`, else
 * the first).
 */
export const pickChatTemplate = (fromJinja: string | undefined, listed: unknown): string | undefined => {
  if (fromJinja !== undefined) return fromJinja
  if (typeof listed === "string") return listed
  if (!Array.isArray(listed)) return undefined
  const named = listed.filter(
    (t): t is { name?: unknown; template: string } =>
      typeof t === "object" && t !== null && typeof (t as { template?: unknown }).template === "string"
  )
  return (named.find((t) => t.name === "default") ?? named[0])?.template
}

/**
 * Reads a chat template: a model folder (its `chat_template.jinja`, else the `chat_template` of
 * its `tokenizer_config.json`), a `tokenizer_config.json`, or a `.jinja` file.
 */
export const loadChatTemplate = (path: string): Effect.Effect<ChatTemplate, ChatTemplateError> =>
  Effect.tryPromise({
    try: async (): Promise<ChatTemplate> => {
      const isDir = (await stat(path)).isDirectory()
      const configFile = isDir ? join(path, "tokenizer_config.json") : path.endsWith(".json") ? path : undefined
      const jinjaFile = isDir ? join(path, "chat_template.jinja") : path.endsWith(".json") ? undefined : path
      const config =
        configFile === undefined
          ? undefined
          : await readFile(configFile, "utf8").catch((e: NodeJS.ErrnoException) =>
              e.code === "ENOENT" && isDir ? undefined : Promise.reject(e)
            )
      const parsed = config === undefined ? undefined : decodeConfig(config)
      if (parsed !== undefined && parsed._tag === "Left")
        throw new Error(`${configFile}: not a tokenizer_config.json (${parsed.left.message.split("\n")[0]})`)
      const fields = parsed?._tag === "Right" ? parsed.right : undefined
      const fromJinja =
        jinjaFile === undefined
          ? undefined
          : await readFile(jinjaFile, "utf8").catch((e: NodeJS.ErrnoException) =>
              e.code === "ENOENT" && isDir ? undefined : Promise.reject(e)
            )
      const text = pickChatTemplate(fromJinja, fields?.chat_template)
      if (text === undefined)
        throw new Error(
          isDir ? "no chat_template.jinja, and tokenizer_config.json has no chat_template" : "it holds no chat template"
        )
      const template = new Template(text)
      const tokens = specialTokens(fields ?? {})
      return {
        source: fromJinja !== undefined ? jinjaFile! : configFile!,
        render: (messages) =>
          template.render({
            messages: messages.map((m) => ({ role: m.role, content: m.content })),
            add_generation_prompt: false,
            ...tokens
          })
      }
    },
    catch: (e) =>
      new ChatTemplateError({
        file: path,
        message: `cannot use it as a chat template: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or folder" : (e as Error).message}`
      })
  })

/**
 * Why a sample's assistant turn does not survive the template whole, or undefined when it does.
 * Some templates rewrite the assistant turn (one common one keeps only what follows `</think>`),
 * and a trainer that applies them would then learn from less than the exported text.
 */
export const templateLoss = (template: ChatTemplate, messages: ReadonlyArray<ChatMessage>): string | undefined => {
  let rendered: string
  try {
    rendered = template.render(messages)
  } catch (e) {
    return `the template fails on it: ${(e as Error).message}`
  }
  // The longest prefix and suffix of a turn found in the rendered text (binary search: a shorter
  // prefix or suffix of one that is found is found too).
  const longest = (text: string, piece: (n: number) => string) => {
    let lo = 0
    let hi = text.length
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2)
      if (rendered.includes(piece(mid))) lo = mid
      else hi = mid - 1
    }
    return lo
  }
  for (const m of messages) {
    if (m.role !== "assistant") continue
    // Some templates trim each turn: that loses nothing a trainer learns from.
    const text = m.content.trim()
    if (rendered.includes(text)) continue
    const start = longest(text, (n) => text.slice(0, n))
    const end = longest(text, (n) => text.slice(text.length - n))
    if (end >= start && end > 0)
      return `the start of the assistant turn (its reasoning) is missing: only its last ${end} of ${text.length} characters are in the rendered text`
    if (start > 0)
      return `the end of the assistant turn (its answer) is missing: only its first ${start} of ${text.length} characters are in the rendered text`
    return "the assistant turn is not in the rendered text"
  }
  return undefined
}
