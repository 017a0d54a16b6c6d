import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Problem } from "../schema/problem.js"
import type { Trace } from "../schema/trace.js"

const PROMPTS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "prompts")

export type AlignPrompt = "judge" | "expand" | "simplify"

export interface VersionedPrompt {
  readonly name: AlignPrompt
  /** e.g. `judge/v1`, recorded with every call. */
  readonly version: string
  readonly text: string
}

/** The recipe's prompt `name` at `version`, with the student size filled in. */
export const loadPrompt = (name: AlignPrompt, smallModel: string, version = 1): VersionedPrompt => ({
  name,
  version: `${name}/v${version}`,
  text: readFileSync(join(PROMPTS, `${name}.v${version}.txt`), "utf8")
    .trim()
    .split("{{SMALL_MODEL}}")
    .join(smallModel)
})

/** The user turn for the judge and the rewriters: the problem, its answer and the reasoning. */
export const traceTurn = (problem: Problem, trace: Trace): string =>
  `Problem:\n${problem.question}\n\nAnswer:\n${problem.answer ?? trace.finalAnswer ?? ""}\n\nReasoning process:\n${trace.reasoning}`

export type ParsedVerdict = "easy" | "medium" | "hard" | undefined

/**
 * Strict verdict parsing: after a leading `<think>…</think>`, surrounding whitespace, punctuation
 * and Markdown are removed, the reply must be exactly easy, medium or hard (any case).
 */
export const parseVerdict = (reply: string): ParsedVerdict => {
  let text = reply
  const close = text.indexOf("</think>")
  if (text.trimStart().startsWith("<think>") && close >= 0) text = text.slice(close + "</think>".length)
  const word = text
    .trim()
    .replace(/^[\s*_`#>"'“”‘’.,:;!()[\]{}-]+|[\s*_`#>"'“”‘’.,:;!()[\]{}-]+$/g, "")
    .toLowerCase()
  return word === "easy" || word === "medium" || word === "hard" ? word : undefined
}
