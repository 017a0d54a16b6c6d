import * as Effect from "effect/Effect"
import { EvalError } from "./errors.js"
import { createHash } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import {
  decodeLcbTests,
  extractLetter,
  gradeMath,
  foldName,
  type InputFormat,
  type VerificationFailure,
  LETTERS,
  lastBoxed,
  letteredChoices,
  MATH_GRADER_VERSION,
  MathGrader,
  MATH_INSTRUCTION,
  officialGpqaLetter,
  officialMmluProLetter,
  readRows,
  seededShuffle,
  START,
  type TestCase
} from "@fastcot/core"
import { extractCode, runTests } from "./codeTests.js"
import type { Sandbox } from "./sandbox.js"

/** One benchmark question, in a shape every benchmark maps onto. */
export interface EvalItem {
  readonly id: string
  readonly question: string
  readonly answer?: string | undefined
  readonly choices?: ReadonlyArray<string> | undefined
  readonly tests?: ReadonlyArray<TestCase> | undefined
  readonly funcName?: string | undefined
  readonly starterCode?: string | undefined
  /** The prompt is given whole by the data (GPQA's derived layout). */
  readonly prompt?: string | undefined
  /** Subject, level, category: results are broken down by this, and `--limit` samples across it. */
  readonly group?: string | undefined
  /** When the problem was published (LiveCodeBench's `contest_date`): `--lcb-window` selects by it. */
  readonly date?: string | undefined
}

export interface Grade {
  readonly correct: boolean
  readonly extracted?: string | undefined
  /** The answer in one spelling, for majority voting: equal keys are the same answer. */
  readonly key?: string | undefined
  /** Why it is not correct: `no-answer` when nothing could be extracted (never a guess), `timeout` past the grader's time cap. */
  readonly failure?: VerificationFailure | undefined
  /** What the grader saw, for people: the extracted answer against the reference, a failing test. */
  readonly reason: string
}

/**
 * How a multiple-choice answer is read: `fastcot` (the last committed answer, never a guess) or
 * `official` (the benchmark's published scorer, rule for rule, so scores stand beside published
 * ones; its random guess for a missing letter left out). Math and code benchmarks grade the same
 * either way.
 */
export type Extraction = "fastcot" | "official"

export interface LoadContext {
  /** Seeds any shuffle the loader does (GPQA's official layout); results.json records it. */
  readonly seed: number
}

/**
 * A benchmark is data + prompt + extractor/grader, each replaceable: implement this interface to
 * add one (see `registerBenchmark`).
 */
export interface Benchmark {
  readonly name: string
  readonly kind: "math" | "multiple-choice" | "code"
  /** Files tried in order under `--data DIR`. */
  readonly files: ReadonlyArray<string>
  readonly load: (rows: ReadonlyArray<Record<string, unknown>>, context: LoadContext) => ReadonlyArray<EvalItem>
  readonly prompt: (item: EvalItem) => string
  readonly grade: (item: EvalItem, output: string, extraction: Extraction) => Effect.Effect<Grade, never, Sandbox>
  /** What `--extraction official` reproduces, for results.json; absent where it grades as fastcot does. */
  readonly officialScorer?: string | undefined
}

export const PROMPT_VERSION = "eval/v1"
/** The graders' version: it changes whenever a verdict can change (see `MATH_GRADER_VERSION`). */
export const GRADER_VERSION = MATH_GRADER_VERSION
const str = (v: unknown) => (v === undefined || v === null ? undefined : String(v))

/** The key majority voting groups math answers by: the parsed tree in one spelling, else the text. */
const mathKey = (extracted: string): string => {
  try {
    return MathGrader.show(MathGrader.parseLatex(extracted))
  } catch {
    return extracted.replace(/\s+/g, "")
  }
}

const gradeMathItem = (item: EvalItem, output: string): Effect.Effect<Grade> =>
  Effect.sync(() => {
    if (item.answer === undefined || item.answer.trim() === "")
      return { correct: false, failure: "no-reference", reason: "no-reference: the item has no answer" }
    const g = gradeMath(item.answer, output, { question: item.question })
    const key = g.extracted !== undefined ? mathKey(g.extracted) : undefined
    return {
      correct: g.verdict === "correct",
      failure: g.verdict === "correct" ? undefined : g.verdict === "wrong" ? "answer-mismatch" : g.verdict,
      extracted: g.extracted,
      key,
      reason: g.verdict === "correct" ? "equivalent to the reference" : g.reason
    }
  })

const letterGrade = (item: EvalItem, letter: string | undefined): Grade =>
  letter === undefined
    ? { correct: false, failure: "no-answer", reason: "no-answer" }
    : {
        correct: letter === item.answer,
        failure: letter === item.answer ? undefined : "answer-mismatch",
        extracted: letter,
        key: letter,
        reason: letter === item.answer ? "letter matches" : "wrong letter"
      }

/** MMLU-Pro: fastcot's reading, or the official script's three rules (its random guess left out). */
const gradeMmluPro = (item: EvalItem, output: string, extraction: Extraction): Effect.Effect<Grade> =>
  Effect.sync(() =>
    letterGrade(
      item,
      extraction === "official"
        ? officialMmluProLetter(output)?.letter
        : onlyLetters(extractLetter(output), "ABCDEFGHIJ")
    )
  )

/** GPQA: fastcot's reading, or the GPQA baselines' `parse_sampled_answer`. */
const gradeGpqa = (item: EvalItem, output: string, extraction: Extraction): Effect.Effect<Grade> =>
  Effect.sync(() =>
    letterGrade(
      item,
      extraction === "official" ? officialGpqaLetter(output) : onlyLetters(extractLetter(output), "ABCD")
    )
  )

const onlyLetters = (letter: string | undefined, allowed: string) =>
  letter !== undefined && allowed.includes(letter) ? letter : undefined

export const math500: Benchmark = {
  name: "math500",
  kind: "math",
  files: ["math500/test.jsonl", "math500/test.parquet", "MATH-500/test.jsonl"],
  load: (rows) =>
    rows.map((r, i) => ({
      id: str(r["unique_id"]) ?? String(i),
      question: String(r["problem"]),
      answer: str(r["answer"]),
      group: str(r["subject"])
    })),
  prompt: (item) => `${item.question}\n\n${MATH_INSTRUCTION}`,
  grade: gradeMathItem
}

export const aime24: Benchmark = {
  name: "aime24",
  kind: "math",
  files: ["aime24/test.jsonl", "aime24/train.jsonl", "aime24/test.parquet"],
  load: (rows) =>
    rows.map((r, i) => ({
      id: str(r["id"] ?? r["ID"]) ?? String(i),
      question: String(r["problem"] ?? r["Problem"]),
      answer: str(r["answer"] ?? r["Answer"])
    })),
  prompt: (item) => `${item.question}\n\n${MATH_INSTRUCTION}`,
  grade: gradeMathItem
}

export const gpqaDiamond: Benchmark = {
  name: "gpqa_diamond",
  kind: "multiple-choice",
  files: ["gpqa_diamond/test.jsonl", "gpqa_diamond/gpqa_diamond.csv", "gpqa/gpqa_diamond.csv"],
  officialScorer:
    "GPQA baselines' parse_sampled_answer: 'answer is (X)', 'Answer: (X)', 'answer: (X)', 'answer (X)', '(X)', the first that matches with X in A-D",
  load: (rows, { seed }) =>
    rows.map((r, i) => {
      if (r["Question"] !== undefined) {
        // The official layout: choices shuffled with `--seed` and the question (a fixed order per question and seed).
        const correct = String(r["Correct Answer"]).trim()
        const options = seededShuffle(
          [correct, ...[1, 2, 3].map((k) => String(r[`Incorrect Answer ${k}`] ?? "").trim())],
          `${seed}:${String(r["Question"])}`
        )
        return {
          id: str(r["Record ID"]) ?? String(i),
          question: String(r["Question"]).trim(),
          choices: options,
          answer: LETTERS[options.indexOf(correct)]
        }
      }
      const answer = lastBoxed(String(r["answer"])) ?? String(r["answer"]).trim()
      return { id: String(i), question: String(r["prompt"]), prompt: String(r["prompt"]), answer }
    }),
  prompt: (item) =>
    item.prompt ??
    `${item.question}\n\n${letteredChoices(item.choices!, "paren")}\n\nPlease reason step by step, and put the letter of the correct option within \\boxed{}.`,
  grade: gradeGpqa
}

export const mmluPro: Benchmark = {
  name: "mmlu_pro",
  officialScorer:
    "MMLU-Pro evaluate_from_api.py: first 'answer is \\(?([A-J])\\)?', else '.*[aA]nswer:\\s*([A-J])', else the last standalone A-J; no random guess",
  kind: "multiple-choice",
  files: ["mmlu_pro/test.jsonl", "mmlu_pro/test.parquet", "MMLU-Pro/test.parquet"],
  load: (rows) =>
    rows.map((r, i) => ({
      id: str(r["question_id"]) ?? String(i),
      question: String(r["question"]),
      choices: (Array.isArray(r["options"]) ? r["options"] : JSON.parse(String(r["options"]))) as Array<string>,
      answer: str(r["answer"]),
      group: str(r["category"])
    })),
  prompt: (item) =>
    `${item.question}\n\n${letteredChoices(item.choices!, "paren")}\n\nPlease reason step by step, then finish with "The answer is (X)" where X is the letter of the correct option.`,
  grade: gradeMmluPro
}

export const liveCodeBench: Benchmark = {
  name: "livecodebench",
  kind: "code",
  files: ["livecodebench/test.jsonl", "livecodebench/release_v2.jsonl", "livecodebench/test2.jsonl"],
  load: (rows) =>
    rows.map((r, i) => {
      const meta =
        typeof r["metadata"] === "string" && r["metadata"] !== ""
          ? (JSON.parse(r["metadata"]) as { func_name?: string })
          : {}
      const tests = [...decodeLcbTests(r["public_test_cases"]), ...decodeLcbTests(r["private_test_cases"])]
      return {
        id: str(r["question_id"]) ?? String(i),
        question: String(r["question_content"]),
        tests,
        funcName: meta.func_name,
        starterCode: str(r["starter_code"]) || undefined,
        group: str(r["difficulty"]),
        date: str(r["contest_date"])
      }
    }),
  // LiveCodeBench's own generation prompt formats, for functional (starter code) and stdin problems.
  prompt: (item) =>
    item.starterCode !== undefined
      ? `### Question:\n${item.question}\n\n### Format: You will use the following starter code to write the solution to the problem and enclose your code within delimiters.\n\`\`\`python\n${item.starterCode}\n\`\`\`\n\n### Answer: (use the provided format with backticks)\n`
      : `### Question:\n${item.question}\n\n### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n\`\`\`python\n# YOUR CODE HERE\n\`\`\`\n\n### Answer: (use the provided format with backticks)\n`,
  grade: (item, output) => {
    const code = extractCode(output)
    if (code === undefined)
      return Effect.succeed({ correct: false, failure: "no-answer" as const, reason: "no-answer" })
    return runTests(code, item.tests ?? [], item.funcName).pipe(
      Effect.map((o): Grade => ({
        correct: o.passed,
        failure: o.passed ? undefined : "tests-failed",
        extracted: code.slice(0, 200),
        key: code.replace(/\s+/g, " "),
        reason: o.passed ? `all ${o.ran} tests pass` : o.failure!.reason
      }))
    )
  }
}

const registry = new Map<string, Benchmark>(
  [math500, aime24, gpqaDiamond, mmluPro, liveCodeBench].map((b) => [b.name, b])
)

/** Adds a user-defined benchmark (the plugin interface). */
export const registerBenchmark = (b: Benchmark) => void registry.set(b.name, b)
export const benchmark = (name: string): Benchmark | undefined => registry.get(name)
export const benchmarkNames = () => [...registry.keys()]

/**
 * A benchmark's registered name from the name as people write it: `MATH-500`, `GPQA-Diamond`,
 * `MMLU-Pro`, `AIME 2024`, `LiveCodeBench v2`, in any case; undefined when it names none.
 */
export const benchmarkNamed = (text: string): string | undefined => {
  const folded = foldName(text)
  const aliases: Readonly<Record<string, string>> = { aime2024: "aime24", livecodebenchv2: "livecodebench" }
  return benchmarkNames().find((n) => foldName(n) === folded) ?? aliases[folded]
}

const formatOf = (file: string): InputFormat =>
  file.endsWith(".parquet") ? "parquet" : file.endsWith(".csv") ? "csv" : file.endsWith(".json") ? "json" : "jsonl"

/** Finds and reads a benchmark's file under `dir`; returns its items and the file's SHA-256. */
export const loadBenchmark = (b: Benchmark, dir: string, context: LoadContext = { seed: 0 }) =>
  Effect.tryPromise({
    try: async () => {
      const file = b.files.map((f) => join(dir, f)).find((f) => existsSync(f))
      if (file === undefined)
        throw new EvalError({
          reason: "no-data",
          message: `no data for ${b.name} under ${dir} (looked for ${b.files.join(", ")})`
        })
      const rows: Array<Record<string, unknown>> = []
      for await (const batch of readRows(formatOf(file), file, START, 5000)) {
        for (const row of batch.rows) if (row.error === undefined) rows.push(row.value as Record<string, unknown>)
      }
      return {
        file,
        sha256: createHash("sha256").update(readFileSync(file)).digest("hex"),
        items: b.load(rows, context)
      }
    },
    catch: (e) =>
      e instanceof EvalError
        ? e
        : new EvalError({ reason: "unreadable-data", message: e instanceof Error ? e.message : String(e) })
  })
