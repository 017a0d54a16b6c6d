import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Item } from "../schema/item.js"
import { type Domain, Problem, problemIdentity, type TestCase } from "../schema/problem.js"
import { Trace } from "../schema/trace.js"
import { describeParseError } from "../schema/errors.js"
import { contentId } from "../util/hash.js"
import { lastBoxed } from "../util/latex.js"
import { splitReasoning } from "./reasoningText.js"
import { LETTERS, seededShuffle } from "../util/choices.js"

/** What a row maps onto; `--map target=source` names the source field (a dotted path) for each. */
export const MapTargets = ["question", "answer", "trace", "choices", "tests", "domain", "system", "id"] as const
export type MapTarget = (typeof MapTargets)[number]
export type FieldMap = Partial<Record<MapTarget, string>>

/** Common public layouts: the first field present wins. */
const DEFAULT_FIELDS: Record<MapTarget, ReadonlyArray<string>> = {
  question: ["question", "problem", "prompt", "instruction", "query", "question_content", "Question", "Problem"],
  answer: ["answer", "final_answer", "gold", "reference_answer", "target", "Correct Answer", "Answer"],
  trace: ["solution", "output", "response", "completion", "generation", "reasoning", "cot"],
  choices: ["choices", "options"],
  tests: ["tests", "test_cases", "public_test_cases"],
  domain: ["domain"],
  system: ["system"],
  id: ["id", "unique_id", "question_id", "problem_id", "task_id"]
}

export interface LayoutOptions {
  readonly map: FieldMap
  readonly domain?: Domain | undefined
  /** `file` for the source field; the line is appended. */
  readonly file: string
  /**
   * Which traces are long (candidates for long-to-short): more reasoning tokens than `above`,
   * counted by `count` (the student's tokenizer). Without it, a trace with a separate thinking
   * part (`<think>`, `<|begin_of_thought|>`) is long.
   */
  readonly long?: { readonly above: number; readonly count: (text: string) => number } | undefined
}

export interface MappedRow {
  readonly problem: Problem
  /** The traces the row carries (none for a bare problem; one per generation where a layout has several). */
  readonly items: ReadonlyArray<Item>
}

/** What a layout reads from a row, before it becomes a Problem and Items. */
export interface RowContent {
  readonly question: string
  readonly answer?: string | undefined
  readonly choices?: ReadonlyArray<string> | undefined
  readonly tests?: ReadonlyArray<TestCase> | undefined
  readonly domain?: Domain | undefined
  readonly metadata: Record<string, unknown>
  readonly traces: ReadonlyArray<TraceContent>
}

/** One reasoning trace of a row: a whole reply (split here), or its reasoning and solution given apart. */
export type TraceContent =
  | {
      readonly reply: string
      readonly model?: string | undefined
      readonly metadata?: Readonly<Record<string, unknown>> | undefined
      readonly cutOff?: boolean | undefined
    }
  | {
      readonly reasoning: string
      readonly solution?: string | undefined
      readonly model?: string | undefined
      readonly metadata?: Readonly<Record<string, unknown>> | undefined
      readonly cutOff?: boolean | undefined
    }

const get = (row: Record<string, unknown>, path: string): unknown => {
  if (path in row) return row[path]
  let cur: unknown = row
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}

export const typeName = (v: unknown) =>
  v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `a ${typeof v}`

class RowError {
  constructor(readonly reason: string) {}
}

export const pick = (
  row: Record<string, unknown>,
  target: MapTarget,
  map: FieldMap
): { field: string; value: unknown } | undefined => {
  const mapped = map[target]
  if (mapped !== undefined) {
    const value = get(row, mapped)
    return value === undefined || value === null ? undefined : { field: mapped, value }
  }
  for (const field of DEFAULT_FIELDS[target]) {
    const value = row[field]
    if (value !== undefined && value !== null && value !== "") return { field, value }
  }
  return undefined
}

/** A text field; numbers are accepted only where `numbersOk` (answers and ids often are numbers). */
export const asText = (
  found: { field: string; value: unknown } | undefined,
  what: string,
  numbersOk = false
): string | undefined => {
  if (found === undefined) return undefined
  if (typeof found.value === "string") return found.value
  if (numbersOk && (typeof found.value === "number" || typeof found.value === "boolean")) return String(found.value)
  throw new RowError(`field \`${found.field}\` (${what}): expected a string, got ${typeName(found.value)}`)
}

export const parseMaybeJson = (value: unknown): unknown => {
  if (typeof value === "string") {
    const t = value.trim()
    if (t.startsWith("[") || t.startsWith("{")) {
      try {
        return JSON.parse(t)
      } catch {
        return value
      }
    }
  }
  return value
}

const Messages = Schema.Array(Schema.Struct({ role: Schema.String, content: Schema.String }))
const decodeMessages = Schema.decodeUnknownEither(Messages)
const TestCases = Schema.Array(
  Schema.Struct({
    input: Schema.String,
    output: Schema.String,
    testtype: Schema.optionalWith(Schema.Literal("stdin", "functional"), { default: () => "stdin" as const })
  })
)
const decodeTests = Schema.decodeUnknownEither(TestCases)
const decodeProblem = Schema.decodeUnknownEither(Problem)

const KNOWN = new Set(
  Object.values(DEFAULT_FIELDS)
    .flat()
    .concat([
      "messages",
      "reasoning_content",
      "answer_index",
      "input",
      "Incorrect Answer 1",
      "Incorrect Answer 2",
      "Incorrect Answer 3"
    ])
)
const METADATA_VALUE_LIMIT = 4096

/**
 * Maps one parsed row of a generic layout (the fields of `DEFAULT_FIELDS`, OpenAI chat messages,
 * Alpaca, GPQA's official columns, `reasoning_content`) onto a Problem and, when the row carries a
 * reasoning trace, an Item holding it. Returns the reason when the row cannot be imported.
 */
export const mapRow = (
  value: unknown,
  line: number,
  options: LayoutOptions,
  now: string
): Either.Either<MappedRow, string> => layoutRow(() => genericContent(value, options), line, options, now)

/** Runs a layout's reading of a row and builds its records; a row that cannot be read gives its reason. */
export const layoutRow = (
  read: () => RowContent,
  line: number,
  options: LayoutOptions,
  now: string
): Either.Either<MappedRow, string> => {
  try {
    return Either.right(toRecords(read(), line, options, now))
  } catch (e) {
    if (e instanceof RowError) return Either.left(e.reason)
    throw e
  }
}

/** A row-level problem, named for the rejects list. */
export const rowError = (reason: string): never => {
  throw new RowError(reason)
}

const genericContent = (value: unknown, options: LayoutOptions): RowContent => {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new RowError(`expected an object, got ${typeName(value)}`)
  }
  const row = value as Record<string, unknown>
  const map = options.map
  const metadata: Record<string, unknown> = {}

  // OpenAI chat layout: the last user turn is the question, the assistant turn after it the trace.
  let messageQuestion: string | undefined
  let messageTrace: string | undefined
  if (row["messages"] !== undefined && map.question === undefined) {
    const decoded = decodeMessages(row["messages"])
    if (Either.isLeft(decoded)) throw new RowError(`field \`messages\`: ${describeParseError(decoded.left)}`)
    const msgs = decoded.right
    const lastUser = msgs.map((m) => m.role).lastIndexOf("user")
    if (lastUser >= 0) messageQuestion = msgs[lastUser]!.content
    const reply = msgs.slice(lastUser + 1).find((m) => m.role === "assistant")
    if (reply !== undefined) messageTrace = reply.content
    const system = msgs.find((m) => m.role === "system")
    if (system !== undefined) metadata["system"] = system.content
  }

  let question = messageQuestion ?? asText(pick(row, "question", map), "question")
  if (question === undefined || question.trim().length === 0) {
    const hint =
      map.question !== undefined
        ? `field \`${map.question}\``
        : "a question (question, problem, prompt, instruction or messages)"
    throw new RowError(`missing ${hint}`)
  }
  // Alpaca layout: instruction plus optional input.
  if (
    map.question === undefined &&
    messageQuestion === undefined &&
    row["instruction"] !== undefined &&
    typeof row["input"] === "string" &&
    row["input"].trim() !== ""
  ) {
    question = `${question}\n\n${row["input"]}`
  }

  const answerFound = pick(row, "answer", map)
  let answer = asText(answerFound, "answer", true)
  // A reference answer given as `\boxed{X}` is X.
  if (answer !== undefined && /^\s*\\boxed\{/.test(answer)) answer = lastBoxed(answer) ?? answer
  const traceFound = pick(row, "trace", map)
  const traceText = messageTrace ?? asText(traceFound, "trace")
  // `solution` alone: it is the trace, and its final solution's last \boxed{} the reference answer.
  if (answer === undefined && traceText !== undefined) {
    const split = splitReasoning(traceText)
    answer = lastBoxed(split.solution ?? "") ?? lastBoxed(traceText)
  }

  // Multiple choice: a list of options, or GPQA's official columns.
  let choices: Array<string> | undefined
  const choicesFound = pick(row, "choices", map)
  if (choicesFound !== undefined) {
    const parsed = parseMaybeJson(choicesFound.value)
    if (!Array.isArray(parsed) || !parsed.every((c) => typeof c === "string" || typeof c === "number")) {
      throw new RowError(
        `field \`${choicesFound.field}\` (choices): expected a list of strings, got ${typeName(parsed)}`
      )
    }
    choices = parsed.map(String)
    const idx = row["answer_index"]
    if (typeof idx === "number" && (answer === undefined || !/^[A-Z]$/.test(answer.trim()))) answer = LETTERS[idx]
    else if (answer !== undefined && !/^[A-Z]$/.test(answer.trim())) {
      const at = choices.findIndex((c) => c.trim() === answer!.trim())
      if (at >= 0) answer = LETTERS[at]
    }
  } else if (row["Correct Answer"] !== undefined && row["Incorrect Answer 1"] !== undefined) {
    const correct = String(row["Correct Answer"]).trim()
    const options = [
      correct,
      ...[1, 2, 3].map((i) => String(row[`Incorrect Answer ${i}`] ?? "").trim()).filter((s) => s !== "")
    ]
    choices = seededShuffle(options, question)
    answer = LETTERS[choices.indexOf(correct)]
  }

  let tests: Array<TestCase> | undefined
  const testsFound = pick(row, "tests", map)
  if (testsFound !== undefined) {
    const decoded = decodeTests(parseMaybeJson(testsFound.value))
    if (Either.isLeft(decoded))
      throw new RowError(`field \`${testsFound.field}\` (tests): ${describeParseError(decoded.left)}`)
    tests = [...decoded.right]
  }

  const domainText = asText(pick(row, "domain", map), "domain")
  const domain = domainText === "math" || domainText === "code" || domainText === "science" ? domainText : undefined

  const sourceId = asText(pick(row, "id", map), "id", true)
  if (sourceId !== undefined) metadata["sourceId"] = sourceId
  const system = asText(pick(row, "system", map), "system")
  if (system !== undefined) metadata["system"] = system
  const used = new Set(Object.values(map))
  Object.assign(
    metadata,
    smallFields(row, (k) => KNOWN.has(k) || used.has(k))
  )

  const reasoningContent = typeof row["reasoning_content"] === "string" ? row["reasoning_content"] : undefined
  const traces: Array<TraceContent> =
    reasoningContent !== undefined
      ? [{ reasoning: reasoningContent, solution: traceText }]
      : traceText !== undefined
        ? [{ reply: traceText }]
        : []
  return { question, answer, choices, tests, domain, metadata, traces }
}

/** A row's other fields, small enough to keep as the problem's metadata. */
export const smallFields = (row: Record<string, unknown>, skip: (key: string) => boolean): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(row)) {
    if (skip(k) || v === undefined) continue
    const size = typeof v === "string" ? v.length : (JSON.stringify(v)?.length ?? 0)
    if (size <= METADATA_VALUE_LIMIT) out[k] = v
  }
  return out
}

/** The domain a row's content implies: code with tests, science with choices or a letter answer, else math. */
const domainOf = (c: RowContent, given: Domain | undefined): Domain =>
  given ??
  c.domain ??
  (c.tests !== undefined && c.tests.length > 0
    ? "code"
    : c.choices !== undefined || (c.answer !== undefined && /^[A-J]$/.test(c.answer.trim()))
      ? "science"
      : "math")

/** A row's content as records: its Problem, and an Item for each of its traces. */
export const toRecords = (c: RowContent, line: number, options: LayoutOptions, now: string): MappedRow => {
  const identity = problemIdentity({
    domain: domainOf(c, options.domain),
    question: c.question,
    answer: c.answer,
    choices: c.choices,
    tests: c.tests
  })
  const decoded = decodeProblem({
    id: contentId("p_", identity),
    ...identity,
    source: `${options.file}:${line}`,
    metadata: c.metadata
  })
  if (Either.isLeft(decoded)) throw new RowError(describeParseError(decoded.left as ParseResult.ParseError))
  const problem = decoded.right
  const items = c.traces.map((t) => {
    const split =
      "reply" in t
        ? splitReasoning(t.reply)
        : { reasoning: t.reasoning, solution: t.solution, tags: "think" as const, cutOff: t.cutOff ?? false }
    const cutOff = split.cutOff || t.cutOff === true
    const thinking = split.tags !== undefined && split.reasoning !== ""
    const reasoning = thinking ? split.reasoning : (split.solution ?? split.reasoning)
    const long = options.long !== undefined ? options.long.count(reasoning) > options.long.above : thinking
    // Built from fields already checked above: the constructors' re-validation is skipped (it
    // dominated import time).
    const trace = new Trace(
      {
        reasoning,
        finalAnswer: thinking ? split.solution : lastBoxed(reasoning),
        origin: "imported",
        ...(t.model !== undefined ? { model: t.model } : {}),
        long,
        ...(cutOff ? { cutOff: true } : {})
      },
      true
    )
    return new Item(
      {
        id: contentId("i_", {
          problem: problem.id,
          origin: "imported",
          reasoning: trace.reasoning,
          finalAnswer: trace.finalAnswer
        }) as Item["id"],
        problemId: problem.id,
        stage: "collect",
        fate: "pending",
        trace,
        ...(t.metadata !== undefined ? { metadata: t.metadata } : {}),
        rounds: [],
        createdAt: now,
        updatedAt: now
      },
      true
    )
  })
  return { problem, items }
}

/** Parses `question=problem,answer=solution` into a field map, naming what is wrong. */
export const parseFieldMap = (text: string | undefined): Either.Either<FieldMap, string> => {
  const out: Record<string, string> = {}
  if (text === undefined || text.trim() === "") return Either.right(out)
  for (const pair of text.split(",")) {
    const [target, source, ...extra] = pair.split("=").map((s) => s.trim())
    if (target === undefined || source === undefined || source === "" || extra.length > 0) {
      return Either.left(`--map: \`${pair}\` is not of the form target=source`)
    }
    if (!(MapTargets as ReadonlyArray<string>).includes(target)) {
      return Either.left(`--map: unknown target \`${target}\`; known targets: ${MapTargets.join(", ")}`)
    }
    out[target] = source
  }
  return Either.right(out)
}
