import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { parquetWriteFile } from "hyparquet-writer"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  LanguageModel,
  makeLanguageModel,
  openAiProvider,
  QwenTokenCounterLive,
  SqliteRunStoreLive
} from "@fastcot/core"
import { startScriptedServer } from "@fastcot/core/testing"
import { decodeLcbTests, unpickleString } from "@fastcot/core"
import { GRADER_VERSION } from "./benchmarks.js"
import { evaluate, type EvalOptions, parseDateWindow, stratifiedSample } from "./evaluate.js"
import { passAtK } from "./metrics.js"
import { disagreements, disagreementsMarkdown, htmlReport, markdownReport } from "./report.js"
import { SandboxLive } from "./sandbox.js"

const SHARED = join(__dirname, "..", "..", "..", "..", "shared", "data")
let tmp: string
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "fastcot-eval-"))
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** No model: for grading saved predictions. */
const noModel = Layer.succeed(LanguageModel, {
  roles: [],
  modelOf: () => "none",
  complete: () => Effect.die("no model in a predictions run"),
  stats: Effect.succeed([])
})
const graders = Layer.mergeAll(QwenTokenCounterLive, SandboxLive())
const base = (over: Partial<EvalOptions>): EvalOptions => ({
  benches: [],
  dataDir: SHARED,
  outDir: join(tmp, "out"),
  model: "m",
  samples: 1,
  preset: "greedy",
  concurrency: 4,
  ...over
})

describe("metrics", () => {
  it("computes unbiased pass@k, never over the samples drawn", () => {
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3)
    expect(passAtK(10, 0, 5)).toBe(0)
    expect(passAtK(10, 10, 5)).toBe(1)
    expect(passAtK(5, 1, 5)).toBe(1)
    expect(passAtK(4, 1, 64)).toBe(1)
    expect(passAtK(10, 2, 2)).toBeCloseTo(1 - (8 / 10) * (7 / 9))
  })
})

describe("evaluation as the field reports it", () => {
  it("computes maj@k beside pass@k: an item counts when its most frequent answer is right", async () => {
    const { summarise } = await import("./metrics.js")
    const o = (itemId: string, key: string | undefined, correct: boolean) => ({
      itemId,
      key,
      correct,
      noAnswer: key === undefined,
      truncated: false,
      outputTokens: 10
    })
    const s = summarise([
      o("a", "1", true),
      o("a", "2", false),
      o("a", "1", true),
      o("b", "3", false),
      o("b", "3", false),
      o("b", "4", true),
      o("c", undefined, false),
      o("c", undefined, false),
      o("c", "5", true)
    ])
    expect(s.majAtK).toEqual({ "maj@3": 2 / 3 })
    expect(s.accuracy).toBeCloseTo((2 / 3 + 1 / 3 + 1 / 3) / 3)
    expect(s.stderr).toBeCloseTo(Math.sqrt(((2 / 3 - 4 / 9) ** 2 + 2 * (1 / 3 - 4 / 9) ** 2) / 2 / 3))
    expect(s.ci95).toBeCloseTo(1.96 * s.stderr!)
  })

  it("--limit takes a seeded sample stratified by subject, in proportion to each subject's size", () => {
    const items = Array.from({ length: 100 }, (_, i) => ({
      id: String(i),
      question: "q",
      group: i < 70 ? "algebra" : i < 90 ? "geometry" : "counting"
    }))
    const pick = stratifiedSample(items, 10, 1)
    expect(pick).toHaveLength(10)
    const count = (g: string) => pick.filter((i) => i.group === g).length
    expect([count("algebra"), count("geometry"), count("counting")]).toEqual([7, 2, 1])
    // The same seed picks the same items, another seed others; the file's order is kept.
    expect(stratifiedSample(items, 10, 1).map((i) => i.id)).toEqual(pick.map((i) => i.id))
    expect(stratifiedSample(items, 10, 2).map((i) => i.id)).not.toEqual(pick.map((i) => i.id))
    expect(pick.map((i) => Number(i.id))).toEqual([...pick.map((i) => Number(i.id))].sort((a, b) => a - b))
    expect(stratifiedSample(items, 500, 1)).toHaveLength(100)
  })

  it("reads LiveCodeBench date windows", () => {
    expect(parseDateWindow("2023-05..2024-05")).toEqual({ from: "2023-05", to: "2024-05" })
    expect(parseDateWindow("2024-01..")).toEqual({ from: "2024-01", to: "9999-12" })
    expect(parseDateWindow("may..june")).toBeUndefined()
  })

  it("--samples absent: the r1 preset takes open-r1's samples per benchmark; a truncated reply is no answer", async () => {
    const rows = readFileSync(join(SHARED, "aime24", "test.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: number; answer: string })
    const file = join(tmp, "aime-trunc.jsonl")
    // A right answer, but cut at max_tokens: not graded, counted as no answer and as truncated.
    writeFileSync(
      file,
      rows
        .map((r, i) => JSON.stringify({ bench: "aime24", id: r.id, output: `\\boxed{${r.answer}}`, truncated: i < 5 }))
        .join("\n")
    )
    const r = await Effect.runPromise(
      evaluate(
        base({ benches: ["aime24"], predictions: file, outDir: join(tmp, "trunc"), samples: undefined, preset: "r1" })
      ).pipe(Effect.provide(Layer.merge(graders, noModel)))
    )
    expect(r.benchmarks[0]!.summary).toMatchObject({ items: 30, accuracy: 25 / 30, noAnswer: 5, truncated: 5 })
    const { PRESET_SAMPLES } = await import("./evaluate.js")
    expect(PRESET_SAMPLES.r1).toMatchObject({ aime24: 64, math500: 4, gpqa_diamond: 8, livecodebench: 16 })
  })
})

describe("per-item drill-down", () => {
  it("lists items one run gets right and another wrong, by majority of samples", () => {
    const a = [
      { bench: "b", id: "1", correct: true, extracted: "4" },
      { bench: "b", id: "2", correct: true },
      { bench: "b", id: "3", correct: false }
    ]
    const b = [
      { bench: "b", id: "1", correct: false, extracted: "5" },
      { bench: "b", id: "2", correct: true },
      { bench: "b", id: "3", correct: false },
      { bench: "b", id: "4", correct: true }
    ]
    const list = disagreements([
      { model: "A", generations: a },
      { model: "B", generations: b }
    ])
    expect(list).toEqual([
      {
        bench: "b",
        id: "1",
        runs: [
          { model: "A", correct: 1, extracted: "4" },
          { model: "B", correct: 0, extracted: "5" }
        ]
      }
    ])
    expect(disagreementsMarkdown(list)).toContain("| b | 1 | 100% (4) | 0% (5) |")
  })
})

describe("benchmark loaders and graders", () => {
  it("grades MATH-500's reference solutions as right and shifted answers as wrong (--predictions)", async () => {
    const rows = readFileSync(join(SHARED, "math500", "test.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { unique_id: string; solution: string; answer: string })
    const good = join(tmp, "good.jsonl")
    writeFileSync(good, rows.map((r) => JSON.stringify({ id: r.unique_id, output: r.solution })).join("\n"))
    const results = await Effect.runPromise(
      evaluate(base({ benches: ["math500"], predictions: good, outDir: join(tmp, "m500") })).pipe(
        Effect.provide(Layer.merge(graders, noModel))
      )
    )
    const m = results.benchmarks[0]!
    expect(m.summary).toMatchObject({ items: 500, accuracy: 1, noAnswer: 0 })
    expect(Object.keys(m.groups)).toContain("Algebra")
    expect(m.sha256).toMatch(/^[0-9a-f]{64}$/)
    const bad = join(tmp, "bad.jsonl")
    writeFileSync(
      bad,
      rows
        .slice(0, 50)
        .map((r) => JSON.stringify({ id: r.unique_id, output: "I give up." }))
        .join("\n")
    )
    const none = await Effect.runPromise(
      evaluate(base({ benches: ["math500"], predictions: bad, outDir: join(tmp, "m500b") })).pipe(
        Effect.provide(Layer.merge(graders, noModel))
      )
    )
    expect(none.benchmarks[0]!.summary).toMatchObject({ items: 50, accuracy: 0, noAnswer: 50 })
  })

  it("grades saved outputs on the benchmarks they answer, and says so when they answer none", async () => {
    const rows = readFileSync(join(SHARED, "math500", "test.jsonl"), "utf8")
      .trim()
      .split("\n")
      .slice(0, 5)
      .map((l) => JSON.parse(l) as { unique_id: string; problem: string; solution: string })
    const some = join(tmp, "some.jsonl")
    // Five of MATH-500's questions answered, and one id that is no question (mistyped).
    writeFileSync(
      some,
      [...rows.map((r) => ({ id: r.unique_id, output: r.solution })), { id: "test/nowhere/1.json", output: "4" }]
        .map((r) => JSON.stringify(r))
        .join("\n")
    )
    const run = (file: string, outDir: string) =>
      Effect.runPromise(
        Effect.either(
          evaluate(base({ benches: ["math500", "aime24"], predictions: file, outDir: join(tmp, outDir) })).pipe(
            Effect.provide(Layer.merge(graders, noModel))
          )
        )
      )
    const graded = await run(some, "some")
    // aime24 is left out, not shown as a benchmark with nothing scored.
    expect(
      Either.isRight(graded) && graded.right.benchmarks.map((b) => [b.bench, b.summary.items, b.withoutOutput])
    ).toEqual([["math500", 5, 495]])
    // The report says the score covers part of the benchmark, and names the id that matched nothing.
    const results = Either.getOrThrow(graded)
    expect(results.settings.unmatchedPredictions).toBe(1)
    const md = markdownReport([results])
    expect(md).toContain("### Questions without a saved output (left out of the scores)")
    expect(md).toContain("| m | 495 of 500 |")
    expect(md).toContain(`**Caution:** m: 1 of the ids in ${some} are no question graded here`)
    const html = htmlReport([results])
    expect(html).toContain("<td>495 of 500</td>")
    expect(html).toContain(`<p><strong>Caution:</strong> m: 1 of the ids in ${some} are no question graded here`)
    expect(html).toContain("<p>Settings: m: preset greedy")
    const wrongIds = join(tmp, "wrong-ids.jsonl")
    writeFileSync(wrongIds, rows.map((_, i) => JSON.stringify({ id: i, output: "4" })).join("\n"))
    const none = await run(wrongIds, "none")
    expect(Either.isLeft(none) && none.left.message).toMatch(
      /wrong-ids\.jsonl: none of its 5 ids is an item of math500 \(ids like `test\/[^`]+`, `[^`]+`\); aime24/
    )
    // A bad line is named by its line in the file, blank lines counted.
    const blank = join(tmp, "blank.jsonl")
    writeFileSync(blank, `\n\n${JSON.stringify({ id: "x" })}\n`)
    const bad = await run(blank, "blank")
    expect(Either.isLeft(bad) && bad.left.message).toContain(
      "blank.jsonl:3: each line needs a string `output` and `id` (the question's id in the benchmark's file) or the question (`problem` or `question`); this one has id"
    )
    // Another harness's lines: its own ids, the question's text (spaced otherwise): matched by the text.
    const harness = join(tmp, "harness.jsonl")
    writeFileSync(
      harness,
      rows
        .map((r, i) =>
          JSON.stringify({ id: `run7-${i}#s0`, problem: `  ${r.problem.replace(/ /g, "  ")}\n`, output: r.solution })
        )
        .join("\n")
    )
    const byText = Either.getOrThrow(await run(harness, "harness"))
    expect(byText.benchmarks.map((b) => [b.bench, b.summary.items, b.summary.accuracy, b.withoutOutput])).toEqual([
      ["math500", 5, 1, 495]
    ])
    expect(byText.settings.unmatchedPredictions).toBeUndefined()
    // Several samples of one question, each under an id of its own: all graded, none unmatched.
    const samples = join(tmp, "samples.jsonl")
    writeFileSync(
      samples,
      [0, 1, 2]
        .map((k) => JSON.stringify({ id: `q0#s${k}`, problem: rows[0]!.problem, output: rows[0]!.solution }))
        .join("\n")
    )
    const sampled = Either.getOrThrow(await run(samples, "samples"))
    expect(sampled.benchmarks.map((b) => [b.summary.items, b.summary.samples])).toEqual([[1, 3]])
    expect(sampled.settings.unmatchedPredictions).toBeUndefined()
    // Compressed with gzip, as harnesses often keep their outputs: read as it is.
    const gz = join(tmp, "some.jsonl.gz")
    writeFileSync(gz, gzipSync(readFileSync(some)))
    const zipped = await run(gz, "gz")
    expect(Either.getOrThrow(zipped).benchmarks.map((b) => [b.bench, b.summary.items, b.summary.accuracy])).toEqual(
      results.benchmarks.map((b) => [b.bench, b.summary.items, b.summary.accuracy])
    )
  })

  it("regrades an earlier run's generations.jsonl: a line that names its bench answers that benchmark only", async () => {
    const aime = JSON.parse(readFileSync(join(SHARED, "aime24", "test.jsonl"), "utf8").split("\n")[0]!) as {
      id: number
      answer: string
    }
    const file = join(tmp, "generations.jsonl")
    // aime24 and gpqa_diamond both have an item with this id.
    writeFileSync(
      file,
      [
        { bench: "aime24", id: aime.id, sample: 0, output: `\\boxed{${aime.answer}}`, correct: false },
        {
          bench: "gpqa_diamond",
          id: String(aime.id),
          sample: 0,
          output: "It could be several of them.",
          correct: false
        }
      ]
        .map((r) => JSON.stringify(r))
        .join("\n")
    )
    const r = await Effect.runPromise(
      evaluate(base({ benches: ["aime24", "gpqa_diamond"], predictions: file, outDir: join(tmp, "regrade") })).pipe(
        Effect.provide(Layer.merge(graders, noModel))
      )
    )
    expect(r.benchmarks.map((b) => [b.bench, b.summary.samples, b.summary.accuracy, b.summary.noAnswer])).toEqual([
      ["aime24", 1, 1, 0],
      ["gpqa_diamond", 1, 0, 1]
    ])
    writeFileSync(file, JSON.stringify({ bench: 24, id: 60, output: "x" }))
    const bad = await Effect.runPromise(
      Effect.either(
        evaluate(base({ benches: ["aime24"], predictions: file, outDir: join(tmp, "regrade-bad") })).pipe(
          Effect.provide(Layer.merge(graders, noModel))
        )
      )
    )
    expect(Either.isLeft(bad) && bad.left.message).toContain(
      "generations.jsonl:1: field `bench`: Expected string, actual 24"
    )
  })

  it("reads GPQA's derived layout and grades letters, with 'no answer' instead of a guess", async () => {
    const rows = readFileSync(join(SHARED, "gpqa_diamond", "test.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { answer: string })
    const file = join(tmp, "gpqa.jsonl")
    writeFileSync(
      file,
      rows
        .map((r, i) =>
          JSON.stringify({
            id: String(i),
            output: i % 2 === 0 ? `Reasoning... so ${r.answer}` : "It could be several of them."
          })
        )
        .join("\n")
    )
    const r = await Effect.runPromise(
      evaluate(base({ benches: ["gpqa_diamond"], predictions: file, outDir: join(tmp, "gpqa") })).pipe(
        Effect.provide(Layer.merge(graders, noModel))
      )
    )
    // Half the predictions name the right letter; the other half name none and count as "no answer".
    expect(r.benchmarks[0]!.summary).toMatchObject({ items: 198, accuracy: 0.5, noAnswer: 99 })
  })

  it("reads MMLU-Pro from Parquet and LiveCodeBench with pickled private tests, and grades code in the sandbox", async () => {
    const data = join(tmp, "data")
    mkdirSync(join(data, "mmlu_pro"), { recursive: true })
    mkdirSync(join(data, "livecodebench"), { recursive: true })
    parquetWriteFile({
      filename: join(data, "mmlu_pro", "test.parquet"),
      columnData: [
        { name: "question_id", data: [1, 2], type: "INT32" },
        { name: "question", data: ["Which is a prime?", "Which is even?"], type: "STRING" },
        {
          name: "options",
          data: [JSON.stringify(["4", "6", "7", "9"]), JSON.stringify(["3", "8", "5", "1"])],
          type: "STRING"
        },
        { name: "answer", data: ["C", "B"], type: "STRING" },
        { name: "category", data: ["math", "math"], type: "STRING" }
      ]
    })
    const pickled = execFileSync(
      "/usr/bin/python3",
      [
        "-c",
        "import pickle,zlib,base64,json,sys; print(base64.b64encode(zlib.compress(pickle.dumps(json.dumps([{'input':'10 20\\n','output':'30\\n','testtype':'stdin'}])))).decode())"
      ],
      { encoding: "utf8" }
    ).trim()
    expect(decodeLcbTests(pickled)).toEqual([{ input: "10 20\n", output: "30\n", testtype: "stdin" }])
    expect(() => unpickleString(Buffer.from([0x80, 0x04, 0x4b, 0x01]))).toThrow(/unsupported pickle opcode/)
    const lcb = [
      {
        question_id: "a1",
        question_content: "Add two numbers.",
        starter_code: "",
        difficulty: "easy",
        public_test_cases: JSON.stringify([{ input: "1 2\n", output: "3\n", testtype: "stdin" }]),
        private_test_cases: pickled,
        metadata: "{}"
      },
      {
        question_id: "l1",
        question_content: "Return the sum of nums.",
        starter_code: "class Solution:\n    def total(self, nums: List[int]) -> int:\n        ",
        difficulty: "easy",
        public_test_cases: JSON.stringify([{ input: "[1, 2, 3]", output: "6", testtype: "functional" }]),
        private_test_cases: "[]",
        metadata: JSON.stringify({ func_name: "total" })
      }
    ]
    writeFileSync(join(data, "livecodebench", "test.jsonl"), lcb.map((r) => JSON.stringify(r)).join("\n"))
    const preds = join(tmp, "preds.jsonl")
    writeFileSync(
      preds,
      [
        { id: "1", output: "7 is prime. The answer is (C)." },
        { id: "2", output: "Answer: A" },
        { id: "a1", output: "```python\na, b = map(int, input().split())\nprint(a + b)\n```" },
        {
          id: "l1",
          output:
            "```python\nclass Solution:\n    def total(self, nums: List[int]) -> int:\n        return sum(nums)\n```"
        }
      ]
        .map((r) => JSON.stringify(r))
        .join("\n")
    )
    const r = await Effect.runPromise(
      evaluate(
        base({ benches: ["mmlu_pro", "livecodebench"], dataDir: data, predictions: preds, outDir: join(tmp, "mix") })
      ).pipe(Effect.provide(Layer.merge(graders, noModel)))
    )
    expect(r.benchmarks.map((b) => [b.bench, b.summary.accuracy])).toEqual([
      ["mmlu_pro", 0.5],
      ["livecodebench", 1]
    ])
  })
})

/** AIME 2024 evaluated against a scripted endpoint, one request at a time, with the LLM cache in `db`. */
const evaluateAgainst = (baseUrl: string, db: string, over: Partial<EvalOptions>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const lm = yield* makeLanguageModel({
          model: { endpoints: [{ provider: openAiProvider({ baseUrl, model: "scripted" }), concurrency: 4 }] }
        })
        return yield* evaluate(base({ benches: ["aime24"], model: "scripted", concurrency: 1, ...over })).pipe(
          Effect.provideService(LanguageModel, lm)
        )
      }).pipe(Effect.provide(Layer.mergeAll(graders, SqliteRunStoreLive(join(tmp, db)))))
    )
  )

describe("a full evaluation against a scripted model on loopback", () => {
  it("samples, caches, grades and writes results that carry their settings; the report shows accuracy and tokens", async () => {
    const answers = new Map(
      readFileSync(join(SHARED, "aime24", "test.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => {
          const r = JSON.parse(l) as { problem: string; answer: string }
          return [r.problem.slice(0, 60), r.answer] as const
        })
    )
    let i = 0
    const server = await startScriptedServer({
      script: (req) => {
        const q = req.messages[req.messages.length - 1]!.content.slice(0, 60)
        // The scripted model is right on every other request.
        return { content: `Some steps.\n\nThe answer is \\boxed{${i++ % 2 === 0 ? answers.get(q) : "-1"}}.` }
      }
    })
    try {
      const run = (outDir: string) => evaluateAgainst(server.baseUrl, "eval.db", { samples: 2, preset: "r1", outDir })
      const first = await run(join(tmp, "aime-1"))
      const s = first.benchmarks[0]!.summary
      expect(s).toMatchObject({ items: 30, samples: 60, accuracy: 0.5 })
      expect(s.passAtK["pass@2"]).toBe(1)
      expect(s.meanOutputTokens).toBeGreaterThan(5)
      expect(first.settings).toMatchObject({
        preset: "r1",
        sampling: { temperature: 0.6, top_p: 0.95, max_tokens: 32768 },
        samples: 2,
        graderVersion: GRADER_VERSION,
        extraction: "fastcot",
        seed: 0
      })
      // avg@2 with its standard error (every item scores one of its two samples: no spread), maj@2 beside pass@2.
      expect(s.stderr).toBe(0)
      expect(s.majAtK?.["maj@2"]).toBeDefined()
      expect(first.benchmarks[0]).toMatchObject({ samplesPerItem: 2, selection: { of: 30, seed: 0 } })
      const sent = server.requests.length
      expect(sent).toBe(60)
      // A rerun is answered from the cache.
      const second = await run(join(tmp, "aime-2"))
      expect(server.requests.length).toBe(sent)
      expect(second.benchmarks[0]!.summary.accuracy).toBe(0.5)
      const saved = JSON.parse(readFileSync(join(tmp, "aime-1", "results.json"), "utf8"))
      expect(saved.benchmarks[0].file).toMatch(/aime24/)
      expect(
        readFileSync(join(tmp, "aime-1", "generations.jsonl"), "utf8")
          .trim()
          .split("\n")
      ).toHaveLength(60)
      const md = markdownReport([first, { ...second, model: "other" }])
      expect(md).toContain("| scripted | 50.0 ± ")
      const html = htmlReport([first])
      expect(html).toContain("<svg")
      expect(html).not.toMatch(/https?:\/\//)
    } finally {
      await server.close()
    }
  })
  it("a benchmark none of whose generations was scored shows no scores, not zeros", () => {
    const summary = {
      items: 0,
      samples: 0,
      accuracy: 0,
      ci95: 0,
      passAtK: {},
      noAnswer: 0,
      truncated: 0,
      meanOutputTokens: 0,
      medianOutputTokens: 0
    }
    const run = {
      fastcot: "eval/v1" as const,
      model: "unreachable",
      settings: {
        preset: "greedy" as const,
        sampling: { temperature: 0 },
        samples: 1,
        systemPrompt: "",
        promptVersion: "1",
        graderVersion: "1",
        tokenizer: "qwen2.5"
      },
      startedAt: "2026-11-26T10:00:00Z",
      finishedAt: "2026-11-26T10:01:00Z",
      benchmarks: [
        {
          bench: "math500",
          file: "math500/test.jsonl",
          sha256: "0",
          summary,
          groups: {},
          failed: {
            samples: 2,
            firstError: "ConnectionError from http://127.0.0.1:9/v1: connection failed: ECONNREFUSED"
          }
        }
      ]
    }
    const md = markdownReport([run])
    expect(md).toContain("| unreachable | – (none scored) |")
    expect(md).toContain("tokens counted with qwen2.5")
    expect(md).not.toContain("Caution")
    // Runs measured differently are compared with a warning, naming which run used what.
    const other = { ...run, model: "local", settings: { ...run.settings, tokenizer: "tiny-qwen2", graderVersion: "0" } }
    const mixed = markdownReport([run, other])
    expect(mixed).toContain("different tokenizers (unreachable: qwen2.5, local: tiny-qwen2)")
    expect(mixed).toContain("different grader versions (unreachable: 1, local: 0)")
    expect(md).not.toContain("0.0 ± 0.0")
    expect(md).toMatch(/### Failed generations[^#]*\| unreachable \| 2 \|/)
    expect(htmlReport([run])).not.toContain("<circle")
  })
  it("a generation the model layer cannot get is counted apart, left out of the scores and retried by a rerun", async () => {
    const answers = new Map(
      readFileSync(join(SHARED, "aime24", "test.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => {
          const r = JSON.parse(l) as { problem: string; answer: string }
          return [r.problem.slice(0, 60), r.answer] as const
        })
    )
    let refuse = true
    const server = await startScriptedServer({
      // The scripted model answers every question right, but at first one in three gets a 404 (the
      // model still loading: not retried, and not remembered as a refusal of the request).
      script: (req, index) =>
        refuse && index % 3 === 0
          ? { content: "The model `scripted` does not exist (yet).", status: 404 }
          : {
              content: `The answer is \\boxed{${answers.get(req.messages[req.messages.length - 1]!.content.slice(0, 60))}}.`
            }
    })
    try {
      const run = (outDir: string) =>
        evaluateAgainst(server.baseUrl, "eval-failures.db", { samples: 1, preset: "greedy", outDir })
      const first = await run(join(tmp, "fail-1"))
      const b = first.benchmarks[0]!
      expect(b.failed).toMatchObject({ samples: 10, firstError: expect.stringContaining("BadRequest") })
      // The 20 answers are all right: failures are not counted as wrong answers.
      expect(b.summary).toMatchObject({ items: 20, samples: 20, accuracy: 1, noAnswer: 0 })
      const lines = readFileSync(join(tmp, "fail-1", "generations.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { error?: string })
      expect(lines.filter((l) => l.error !== undefined)).toHaveLength(10)
      expect(markdownReport([first])).toContain("Failed generations")
      // A rerun sends only the failed ones again (the rest come from the cache) and completes.
      refuse = false
      const sent = server.requests.length
      const second = await run(join(tmp, "fail-2"))
      expect(server.requests.length - sent).toBe(10)
      expect(second.benchmarks[0]!.failed).toBeUndefined()
      expect(second.benchmarks[0]!.summary).toMatchObject({ items: 30, samples: 30, accuracy: 1 })
      expect(markdownReport([second])).not.toContain("Failed generations")
    } finally {
      await server.close()
    }
  })
})
