import * as Either from "effect/Either"
import type { TestCase } from "../schema/problem.js"
import { lastBoxed } from "../util/latex.js"
import { decodeLcbTests } from "./codeTests.js"
import {
  asText,
  type LayoutOptions,
  layoutRow,
  type MappedRow,
  mapRow,
  parseMaybeJson,
  pick,
  type RowContent,
  rowError,
  smallFields,
  type TraceContent,
  typeName
} from "./layout.js"
import { splitReasoning } from "./reasoningText.js"

/**
 * The published layouts of the datasets people start the recipe from, read exactly as their
 * dataset cards and the peers' loading code describe them. Each is recognised from a row's fields,
 * and can be chosen with `--layout NAME`.
 */
export const LAYOUT_NAMES = [
  "openthoughts",
  "openthoughts-metadata",
  "openr1-math",
  "openmath",
  "deepmath",
  "am-distilled",
  "numinamath",
  "s1k",
  "reasoning-content",
  "livecodebench",
  "apps",
  "taco",
  "generic"
] as const
export type LayoutName = (typeof LAYOUT_NAMES)[number]

export interface DatasetLayout {
  readonly name: LayoutName
  /** The dataset(s) it is the layout of. */
  readonly datasets: string
  /** Which field becomes what, for `import --dry-run`. */
  readonly fields: Readonly<Record<string, string>>
  /** Whether a row has this layout's fields. */
  readonly detect: (row: Readonly<Record<string, unknown>>) => boolean
  /** How specific the fields it looks for are: the most specific layout that matches is taken. */
  readonly specificity: number
  readonly read: (row: Record<string, unknown>, options: LayoutOptions) => RowContent
}

const asRecord = (value: unknown): Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : rowError(`expected an object, got ${typeName(value)}`)

const text = (row: Record<string, unknown>, field: string, numbersOk = false): string | undefined =>
  asText(row[field] === undefined || row[field] === null ? undefined : { field, value: row[field] }, field, numbersOk)

const required = (row: Record<string, unknown>, field: string): string => {
  const t = text(row, field)
  return t === undefined || t.trim() === "" ? rowError(`missing \`${field}\``) : t
}

const list = (row: Record<string, unknown>, field: string): Array<unknown> | undefined => {
  const v = parseMaybeJson(row[field])
  if (v === undefined || v === null) return undefined
  return Array.isArray(v) ? v : rowError(`field \`${field}\`: expected a list, got ${typeName(v)}`)
}

/** A reference answer read from a solution: its last `\boxed{}`. */
const boxedAnswer = (solution: string | undefined): string | undefined =>
  solution === undefined ? undefined : lastBoxed(splitReasoning(solution).solution ?? solution)

/** An answer field that says there is none (NuminaMath-1.5 writes "proof" or "notfound"). */
const realAnswer = (a: string | undefined): string | undefined =>
  a === undefined || /^(proof|notfound|none|)$/i.test(a.trim()) ? undefined : a

const has = (row: Readonly<Record<string, unknown>>, ...fields: ReadonlyArray<string>) =>
  fields.every((f) => row[f] !== undefined && row[f] !== null)

/** OpenThoughts / Bespoke-Stratos (and OpenThoughts3): `system` + `conversations` of `{from, value}`. */
const openThoughts: DatasetLayout = {
  name: "openthoughts",
  datasets:
    "open-thoughts/OpenThoughts-114k, OpenThoughts2/3, bespokelabs/Bespoke-Stratos-17k (conversations with <|begin_of_thought|> or <think> replies)",
  fields: {
    question: "conversations[from=user|human].value",
    trace: "conversations[from=assistant|gpt].value (thought and solution split)",
    answer: "the solution's last \\boxed{}",
    system: "system"
  },
  specificity: 3,
  detect: (row) =>
    Array.isArray(row["conversations"]) &&
    (row["conversations"] as Array<unknown>).some(
      (t) => typeof t === "object" && t !== null && "from" in t && "value" in t
    ),
  read: (row) => {
    const turns = (row["conversations"] as Array<unknown>).map((t, i) => {
      const o = asRecord(t)
      if (typeof o["from"] !== "string" || typeof o["value"] !== "string")
        return rowError(`field \`conversations\`: turn ${i} needs string \`from\` and \`value\``)
      return { from: o["from"], value: o["value"] }
    })
    const user = turns.find((t) => t.from === "user" || t.from === "human")
    if (user === undefined) return rowError("field `conversations`: no user turn")
    const replies = turns.filter((t) => t.from === "assistant" || t.from === "gpt")
    const answer = boxedAnswer(replies[0]?.value)
    const metadata = smallFields(row, (k) => k === "conversations")
    return { question: user.value, answer, metadata, traces: replies.map((r): TraceContent => ({ reply: r.value })) }
  }
}

/** OpenThoughts' metadata config: the problem with DeepSeek-R1's reasoning and solution apart, and the ground truth. */
const openThoughtsMetadata: DatasetLayout = {
  name: "openthoughts-metadata",
  datasets: "open-thoughts/OpenThoughts-114k (metadata config)",
  fields: {
    question: "problem",
    trace: "deepseek_reasoning + deepseek_solution",
    answer: "ground_truth_solution's last \\boxed{}",
    tests: "test_cases (inputs/outputs)",
    domain: "domain"
  },
  specificity: 4,
  detect: (row) => has(row, "problem", "deepseek_reasoning"),
  read: (row) => {
    const domain = text(row, "domain")
    const tests = appsTests(row, "test_cases")
    const reasoning = required(row, "deepseek_reasoning")
    return {
      question: required(row, "problem"),
      answer:
        tests !== undefined
          ? undefined
          : (boxedAnswer(text(row, "ground_truth_solution")) ?? boxedAnswer(text(row, "deepseek_solution"))),
      tests: tests?.tests,
      domain:
        domain === "code"
          ? "code"
          : domain === "science" || domain === "biology" || domain === "chemistry" || domain === "physics"
            ? "science"
            : tests !== undefined
              ? "code"
              : "math",
      metadata: {
        ...smallFields(row, (k) =>
          ["problem", "deepseek_reasoning", "deepseek_solution", "ground_truth_solution", "test_cases"].includes(k)
        ),
        ...(tests?.funcName !== undefined ? { func_name: tests.funcName } : {})
      },
      traces: [{ reasoning, solution: text(row, "deepseek_solution"), model: "DeepSeek-R1" }]
    }
  }
}

/** OpenR1-Math: a problem with several R1 generations, each with the source's own verdicts. */
const openR1Math: DatasetLayout = {
  name: "openr1-math",
  datasets: "open-r1/OpenR1-Math-220k",
  fields: {
    question: "problem",
    answer: "answer",
    trace: "generations[i] (one trace each; <think> and solution split)",
    "trace metadata": "correctness_math_verify[i], correctness_llama[i], is_reasoning_complete[i], finish_reasons[i]"
  },
  specificity: 4,
  detect: (row) => has(row, "problem") && Array.isArray(row["generations"]),
  read: (row) => {
    const generations = list(row, "generations") ?? []
    const at = (field: string, i: number): unknown => {
      const l = list(row, field)
      return l === undefined ? undefined : l[i]
    }
    const traces = generations.map((g, i): TraceContent => {
      if (typeof g !== "string") return rowError(`field \`generations\`: item ${i} is ${typeName(g)}, not a string`)
      const complete = at("is_reasoning_complete", i)
      const finish = at("finish_reasons", i)
      const metadata: Record<string, unknown> = { generation: i }
      for (const [key, value] of [
        ["correctness_math_verify", at("correctness_math_verify", i)],
        ["correctness_llama", at("correctness_llama", i)],
        ["is_reasoning_complete", complete],
        ["finish_reason", finish]
      ] as const) {
        if (value !== undefined && value !== null) metadata[key] = value
      }
      return { reply: g, metadata, cutOff: complete === false || finish === "length" }
    })
    return {
      question: required(row, "problem"),
      answer: realAnswer(text(row, "answer", true)) ?? boxedAnswer(text(row, "solution")),
      metadata: smallFields(row, (k) =>
        [
          "problem",
          "generations",
          "messages",
          "solution",
          "correctness_math_verify",
          "correctness_llama",
          "is_reasoning_complete",
          "finish_reasons"
        ].includes(k)
      ),
      traces
    }
  }
}

/**
 * NVIDIA's NeMo-Skills datasets: OpenMathReasoning (DeepSeek-R1's and QwQ-32B's long traces, one a
 * row, many rows a problem), OpenMathInstruct-2 and -1. `expected_answer` is the reference (for
 * OpenMathReasoning's `no_answer_extracted` problems, the traces' majority answer: `problem_type`
 * stays on the problem). GenSelect rows are refused: their solution compares candidates.
 */
const openMath: DatasetLayout = {
  name: "openmath",
  datasets: "nvidia/OpenMathReasoning (cot and tir splits), nvidia/OpenMathInstruct-2, nvidia/OpenMathInstruct-1",
  fields: {
    question: "problem (OpenMathInstruct-1: question)",
    answer: "expected_answer",
    trace: "generated_solution (<think> and solution split), by generation_model",
    "trace metadata": "inference_mode, is_correct, predicted_answer"
  },
  specificity: 4,
  detect: (row) => has(row, "generated_solution", "expected_answer") && (has(row, "problem") || has(row, "question")),
  read: (row) => {
    const mode = text(row, "inference_mode")
    if (mode === "genselect")
      return rowError(
        "a GenSelect row (inference_mode genselect): its generated_solution compares candidate solutions rather than solving the problem; import the cot split (--split cot)"
      )
    const metadata: Record<string, unknown> = {}
    for (const key of ["inference_mode", "is_correct", "predicted_answer"])
      if (row[key] !== undefined && row[key] !== null) metadata[key] = row[key]
    const perTrace = ["generated_solution", "generation_model", "inference_mode", "is_correct", "predicted_answer"]
    return {
      question: has(row, "problem") ? required(row, "problem") : required(row, "question"),
      answer: realAnswer(text(row, "expected_answer", true)),
      domain: "math",
      metadata: smallFields(row, (k) => ["problem", "question", "expected_answer", ...perTrace].includes(k)),
      traces: [{ reply: required(row, "generated_solution"), model: text(row, "generation_model"), metadata }]
    }
  }
}

/** DeepMath-103K: a question, its curated final answer, and three DeepSeek-R1 solutions. */
const deepMath: DatasetLayout = {
  name: "deepmath",
  datasets: "zwhe99/DeepMath-103K",
  fields: {
    question: "question",
    answer: "final_answer",
    trace: "r1_solution_1, r1_solution_2, r1_solution_3 (one trace each; reasoning and solution split at </think>)"
  },
  specificity: 4,
  detect: (row) => has(row, "question", "final_answer", "r1_solution_1"),
  read: (row) => {
    const traces: Array<TraceContent> = []
    for (const n of [1, 2, 3]) {
      const reply = text(row, `r1_solution_${n}`)
      if (reply !== undefined && reply.trim() !== "")
        traces.push({ reply, model: "DeepSeek-R1", metadata: { solution: n } })
    }
    return {
      question: required(row, "question"),
      answer: realAnswer(text(row, "final_answer", true)),
      domain: "math",
      metadata: smallFields(row, (k) => k === "question" || k === "final_answer" || k.startsWith("r1_solution_")),
      traces
    }
  }
}

/** A chat turn of the AM datasets: role, content, and the `info` the AM team attaches. */
const amTurn = (t: unknown, i: number): { role: string; content: string; info: Record<string, unknown> } => {
  const o = asRecord(t)
  if (typeof o["role"] !== "string" || typeof o["content"] !== "string")
    return rowError(`field \`messages\`: turn ${i} needs string \`role\` and \`content\``)
  const info = o["info"]
  return {
    role: o["role"],
    content: o["content"],
    info: info !== null && typeof info === "object" && !Array.isArray(info) ? (info as Record<string, unknown>) : {}
  }
}

/** The `<answer>…</answer>` wrapper the AM datasets put around the final solution. */
const withoutAnswerTags = (text: string | undefined): string | undefined => {
  if (text === undefined) return undefined
  const m = /^\s*<answer>([\s\S]*?)(?:<\/answer>\s*)?$/.exec(text)
  const inner = (m === null ? text : m[1]!).trim()
  return inner === "" ? undefined : inner
}

/**
 * The AM team's distilled sets (AM-DeepSeek-R1-Distilled-1.4M, AM-Thinking-v1-Distilled,
 * AM-Qwen3-Distilled): OpenAI-style `messages` whose turns carry an `info` object with the source,
 * the reference answer and the reply's thinking and answer apart; replies are
 * `<think>…</think> <answer>…</answer>`.
 */
const amDistilled: DatasetLayout = {
  name: "am-distilled",
  datasets: "a-m-team/AM-DeepSeek-R1-Distilled-1.4M, AM-Thinking-v1-Distilled, AM-Qwen3-Distilled",
  fields: {
    question: "messages[role=user].content",
    answer: "info.reference_answer, else the answer's last \\boxed{}",
    trace: "info.think_content + info.answer_content, else the reply split at </think> (<answer> tags removed)",
    "trace metadata": "the reply's info (source, scores, model), without the texts"
  },
  specificity: 3,
  detect: (row) =>
    Array.isArray(row["messages"]) &&
    (row["messages"] as Array<unknown>).some(
      (t) => typeof t === "object" && t !== null && typeof (t as { info?: unknown }).info === "object"
    ),
  read: (row) => {
    const turns = (row["messages"] as Array<unknown>).map(amTurn)
    const lastUser = turns.map((t) => t.role).lastIndexOf("user")
    if (lastUser < 0) return rowError("field `messages`: no user turn")
    const user = turns[lastUser]!
    const reply = turns.slice(lastUser + 1).find((t) => t.role === "assistant")
    const traces: Array<TraceContent> = []
    let solution: string | undefined
    if (reply !== undefined) {
      const replied = splitReasoning(reply.content)
      const think = reply.info["think_content"]
      const answer = reply.info["answer_content"]
      // The thinking and the answer as the info gives them apart, else as the reply's tags split it.
      const split =
        typeof think === "string" && think.trim() !== ""
          ? { reasoning: think.trim(), solution: typeof answer === "string" ? answer : replied.solution, cutOff: false }
          : replied.tags !== undefined
            ? replied
            : undefined
      solution = withoutAnswerTags(split?.solution)
      const model = reply.info["model_name"] ?? reply.info["model"]
      const metadata = smallFields(reply.info, (k) =>
        ["think_content", "answer_content", "reference_answer", "test_case", "model_name", "model"].includes(k)
      )
      const by = typeof model === "string" ? model : undefined
      // A reply without thinking, apart or tagged, is read as any other reply.
      traces.push(
        split === undefined
          ? { reply: withoutAnswerTags(reply.content) ?? reply.content, model: by, metadata }
          : { reasoning: split.reasoning, solution, model: by, metadata, cutOff: split.cutOff }
      )
    }
    const info = { ...user.info, ...reply?.info }
    const reference = info["reference_answer"]
    return {
      question: user.content,
      answer:
        realAnswer(typeof reference === "string" || typeof reference === "number" ? String(reference) : undefined) ??
        (solution === undefined ? undefined : lastBoxed(solution)),
      metadata: {
        ...smallFields(row, (k) => k === "messages"),
        // The source dataset and a code problem's test case (when small), from the turns' info.
        ...smallFields(info, (k) => (k !== "source" && k !== "test_case") || info[k] === null)
      },
      traces
    }
  }
}

/** NuminaMath-CoT and -1.5: a problem, a step-by-step solution whose last box is the answer, a source. */
const numinaMath: DatasetLayout = {
  name: "numinamath",
  datasets: "AI-MO/NuminaMath-CoT, AI-MO/NuminaMath-1.5",
  fields: {
    question: "problem",
    trace: "solution",
    answer: "answer (NuminaMath-1.5), else the solution's last \\boxed{}",
    source: "source"
  },
  specificity: 2,
  detect: (row) => has(row, "problem", "solution", "source") && !Array.isArray(row["generations"]),
  read: (row) => {
    const solution = required(row, "solution")
    return {
      question: required(row, "problem"),
      answer: realAnswer(text(row, "answer", true)) ?? boxedAnswer(solution),
      metadata: smallFields(row, (k) => ["problem", "solution", "messages"].includes(k)),
      traces: [{ reply: solution }]
    }
  }
}

/** s1K: a question, its reference solution, and a model's thinking trajectory with its final attempt (s1K-1.1: DeepSeek-R1's and Gemini's). */
const s1k: DatasetLayout = {
  name: "s1k",
  datasets: "simplescaling/s1K, simplescaling/s1K-1.1",
  fields: {
    question: "question",
    answer: "solution's last \\boxed{} (or the whole solution when short)",
    trace: "thinking_trajectories + attempt (s1K-1.1: deepseek_* and gemini_*)"
  },
  specificity: 4,
  detect: (row) =>
    has(row, "question") &&
    (Array.isArray(parseMaybeJson(row["thinking_trajectories"])) || has(row, "deepseek_thinking_trajectory")),
  read: (row) => {
    const solution = text(row, "solution", true)
    const answer =
      boxedAnswer(solution) ?? (solution !== undefined && solution.trim().length <= 64 ? solution.trim() : undefined)
    const traces: Array<TraceContent> = []
    const trajectories = list(row, "thinking_trajectories")
    if (trajectories !== undefined && trajectories.length > 0) {
      traces.push({
        reasoning: trajectories.map(String).join("\n\n"),
        solution: text(row, "attempt"),
        model: "gemini-2.0-flash-thinking"
      })
    }
    for (const [prefix, model] of [
      ["deepseek", "DeepSeek-R1"],
      ["gemini", "gemini-2.0-flash-thinking"]
    ] as const) {
      const reasoning = text(row, `${prefix}_thinking_trajectory`)
      if (reasoning !== undefined && reasoning.trim() !== "")
        traces.push({ reasoning, solution: text(row, `${prefix}_attempt`), model })
    }
    return {
      question: required(row, "question"),
      answer,
      domain: text(row, "cot_type") === "math" ? "math" : undefined,
      metadata: smallFields(
        row,
        (k) => k === "question" || k === "solution" || k.includes("thinking_trajector") || k.endsWith("attempt")
      ),
      traces
    }
  }
}

/** DeepSeek's API split, as exported by many distillation scripts: `reasoning_content` and `content`. */
const reasoningContent: DatasetLayout = {
  name: "reasoning-content",
  datasets: "rows saved from DeepSeek-style APIs (reasoning_content + content)",
  fields: {
    question: "question | problem | prompt",
    answer: "answer, else the content's last \\boxed{}",
    trace: "reasoning_content + content"
  },
  specificity: 3,
  detect: (row) => typeof row["reasoning_content"] === "string" && typeof row["content"] === "string",
  read: (row, options) => {
    const question = asText(pick(row, "question", options.map), "question")
    if (question === undefined || question.trim() === "")
      return rowError("missing a question (question, problem or prompt)")
    const content = required(row, "content")
    return {
      question,
      answer: realAnswer(asText(pick(row, "answer", options.map), "answer", true)) ?? boxedAnswer(content),
      metadata: smallFields(row, (k) =>
        ["question", "problem", "prompt", "answer", "reasoning_content", "content"].includes(k)
      ),
      traces: [{ reasoning: required(row, "reasoning_content"), solution: content }]
    }
  }
}

/** LiveCodeBench's code_generation_lite: stdin or functional tests, public and private (JSON, or base64 zlib pickle). */
const liveCodeBench: DatasetLayout = {
  name: "livecodebench",
  datasets: "livecodebench/code_generation_lite",
  fields: {
    question: "question_content (+ starter_code)",
    tests: "public_test_cases + private_test_cases",
    func_name: "metadata.func_name"
  },
  specificity: 4,
  detect: (row) => has(row, "question_content") && (has(row, "public_test_cases") || has(row, "private_test_cases")),
  read: (row) => {
    let tests: Array<TestCase>
    try {
      tests = [...decodeLcbTests(row["public_test_cases"]), ...decodeLcbTests(row["private_test_cases"])]
    } catch (e) {
      return rowError(`fields \`public_test_cases\`/\`private_test_cases\`: ${(e as Error).message}`)
    }
    const meta = parseMaybeJson(row["metadata"])
    const funcName = typeof meta === "object" && meta !== null ? (meta as { func_name?: unknown }).func_name : undefined
    const starter = text(row, "starter_code")
    const question = required(row, "question_content")
    return {
      question:
        starter !== undefined && starter.trim() !== ""
          ? `${question}\n\nStarter code:\n\`\`\`python\n${starter}\n\`\`\``
          : question,
      tests,
      domain: "code",
      metadata: {
        ...smallFields(row, (k) =>
          ["question_content", "public_test_cases", "private_test_cases", "metadata"].includes(k)
        ),
        ...(typeof funcName === "string" ? { func_name: funcName } : {})
      },
      traces: []
    }
  }
}

/**
 * APPS's and TACO's tests: `input_output` as JSON `{inputs, outputs, fn_name?}`; stdin strings, or
 * (with `fn_name`) argument lists, whose expected value may come wrapped in a one-item list.
 */
const appsTests = (
  row: Record<string, unknown>,
  field: string
): { readonly tests: Array<TestCase>; readonly funcName?: string | undefined } | undefined => {
  const raw = parseMaybeJson(row[field])
  if (raw === undefined || raw === null || raw === "") return undefined
  const io = asRecord(raw)
  const inputs = io["inputs"]
  const outputs = io["outputs"]
  if (!Array.isArray(inputs) || !Array.isArray(outputs) || inputs.length !== outputs.length)
    return rowError(`field \`${field}\`: expected {inputs: [...], outputs: [...]} of one length`)
  const fn = typeof io["fn_name"] === "string" ? io["fn_name"] : undefined
  const tests = inputs.map((input, i): TestCase => {
    const output = outputs[i]
    if (fn !== undefined) {
      const args = Array.isArray(input) ? input : [input]
      return {
        input: args.map((a) => JSON.stringify(a)).join("\n"),
        output: JSON.stringify(output),
        testtype: "functional",
        unwrapOutput: true
      }
    }
    const joined = (v: unknown) => (Array.isArray(v) ? v.map(String).join("\n") : String(v))
    return { input: joined(input), output: joined(output), testtype: "stdin" }
  })
  return { tests, funcName: fn }
}

const codeProblem = (
  name: "apps" | "taco",
  datasets: string,
  specificity: number,
  detect: DatasetLayout["detect"]
): DatasetLayout => ({
  name,
  datasets,
  fields: {
    question: "question (+ starter_code)",
    tests: "input_output: inputs/outputs (fn_name: a function's tests)",
    difficulty: "difficulty"
  },
  specificity,
  detect,
  read: (row) => {
    const tests = appsTests(row, "input_output")
    const starter = text(row, "starter_code")
    const question = required(row, "question")
    return {
      question:
        starter !== undefined && starter.trim() !== ""
          ? `${question}\n\nStarter code:\n\`\`\`python\n${starter}\n\`\`\``
          : question,
      tests: tests?.tests,
      domain: "code",
      metadata: {
        ...smallFields(row, (k) => ["question", "solutions", "input_output"].includes(k)),
        ...(tests?.funcName !== undefined ? { func_name: tests.funcName } : {})
      },
      traces: []
    }
  }
})

const apps = codeProblem("apps", "codeparrot/apps", 3, (row) => has(row, "question", "input_output", "problem_id"))
const taco = codeProblem(
  "taco",
  "BAAI/TACO",
  4,
  (row) => has(row, "question", "input_output") && (has(row, "skill_types") || has(row, "raw_tags"))
)

/** Everything else: the generic fields (question/problem/prompt, answer, solution/response, choices, tests, messages). */
const generic: DatasetLayout = {
  name: "generic",
  datasets: "any other JSONL, JSON, CSV or Parquet file",
  fields: {
    question: "question | problem | prompt | instruction | messages",
    answer: "answer | final_answer | gold | ...",
    trace: "solution | output | response | completion | ... (thought and solution split)",
    choices: "choices | options",
    tests: "tests | test_cases"
  },
  specificity: 0,
  detect: () => true,
  read: () => rowError("generic rows are read by mapRow")
}

export const DATASET_LAYOUTS: ReadonlyArray<DatasetLayout> = [
  openThoughts,
  openThoughtsMetadata,
  openR1Math,
  openMath,
  deepMath,
  amDistilled,
  numinaMath,
  s1k,
  reasoningContent,
  liveCodeBench,
  apps,
  taco,
  generic
]

export const datasetLayout = (name: LayoutName): DatasetLayout => DATASET_LAYOUTS.find((l) => l.name === name)!

/**
 * The layout a row has: the most specific one whose fields it has (generic when none). When two
 * layouts fit equally, the file is ambiguous and `--layout` must say which.
 */
export const detectLayout = (
  row: unknown
): Either.Either<DatasetLayout, { readonly candidates: ReadonlyArray<LayoutName> }> => {
  if (row === null || typeof row !== "object" || Array.isArray(row)) return Either.right(generic)
  const fits = DATASET_LAYOUTS.filter((l) => l.detect(row as Record<string, unknown>))
  const best = Math.max(...fits.map((l) => l.specificity))
  const top = fits.filter((l) => l.specificity === best)
  return top.length === 1 ? Either.right(top[0]!) : Either.left({ candidates: top.map((l) => l.name) })
}

/**
 * Maps a row with a named layout (or the generic one) onto its problem and traces. With `perRow`
 * (a layout that was detected, not asked for), a row that lacks the layout's fields is read with
 * the layout it has: a file that mixes layouts is read row by row.
 */
export const mapRowWithLayout = (
  layout: DatasetLayout,
  value: unknown,
  line: number,
  options: LayoutOptions,
  now: string,
  perRow = false
): Either.Either<MappedRow, string> => {
  let use = layout
  if (
    perRow &&
    value !== null &&
    typeof value === "object" &&
    !Array.isArray(value) &&
    !layout.detect(value as Record<string, unknown>)
  ) {
    use = Either.getOrElse(detectLayout(value), () => generic)
  }
  return use.name === "generic"
    ? mapRow(value, line, options, now)
    : layoutRow(() => use.read(asRecord(value), options), line, options, now)
}
