import type { Problem } from "../schema/problem.js"

import { letteredChoices } from "../util/choices.js"

export const TEACHER_PROMPT_VERSION = "teacher/v1"

/** The common reasoning-evaluation instruction for math (Qwen2.5-Math, DeepSeek-R1 evaluations). */
export const MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

/**
 * The user turn for a problem: math asks for a boxed answer; multiple choice lists lettered
 * options and asks for the letter; code asks for a Python program in a fenced block.
 */
export const problemPrompt = (problem: Problem, mathInstruction: string = MATH_INSTRUCTION): string => {
  if (problem.choices !== undefined) {
    const options = letteredChoices(problem.choices)
    return `${problem.question}\n\n${options}\n\nPlease reason step by step, and put the letter of the correct option within \\boxed{}.`
  }
  if (problem.domain === "code") {
    return `${problem.question}\n\nWrite a Python 3 program that solves it, reading from standard input and writing to standard output. Reason step by step, then give the complete program in one \`\`\`python code block.`
  }
  return `${problem.question}\n\n${mathInstruction}`
}

/** The recipe's system prompt for the trained student (RECIPE.md, "Using the models"). */
export const DEFAULT_SYSTEM_PROMPT =
  "You are Qwen, created by Alibaba Cloud. You are a helpful assistant. You should think step-by-step."
