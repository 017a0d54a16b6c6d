import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gunzipSync } from "node:zlib"
import { parquetWriteFile } from "hyparquet-writer"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import type { Item } from "../schema/item.js"
import type { Problem } from "../schema/problem.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { jsonl, tempDir } from "../test-support/fixtures.js"
import { datasetFiles } from "./datasetFolder.js"
import { detectLayout, type LayoutName } from "./datasetLayouts.js"
import { dryRunImport, importFile, type ImportOptions } from "./importFile.js"
import { splitReasoning } from "./reasoningText.js"

/**
 * The published dataset layouts, each with a small fixture written by hand in exactly that layout
 * (field names and value types as the dataset cards and the peers' loading code give them; no row
 * is copied from the datasets), imported into a real SQLite store.
 */
describe("importing the long-CoT datasets people start from, as they are published", () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(() => tmp.cleanup())

  const importRows = (name: string, rows: ReadonlyArray<unknown>, options: ImportOptions = {}) => {
    const file = join(tmp.dir, name)
    writeFileSync(file, jsonl(rows))
    return importPath(file, options)
  }
  const importPath = (file: string, options: ImportOptions = {}) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const report = yield* importFile(file, options)
          const store = yield* RunStore
          const problems = yield* store.listProblems({ limit: 100 })
          const items = yield* store.listItems({ limit: 100 })
          return { report, problems, items }
        }).pipe(Effect.provide(SqliteRunStoreLive(join(tmp.dir, "fastcot.db"))))
      )
    )
  const byQuestion = (problems: ReadonlyArray<Problem>, q: string) => problems.find((p) => p.question.includes(q))!
  const tracesOf = (items: ReadonlyArray<Item>, p: Problem) => items.filter((i) => i.problemId === p.id)

  it("OpenThoughts / Bespoke-Stratos: system + conversations; thought and solution apart, the answer from the solution's box", async () => {
    const reply =
      "<|begin_of_thought|>\n\nThe two numbers add up. Let me check: 17 + 25 = 42.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\nAdding, $17 + 25 = \\boxed{42}$.\n\n<|end_of_solution|>"
    const { report, problems, items } = await importRows("ot.jsonl", [
      {
        system: "Your role as an assistant involves thoroughly exploring questions...",
        conversations: [
          { from: "user", value: "Return your final response within \\boxed{}. What is 17 + 25?" },
          { from: "assistant", value: reply }
        ]
      },
      {
        system: "...",
        conversations: [
          { from: "human", value: "Is 91 prime?" },
          {
            from: "gpt",
            value: "<think>\n7 * 13 = 91.\n</think>\n\nNo: $91 = 7 \\cdot 13$, so the answer is \\boxed{\\text{No}}."
          }
        ]
      }
    ])
    expect(report).toMatchObject({ layout: "openthoughts", rows: 2, problemsAdded: 2, itemsAdded: 2 })
    const p = byQuestion(problems, "17 + 25")
    expect(p).toMatchObject({
      domain: "math",
      answer: "42",
      metadata: { system: expect.stringContaining("Your role") }
    })
    const [t] = tracesOf(items, p)
    expect(t!.trace).toMatchObject({
      reasoning: "The two numbers add up. Let me check: 17 + 25 = 42.",
      finalAnswer: "Adding, $17 + 25 = \\boxed{42}$.",
      origin: "imported"
    })
    expect(t!.trace!.reasoning).not.toContain("begin_of")
    expect(tracesOf(items, byQuestion(problems, "91 prime"))[0]!.trace).toMatchObject({
      reasoning: "7 * 13 = 91.",
      finalAnswer: expect.stringContaining("\\boxed{\\text{No}}")
    })
  })

  it("OpenR1-Math: one trace per generation, the source's own correctness kept, incomplete reasoning marked", async () => {
    const { report, problems, items } = await importRows("r1.jsonl", [
      {
        problem: "Find the least positive integer $n$ with $n^2 \\equiv 1 \\pmod 8$ and $n > 1$.",
        solution: "Odd squares are 1 mod 8, so the answer is $\\boxed{3}$.",
        answer: "3",
        problem_type: "Number Theory",
        question_type: "math-word-problem",
        source: "olympiads",
        uuid: "0e4a-hand-written",
        is_reasoning_complete: [true, false],
        generations: [
          "<think>\nTry n = 3: 9 = 1 mod 8.\n</think>\n\nThe least is $\\boxed{3}$.",
          "<think>\nTry n = 2: 4 is not 1 mod 8. Try n = 3, then"
        ],
        correctness_math_verify: [true, false],
        correctness_llama: null,
        finish_reasons: ["stop", "length"],
        correctness_count: 1,
        messages: [
          { role: "user", content: "..." },
          { role: "assistant", content: "..." }
        ]
      }
    ])
    expect(report).toMatchObject({ layout: "openr1-math", problemsAdded: 1, itemsAdded: 2 })
    expect(problems[0]).toMatchObject({
      answer: "3",
      metadata: { source: "olympiads", problem_type: "Number Theory", uuid: "0e4a-hand-written" }
    })
    const traces = items.map((i) => ({
      reasoning: i.trace!.reasoning,
      final: i.trace!.finalAnswer,
      cutOff: i.trace!.cutOff,
      metadata: i.metadata
    }))
    expect(traces).toContainEqual({
      reasoning: "Try n = 3: 9 = 1 mod 8.",
      final: "The least is $\\boxed{3}$.",
      cutOff: undefined,
      metadata: { generation: 0, correctness_math_verify: true, is_reasoning_complete: true, finish_reason: "stop" }
    })
    expect(traces).toContainEqual({
      reasoning: "Try n = 2: 4 is not 1 mod 8. Try n = 3, then",
      final: undefined,
      cutOff: true,
      metadata: { generation: 1, correctness_math_verify: false, is_reasoning_complete: false, finish_reason: "length" }
    })
  })

  it("OpenMathReasoning and OpenMathInstruct-2: one trace a row, rows of one problem together, GenSelect rows refused", async () => {
    const problem = "Find all real $x$ with $x^2 = 4x - 4$."
    const row = (over: Record<string, unknown>) => ({
      expected_answer: "2",
      problem_type: "has_answer_extracted",
      problem_source: "aops_c4_high_school_math",
      generation_model: "DeepSeek-R1",
      pass_rate_72b_tir: "0.96875",
      problem,
      generated_solution: "<think>\nSo $(x-2)^2 = 0$.\n</think>\nThe only root is $\\boxed{2}$.",
      inference_mode: "cot",
      ...over
    })
    const { report, problems, items } = await importRows("omr.jsonl", [
      row({}),
      row({
        generation_model: "QwQ-32B",
        generated_solution: "<think>\nCompleting the square gives $x = 2$.\n</think>\n$\\boxed{2}$"
      }),
      row({
        inference_mode: "tir",
        generated_solution:
          "<think>\nLet me check with code.\n```python\nprint(2**2 - 4*2 + 4)\n```\n```output\n0\n```\n</think>\n$\\boxed{2}$"
      }),
      row({
        problem: "How many subsets of a 3-set are there?",
        expected_answer: "8",
        problem_type: "no_answer_extracted",
        generated_solution: "<think>\n2^3.\n</think>\n$\\boxed{8}$"
      }),
      row({ inference_mode: "genselect", generated_solution: "Comparing the candidates, Judgment: 1" }),
      // OpenMathInstruct-2: no reasoning tags, no model or mode.
      {
        problem: "What is $3 \\cdot 7$?",
        generated_solution: "Multiplying, $3 \\cdot 7 = \\boxed{21}$.",
        expected_answer: "21",
        problem_source: "augmented_math"
      }
    ])
    expect(report).toMatchObject({ layout: "openmath", rows: 6, problemsAdded: 3, itemsAdded: 5, rejected: 1 })
    expect(report.rejects[0]).toMatchObject({ line: 5 })
    expect(report.rejects[0]!.reason).toMatch(/GenSelect row .*import the cot split \(--split cot\)/)
    const quadratic = byQuestion(problems, "x^2 = 4x")
    expect(quadratic).toMatchObject({
      domain: "math",
      answer: "2",
      metadata: { problem_type: "has_answer_extracted", problem_source: "aops_c4_high_school_math" }
    })
    expect(quadratic.metadata).not.toHaveProperty("generation_model")
    const traces = tracesOf(items, quadratic).map((i) => ({
      model: i.trace!.model,
      reasoning: i.trace!.reasoning,
      final: i.trace!.finalAnswer,
      metadata: i.metadata
    }))
    expect(traces).toContainEqual({
      model: "DeepSeek-R1",
      reasoning: "So $(x-2)^2 = 0$.",
      final: "The only root is $\\boxed{2}$.",
      metadata: { inference_mode: "cot" }
    })
    expect(traces.map((t) => t.model).sort()).toEqual(["DeepSeek-R1", "DeepSeek-R1", "QwQ-32B"])
    expect(traces.find((t) => t.metadata?.["inference_mode"] === "tir")?.reasoning).toContain("```output")
    expect(byQuestion(problems, "subsets")).toMatchObject({
      answer: "8",
      metadata: { problem_type: "no_answer_extracted" }
    })
    const instruct = byQuestion(problems, "3 \\cdot 7")
    expect(instruct).toMatchObject({ answer: "21", metadata: { problem_source: "augmented_math" } })
    expect(tracesOf(items, instruct).map((i) => [i.trace!.reasoning, i.trace!.finalAnswer])).toEqual([
      ["Multiplying, $3 \\cdot 7 = \\boxed{21}$.", "21"]
    ])
  })

  it("DeepMath-103K: the curated final answer, and each of the three DeepSeek-R1 solutions a trace", async () => {
    const { report, problems, items } = await importRows("deepmath.jsonl", [
      {
        question: "Evaluate $\\lim_{n\\to\\infty} (1 + 1/n)^n$.",
        final_answer: "e",
        difficulty: 4.5,
        topic: "Mathematics -> Calculus -> Differential Calculus -> Limits",
        r1_solution_1: "Okay, this is the definition of e.\n</think>\n\nThe limit is $\\boxed{e}$.",
        r1_solution_2: "<think>\nTake logs: n ln(1 + 1/n) -> 1.\n</think>\n$\\boxed{e}$",
        r1_solution_3: "Hmm, binomial expansion, and the terms sum to e.\n</think>\n\n**Final Answer**\n\\boxed{e}"
      }
    ])
    expect(report).toMatchObject({ layout: "deepmath", problemsAdded: 1, itemsAdded: 3 })
    expect(problems[0]).toMatchObject({
      domain: "math",
      answer: "e",
      metadata: { difficulty: 4.5, topic: "Mathematics -> Calculus -> Differential Calculus -> Limits" }
    })
    const traces = items
      .map((i) => ({
        n: i.metadata?.["solution"],
        model: i.trace!.model,
        reasoning: i.trace!.reasoning,
        final: i.trace!.finalAnswer
      }))
      .sort((a, b) => Number(a.n) - Number(b.n))
    expect(traces).toEqual([
      {
        n: 1,
        model: "DeepSeek-R1",
        reasoning: "Okay, this is the definition of e.",
        final: "The limit is $\\boxed{e}$."
      },
      { n: 2, model: "DeepSeek-R1", reasoning: "Take logs: n ln(1 + 1/n) -> 1.", final: "$\\boxed{e}$" },
      {
        n: 3,
        model: "DeepSeek-R1",
        reasoning: "Hmm, binomial expansion, and the terms sum to e.",
        final: "**Final Answer**\n\\boxed{e}"
      }
    ])
  })

  it("the AM distilled sets: messages with info; the reference answer from info, <answer> tags removed", async () => {
    const info = (extra: Record<string, unknown>) => ({
      source: "OpenR1-Math",
      reference_answer: "12",
      test_case: null,
      ...extra
    })
    const { report, problems, items } = await importRows("am.jsonl", [
      {
        messages: [
          { role: "user", content: "How many edges does a cube have?", info: info({}) },
          {
            role: "assistant",
            content:
              "<think>\nA cube has 12 edges: 4 on top, 4 below, 4 upright.\n</think>\n<answer>\nThere are $\\boxed{12}$ edges.\n</answer>",
            info: info({
              think_content: "A cube has 12 edges: 4 on top, 4 below, 4 upright.",
              answer_content: "There are $\\boxed{12}$ edges.",
              verify_score: 1,
              model_name: "DeepSeek-R1"
            })
          }
        ]
      },
      {
        // No think_content: the reply is split at </think>; no reference: the answer's box.
        messages: [
          { role: "user", content: "What is 6 * 7?", info: { source: "natural_reasoning" } },
          {
            role: "assistant",
            content: "<think>\n6 * 7 = 42.\n</think> <answer>$\\boxed{42}$</answer>",
            info: { source: "natural_reasoning" }
          }
        ]
      }
    ])
    expect(report).toMatchObject({ layout: "am-distilled", problemsAdded: 2, itemsAdded: 2, rejected: 0 })
    const cube = byQuestion(problems, "cube")
    expect(cube).toMatchObject({ answer: "12" })
    expect(cube.metadata).toEqual({ source: "OpenR1-Math" })
    expect(
      tracesOf(items, cube).map((i) => [i.trace!.reasoning, i.trace!.finalAnswer, i.trace!.model, i.metadata])
    ).toEqual([
      [
        "A cube has 12 edges: 4 on top, 4 below, 4 upright.",
        "There are $\\boxed{12}$ edges.",
        "DeepSeek-R1",
        { source: "OpenR1-Math", verify_score: 1 }
      ]
    ])
    const product = byQuestion(problems, "6 * 7")
    expect(product).toMatchObject({ answer: "42", metadata: { source: "natural_reasoning" } })
    expect(tracesOf(items, product).map((i) => [i.trace!.reasoning, i.trace!.finalAnswer])).toEqual([
      ["6 * 7 = 42.", "$\\boxed{42}$"]
    ])
  })

  it("NuminaMath (CoT and 1.5): the boxed answer from the solution, or the answer column", async () => {
    const { report, problems, items } = await importRows("numina.jsonl", [
      {
        source: "synthetic_math",
        problem: "Compute $3^4$.",
        solution: "We have $3^4 = 81$, so the answer is $\\boxed{81}$.",
        messages: [{ role: "user", content: "Compute $3^4$." }]
      },
      {
        problem: "Show that $2 + 2 = 4$.",
        solution: "Count. $\\blacksquare$",
        answer: "proof",
        problem_type: "Algebra",
        question_type: "proof",
        problem_is_valid: "Yes",
        solution_is_valid: "Yes",
        source: "olympiads",
        synthetic: false
      },
      {
        problem: "Compute $2^5$.",
        solution: "Doubling five times gives $\\boxed{32}$.",
        answer: "32",
        problem_type: "Algebra",
        question_type: "math-word-problem",
        source: "amc_aime",
        synthetic: false
      }
    ])
    expect(report.layout).toBe("numinamath")
    expect(byQuestion(problems, "3^4")).toMatchObject({ answer: "81", metadata: { source: "synthetic_math" } })
    expect(byQuestion(problems, "2 + 2 = 4").answer).toBeUndefined()
    expect(byQuestion(problems, "2^5").answer).toBe("32")
    expect(tracesOf(items, byQuestion(problems, "3^4"))[0]!.trace).toMatchObject({
      reasoning: "We have $3^4 = 81$, so the answer is $\\boxed{81}$.",
      finalAnswer: "81"
    })
  })

  it("s1K (and s1K-1.1): thinking trajectories and the final attempt apart, per model", async () => {
    const { report, problems, items } = await importRows("s1k.jsonl", [
      {
        solution: "1",
        question: "How many real roots has $x^3 - 3x + 2 = 0$ counted once each? Answer with a number.",
        cot_type: "math",
        source_type: "hand-written",
        metadata: "{}",
        cot: null,
        thinking_trajectories: [
          "Factor: (x-1)^2 (x+2). Roots 1 and -2, so two distinct; hmm the question says counted once each... two."
        ],
        attempt: "The distinct roots are 1 and -2: $\\boxed{2}$."
      },
      {
        solution: "The sum is $\\boxed{10}$.",
        question: "Sum the integers 1 to 4.",
        cot_type: "math",
        source_type: "hand-written",
        metadata: "{}",
        deepseek_thinking_trajectory: "1+2+3+4 = 10.",
        deepseek_attempt: "$\\boxed{10}$",
        gemini_thinking_trajectory: "Triangular number 4*5/2 = 10.",
        gemini_attempt: "10"
      }
    ])
    expect(report.layout).toBe("s1k")
    const first = byQuestion(problems, "real roots")
    expect(first.answer).toBe("1")
    expect(tracesOf(items, first)[0]!.trace).toMatchObject({
      reasoning: expect.stringContaining("Factor"),
      finalAnswer: "The distinct roots are 1 and -2: $\\boxed{2}$."
    })
    const second = byQuestion(problems, "Sum the integers")
    expect(second.answer).toBe("10")
    expect(
      tracesOf(items, second)
        .map((i) => [i.trace!.model, i.trace!.reasoning, i.trace!.finalAnswer])
        .sort()
    ).toEqual([
      ["DeepSeek-R1", "1+2+3+4 = 10.", "$\\boxed{10}$"],
      ["gemini-2.0-flash-thinking", "Triangular number 4*5/2 = 10.", "10"]
    ])
  })

  it("DeepSeek-style reasoning_content + content", async () => {
    const { report, items, problems } = await importRows("ds.jsonl", [
      { question: "What is 6 * 7?", reasoning_content: "Six sevens are 42.", content: "The product is $\\boxed{42}$." }
    ])
    expect(report.layout).toBe("reasoning-content")
    expect(problems[0]!.answer).toBe("42")
    expect(items[0]!.trace).toMatchObject({
      reasoning: "Six sevens are 42.",
      finalAnswer: "The product is $\\boxed{42}$."
    })
  })

  it("LiveCodeBench, APPS and TACO code problems with their tests (functional ones with their function's name)", async () => {
    const lcb = await importRows("lcb.jsonl", [
      {
        question_title: "Add",
        question_content: "Read two integers and print their sum.",
        platform: "atcoder",
        question_id: "abc999_a",
        contest_id: "abc999",
        contest_date: "2024-01-06T00:00:00",
        starter_code: "",
        difficulty: "easy",
        public_test_cases: JSON.stringify([{ input: "1 2\n", output: "3\n", testtype: "stdin" }]),
        private_test_cases: JSON.stringify([{ input: "5 5\n", output: "10\n", testtype: "stdin" }]),
        metadata: "{}"
      }
    ])
    expect(lcb.report.layout).toBe("livecodebench")
    expect(lcb.problems[0]).toMatchObject({
      domain: "code",
      tests: [
        { input: "1 2\n", output: "3\n" },
        { input: "5 5\n", output: "10\n" }
      ],
      metadata: { platform: "atcoder", contest_date: "2024-01-06T00:00:00" }
    })
    const taco = await importRows("taco.jsonl", [
      {
        question: "Return the larger of a and b.",
        solutions: JSON.stringify(["def bigger(a, b):\n    return max(a, b)\n"]),
        starter_code: "def bigger(a, b):",
        input_output: JSON.stringify({
          fn_name: "bigger",
          inputs: [
            [1, 2],
            [5, 3]
          ],
          outputs: [[2], [5]]
        }),
        difficulty: "EASY",
        raw_tags: "['Math']",
        name: null,
        source: "codewars",
        tags: "['Mathematics']",
        skill_types: "[]",
        url: "https://example.invalid/kata",
        Expected_Auxiliary_Space: null,
        time_limit: null,
        date: null,
        picture_num: null,
        memory_limit: null,
        Expected_Time_Complexity: null
      }
    ])
    expect(taco.report.layout).toBe("taco")
    const p = taco.problems.find((x) => x.question.includes("larger"))!
    expect(p).toMatchObject({ domain: "code", metadata: { func_name: "bigger", source: "codewars" } })
    expect(p.tests).toEqual([
      { input: "1\n2", output: "[2]", testtype: "functional", unwrapOutput: true },
      { input: "5\n3", output: "[5]", testtype: "functional", unwrapOutput: true }
    ])
    const apps = await importRows("apps.jsonl", [
      {
        problem_id: 7,
        question: "Print the input doubled.",
        solutions: "[]",
        input_output: JSON.stringify({ inputs: ["4\n"], outputs: ["8\n"] }),
        difficulty: "introductory",
        url: "https://example.invalid/7",
        starter_code: ""
      }
    ])
    expect(apps.report.layout).toBe("apps")
    expect(apps.problems.find((x) => x.question.includes("doubled"))!.tests).toEqual([
      { input: "4\n", output: "8\n", testtype: "stdin" }
    ])
  })

  it("recognises each layout from its fields, asks when a file fits two, and takes --layout", () => {
    const fits = (row: object) => Either.getOrThrow(detectLayout(row)).name
    expect(fits({ problem: "q", generations: [], answer: "1" })).toBe("openr1-math")
    expect(fits({ problem: "q", solution: "s", source: "x" })).toBe("numinamath")
    expect(fits({ question: "q", answer: "a" })).toBe("generic")
    expect(fits({ problem: "q", generated_solution: "s", expected_answer: "1" })).toBe("openmath")
    expect(fits({ question: "q", final_answer: "1", r1_solution_1: "s" })).toBe("deepmath")
    expect(fits({ messages: [{ role: "user", content: "q", info: {} }] })).toBe("am-distilled")
    expect(fits({ messages: [{ role: "user", content: "q" }] })).toBe("generic")
    expect(fits({ problem: "q", deepseek_reasoning: "r", deepseek_solution: "s" })).toBe("openthoughts-metadata")
    // A row with both OpenR1's generations and s1K's trajectories fits two layouts equally.
    const both = detectLayout({ problem: "q", question: "q", generations: [], thinking_trajectories: [] })
    expect(Either.isLeft(both) && both.left.candidates).toEqual(["openr1-math", "s1k"])
  })

  it("the Sky-T1 replies in the shared real outputs import with reasoning and solution apart, and the right long flag", async () => {
    const all = gunzipSync(
      readFileSync(
        join(__dirname, "..", "..", "..", "..", "..", "shared", "data", "graded-outputs", "math-real.jsonl.gz")
      )
    )
      .toString("utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { problem: string; gold: string; output: string })
    // Every reply written with Sky-T1's tags (460; 185 of them cut off inside their thinking).
    const sky = all.filter((r) => r.output.includes("begin_of_thought"))
    expect(sky.length).toBeGreaterThanOrEqual(20)
    // Counted the way the CLI counts (a real tokenizer); characters/3.5 stands in for it here, one per token for the flag.
    const count = (t: string) => Math.ceil(t.length / 3.5)
    const { report } = await importRows(
      "sky.jsonl",
      sky.map((r) => ({ problem: r.problem, answer: r.gold, response: r.output })),
      { long: { above: 1024, count } }
    )
    expect(report).toMatchObject({ layout: "generic", rejected: 0 })
    const items = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(RunStore, (s) => s.listItems({ limit: 1000 })).pipe(
          Effect.provide(SqliteRunStoreLive(join(tmp.dir, "fastcot.db")))
        )
      )
    )
    expect(items).toHaveLength(sky.length)
    for (const item of items) {
      const t = item.trace!
      expect(t.reasoning).not.toMatch(/begin_of_thought|end_of_thought|begin_of_solution/)
      const reply = sky.find((r) => splitReasoning(r.output).reasoning === t.reasoning)!
      const split = splitReasoning(reply.output)
      expect(t.cutOff === true).toBe(split.cutOff)
      if (!split.cutOff) expect(t.finalAnswer).toBe(split.solution)
      expect(t.long).toBe(count(t.reasoning) > 1024)
    }
    expect(items.filter((i) => i.trace!.long).length).toBeGreaterThan(sky.length / 2)
    expect(items.filter((i) => i.trace!.cutOff === true).length).toBe(
      sky.filter((r) => !r.output.includes("<|end_of_thought|>")).length
    )
  })

  it("--dry-run reports the layout, the mapping, what would be created and the first rows, and writes nothing", async () => {
    const file = join(tmp.dir, "preview.jsonl")
    writeFileSync(
      file,
      jsonl([
        {
          problem: "q1",
          generations: ["<think>a</think>b \\boxed{1}", "<think>c"],
          answer: "1",
          is_reasoning_complete: [true, false]
        },
        { problem: "q2", generations: [], answer: "2" },
        "not an object"
      ])
    )
    const dry = await Effect.runPromise(dryRunImport(file))
    expect(dry).toMatchObject({
      layout: "openr1-math",
      rows: 3,
      problems: 2,
      traces: 2,
      cutOffTraces: 1,
      rejected: 1,
      fields: { question: "problem" }
    })
    expect(dry.preview[0]!.problem.question).toBe("q1")
    const asked = await Effect.runPromise(Effect.either(dryRunImport(join(tmp.dir, "absent.jsonl"))))
    expect(Either.isLeft(asked) && asked.left.message).toContain("cannot read the file")
  })

  it("a Hugging Face cache folder: the Parquet shards of the default split, read at refs/main", async () => {
    const repo = join(tmp.dir, "hub", "datasets--open-r1--OpenR1-Math-220k")
    const commit = "3f1a4e2b9c0d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"
    const snapshot = join(repo, "snapshots", commit)
    mkdirSync(join(repo, "refs"), { recursive: true })
    mkdirSync(join(repo, "blobs"), { recursive: true })
    mkdirSync(join(snapshot, "data"), { recursive: true })
    mkdirSync(join(snapshot, "extended"), { recursive: true })
    writeFileSync(join(repo, "refs", "main"), commit)
    writeFileSync(
      join(snapshot, "README.md"),
      "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n- config_name: extended\n  data_files:\n  - split: train\n    path: extended/train-*\n---\n# A hand-written card\n"
    )
    const shard = (name: string, problems: ReadonlyArray<string>, dir = "data") => {
      // As the cache keeps them: the file in blobs/, the snapshot entry a link to it.
      const blob = join(repo, "blobs", `${dir}-${name}`)
      parquetWriteFile({
        filename: blob,
        columnData: [
          { name: "problem", data: [...problems], type: "STRING" },
          { name: "answer", data: problems.map((_, i) => String(i)), type: "STRING" },
          {
            name: "generations",
            data: problems.map((p, i) => JSON.stringify([`<think>${p}</think> \\boxed{${i}}`])),
            type: "STRING"
          }
        ]
      })
      symlinkSync(blob, join(snapshot, dir, name))
    }
    shard("train-00000-of-00002.parquet", ["a?", "b?"])
    shard("train-00001-of-00002.parquet", ["c?"])
    shard("train-00000-of-00001.parquet", ["extended only?"], "extended")
    const found = Either.getOrThrow(datasetFiles(repo))
    expect(found).toMatchObject({ split: "train", config: "default" })
    expect(found.files.map((f) => f.split("/").slice(-2).join("/"))).toEqual([
      "data/train-00000-of-00002.parquet",
      "data/train-00001-of-00002.parquet"
    ])
    expect(Either.getOrThrow(datasetFiles(repo, { config: "extended" })).files).toHaveLength(1)
    expect(datasetFiles(repo, { split: "test" })).toMatchObject({
      left: expect.stringContaining("has no split `test`; it has train")
    })
    for (const file of found.files) await importPath(file, { layout: "openr1-math" as LayoutName })
    const { problems, items } = await importPath(found.files[0]!, { layout: "openr1-math" })
    expect(problems.map((p) => p.question).sort()).toEqual(["a?", "b?", "c?"])
    expect(items).toHaveLength(3)
  })
})
