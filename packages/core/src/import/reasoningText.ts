/** A reply split into its reasoning and its final solution, as R1-style and Sky-T1-style models write them. */
export interface SplitReply {
  /** The thinking: inside `<think>` or `<|begin_of_thought|>`, else the whole text. */
  readonly reasoning: string
  /** What follows the thinking (the `<|begin_of_solution|>` section, or the text after `</think>`); absent when the text has no thinking part. */
  readonly solution?: string | undefined
  /** Which tags separated them. */
  readonly tags?: "think" | "thought" | undefined
  /** The thinking was opened and never closed: the reply was cut off inside it. */
  readonly cutOff: boolean
}

const THOUGHT_OPEN = "<|begin_of_thought|>"
const THOUGHT_CLOSE = "<|end_of_thought|>"
const SOLUTION_OPEN = "<|begin_of_solution|>"
const SOLUTION_CLOSE = "<|end_of_solution|>"

/**
 * Splits a reply into reasoning and solution: Sky-T1 / OpenThoughts / Bespoke-Stratos tags
 * (`<|begin_of_thought|> … <|end_of_thought|>` then `<|begin_of_solution|> … <|end_of_solution|>`),
 * R1-style `<think> … </think>` (also a closing tag alone, when a chat template put the opening one
 * in the prompt), else the whole text as reasoning. A thinking part that is opened and never
 * closed is marked `cutOff`: the reply ended inside it and has no solution.
 */
export const splitReasoning = (text: string): SplitReply => {
  const thoughtAt = text.indexOf(THOUGHT_OPEN)
  if (thoughtAt >= 0 || text.includes(THOUGHT_CLOSE)) {
    const start = thoughtAt >= 0 ? thoughtAt + THOUGHT_OPEN.length : 0
    const end = text.indexOf(THOUGHT_CLOSE, start)
    if (end < 0) return { reasoning: text.slice(start).trim(), tags: "thought", cutOff: true }
    const after = text.slice(end + THOUGHT_CLOSE.length)
    const solutionAt = after.indexOf(SOLUTION_OPEN)
    const body = solutionAt >= 0 ? after.slice(solutionAt + SOLUTION_OPEN.length) : after
    const closeAt = body.indexOf(SOLUTION_CLOSE)
    const solution = (closeAt >= 0 ? body.slice(0, closeAt) : body).trim()
    return {
      reasoning: text.slice(start, end).trim(),
      solution: solution === "" ? undefined : solution,
      tags: "thought",
      cutOff: false
    }
  }
  const openAt = text.indexOf("<think>")
  const closeAt = text.indexOf("</think>")
  if (openAt >= 0 && (closeAt < 0 || closeAt < openAt))
    return { reasoning: text.slice(openAt + "<think>".length).trim(), tags: "think", cutOff: true }
  if (closeAt >= 0) {
    const start = openAt >= 0 ? openAt + "<think>".length : 0
    const solution = text.slice(closeAt + "</think>".length).trim()
    return {
      reasoning: text.slice(start, closeAt).trim(),
      solution: solution === "" ? undefined : solution,
      tags: "think",
      cutOff: false
    }
  }
  return { reasoning: text.trim(), cutOff: false }
}
