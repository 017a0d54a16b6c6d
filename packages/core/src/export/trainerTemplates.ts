import type { ChatMessage } from "../schema/sft.js"
import type { TemplateChoice } from "./trainerConfigs.js"

/** One example as a trainer renders it: the prompt it conditions on, and the response it computes the loss on. */
export interface TrainerRendering {
  readonly prompt: string
  readonly response: string
}

interface Format {
  readonly system: (s: string) => string
  readonly user: (s: string) => string
  readonly assistant: (s: string) => string
  readonly prefix: string
  readonly defaultSystem?: string | undefined
  /** Text that is a special token of the template: inside a turn it would be read as one. */
  readonly special: ReadonlyArray<string>
}

const CHATML: Format = {
  system: (s) => `<|im_start|>system\n${s}<|im_end|>\n`,
  user: (s) => `<|im_start|>user\n${s}<|im_end|>\n<|im_start|>assistant\n`,
  assistant: (s) => `${s}<|im_end|>\n`,
  prefix: "",
  special: ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
}

const FORMATS: Record<TemplateChoice["llamafactory"], Format> = {
  qwen: { ...CHATML, defaultSystem: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." },
  qwen3: CHATML,
  qwen3_nothink: CHATML,
  deepseekr1: {
    system: (s) => s,
    user: (s) => `<｜User｜>${s}<｜Assistant｜>`,
    assistant: (s) => `${s}<｜end▁of▁sentence｜>`,
    prefix: "<｜begin▁of▁sentence｜>",
    special: ["<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", "<｜begin▁of▁sentence｜>"]
  }
}

const THOUGHT = ["<think>\n", "\n</think>\n\n"] as const

/**
 * An example as LLaMA-Factory renders it with the template (its `qwen`, `qwen3`, `qwen3_nothink`
 * and `deepseekr1` formats; a reasoning template, as its `ReasoningTemplate` does with thinking
 * enabled, puts an empty `<think>` block before a response that has none, and trains on it).
 */
export const renderForTrainer = (template: TemplateChoice, messages: ReadonlyArray<ChatMessage>): TrainerRendering => {
  const f = FORMATS[template.llamafactory]
  const system = messages.find((m) => m.role === "system")?.content ?? f.defaultSystem ?? ""
  const turns = messages.filter((m) => m.role !== "system")
  let prompt = f.prefix + (system !== "" ? f.system(system) : "")
  let response = ""
  for (const [i, m] of turns.entries()) {
    if (m.role === "user") prompt += f.user(m.content)
    else if (i === turns.length - 1) {
      const thinking = m.content.includes(THOUGHT[0].trim()) || m.content.includes(THOUGHT[1].trim())
      response = (template.reasoning && !thinking ? THOUGHT.join("") : "") + f.assistant(m.content)
    } else prompt += f.assistant(m.content)
  }
  return { prompt, response }
}

/**
 * Why the assistant turn would not reach the trainer whole with this template, or undefined when
 * it does: the rendered response must hold the turn verbatim, and no turn may hold text the
 * template reads as a special token (an `<|im_end|>` inside a trace ends the turn there).
 */
export const trainerTemplateLoss = (
  template: TemplateChoice,
  messages: ReadonlyArray<ChatMessage>
): string | undefined => {
  const f = FORMATS[template.llamafactory]
  for (const m of messages) {
    const token = f.special.find((t) => m.content.includes(t))
    if (token !== undefined)
      return `the ${m.role} turn holds ${token}, a special token of the ${template.llamafactory} template`
  }
  const assistant = messages[messages.length - 1]
  if (assistant?.role !== "assistant") return "the example does not end with an assistant turn"
  const { response } = renderForTrainer(template, messages)
  return response.includes(assistant.content)
    ? undefined
    : `the ${template.llamafactory} template changes the assistant turn`
}
