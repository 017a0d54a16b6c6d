import { Template } from "@huggingface/jinja"
import { Tokenizer } from "@huggingface/tokenizers"
import { specialTokens } from "../chat/chatTemplateCheck.js"
import type { ModelFolder } from "./modelFolder.js"

export interface TemplateMessage {
  readonly role: string
  readonly content: string
}

/**
 * A model's tokenizer (Hugging Face tokenizer.json through @huggingface/tokenizers) and its chat
 * template (Jinja through @huggingface/jinja), applied as the model's own files say.
 */
export class ChatTokenizer {
  private readonly tokenizer: Tokenizer
  private readonly template: Template | undefined
  readonly eosIds: ReadonlyArray<number>
  readonly padId: number
  private readonly specialTokens: Record<string, string | null>

  constructor(
    folder: Pick<ModelFolder, "tokenizerJson" | "tokenizerConfig" | "chatTemplate" | "generation" | "config">
  ) {
    this.tokenizer = new Tokenizer(folder.tokenizerJson, folder.tokenizerConfig)
    this.template = folder.chatTemplate === undefined ? undefined : new Template(folder.chatTemplate)
    this.specialTokens = specialTokens(folder.tokenizerConfig)
    const ids = (v: number | ReadonlyArray<number> | null | undefined): Array<number> =>
      v === undefined || v === null ? [] : typeof v === "number" ? [v] : [...v]
    const eos = new Set([...ids(folder.generation.eos_token_id), ...ids(folder.config.eos_token_id)])
    const eosToken = this.specialTokens["eos_token"]
    if (eosToken !== null && eosToken !== undefined) {
      const id = this.tokenizer.token_to_id(eosToken)
      if (id !== undefined) eos.add(id)
    }
    this.eosIds = [...eos]
    const padToken = this.specialTokens["pad_token"]
    this.padId =
      folder.generation.pad_token_id ??
      (padToken ? this.tokenizer.token_to_id(padToken) : undefined) ??
      this.eosIds[0] ??
      0
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined
  }

  /** Token ids of a text, without added special tokens (the chat template already has them). */
  encode(text: string): Array<number> {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids
  }

  decode(ids: ReadonlyArray<number>, skipSpecial = true): string {
    if (ids.length === 0) return ""
    return this.tokenizer.decode([...ids], { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: false })
  }

  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token)
  }

  /** The prompt text for a conversation, ending with the assistant's turn opener. */
  applyChatTemplate(messages: ReadonlyArray<TemplateMessage>, addGenerationPrompt = true): string {
    if (this.template === undefined) {
      // No template: plain concatenation, as a base model would see a document.
      return messages.map((m) => m.content).join("\n\n")
    }
    return this.template.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: addGenerationPrompt,
      ...this.specialTokens
    })
  }

  /**
   * Turns token ids into text piece by piece without splitting a multi-byte character: the
   * prefix/read offsets technique (decode a window, emit only text that is complete).
   */
  streamDecoder(): { push: (id: number) => string; flush: () => string } {
    const ids: Array<number> = []
    let prefix = 0
    let read = 0
    return {
      push: (id) => {
        ids.push(id)
        const before = this.decode(ids.slice(prefix, read))
        const now = this.decode(ids.slice(prefix))
        if (now.length > before.length && !now.endsWith("\uFFFD")) {
          prefix = read
          read = ids.length
          return now.slice(before.length)
        }
        return ""
      },
      flush: () => {
        const before = this.decode(ids.slice(prefix, read))
        const now = this.decode(ids.slice(prefix))
        prefix = read = ids.length
        return now.slice(before.length)
      }
    }
  }
}
