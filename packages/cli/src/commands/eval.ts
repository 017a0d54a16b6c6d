import { Command, Options } from "@effect/cli"
import {
  describeSpent,
  EvalModel,
  LanguageModel,
  QwenTokenCounterLive,
  TokenizerFileCounterLive,
  workspacePaths
} from "@fastcot/core"
import {
  benchmark,
  benchmarkNamed,
  benchmarkNames,
  evaluate,
  evalRunFolder,
  type Extraction,
  GRADER_VERSION,
  markdownReport,
  parseDateWindow,
  type Preset,
  readEvalResults,
  SandboxLive
} from "@fastcot/evaluator"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { existsSync } from "node:fs"
import { join, relative } from "node:path"
import { CliFailure, failed, usage } from "../failure.js"
import {
  budgetTokensOption,
  budgetUsdOption,
  dashboardTerminal,
  inRange,
  progressLine,
  stderr,
  stdout,
  namedStoreLayer,
  pipelineStoreOption,
  workspaceOption,
  storeOption,
  listOption,
  packProductsOption,
  q4ComputeOption,
  f16ComputeOption,
  rotaryOption,
  choiceOption
} from "../shared.js"

const model = Options.text("model").pipe(
  Options.optional,
  Options.withDescription(
    "The model to evaluate: openai:MODEL@BASE_URL, or onnx:DIR[#variant] for a local model folder."
  )
)
const threads = Options.integer("threads").pipe(
  Options.optional,
  Options.withDescription("Local models: intra-op threads (default: every core).")
)
const bench = listOption(
  "bench",
  `Benchmarks (default: all): ${benchmarkNames().join(", ")} (MATH-500, GPQA-Diamond, AIME 2024 and the like are read as these).`
)
const samples = Options.integer("samples").pipe(
  inRange("--samples", 1, 1024),
  Options.optional,
  Options.withDescription(
    "Samples per question: avg@K with its standard error, maj@K and pass@K are reported (default: the preset's, 1 for greedy; r1 takes AIME 64, MATH-500 4, GPQA 8, LiveCodeBench 16)."
  )
)
const limit = Options.integer("limit").pipe(
  inRange("--limit", 1, Number.MAX_SAFE_INTEGER),
  Options.optional,
  Options.withDescription("At most N questions of each benchmark: a seeded sample stratified by subject or category.")
)
const seed = Options.integer("seed").pipe(
  Options.withDefault(0),
  Options.withDescription("Seeds --limit's sample and GPQA's option shuffle (recorded in results.json).")
)
const extraction = choiceOption("extraction", ["fastcot", "official"]).pipe(
  Options.withDefault("fastcot"),
  Options.withDescription(
    "How multiple-choice answers are read: fastcot (the last committed answer, never a guess) or official (MMLU-Pro's and GPQA's published scorers, rule for rule)."
  )
)
const lcbWindow = Options.text("lcb-window").pipe(
  Options.optional,
  Options.withDescription(
    "LiveCodeBench: only problems whose contest date falls in YYYY-MM..YYYY-MM (either end may be open)."
  )
)
const regrade = Options.text("regrade").pipe(
  Options.optional,
  Options.withDescription(
    "Regrade an earlier evaluation's folder (its generations.jsonl) with this grader, without calling a model; results go to DIR/regraded-VERSION unless --out says otherwise."
  )
)
const out = Options.text("out").pipe(
  Options.optional,
  Options.withDescription("Where results.json and generations.jsonl go (default WORKSPACE/eval/RUN).")
)
const data = Options.text("data").pipe(
  Options.withDefault("data"),
  Options.withDescription("The folder holding the benchmarks' files (math500/test.jsonl, aime24/test.jsonl, ...).")
)
const preset = choiceOption("preset", ["greedy", "r1"]).pipe(
  Options.withDefault("greedy"),
  Options.withDescription("greedy: T=0, 2048 tokens (Qwen2.5-Math); r1: T=0.6, top_p 0.95, 32768 tokens (DeepSeek-R1).")
)
const maxTokens = Options.integer("max-tokens").pipe(
  Options.optional,
  Options.withDescription("Replaces the preset's max_tokens.")
)
const predictions = Options.text("predictions").pipe(
  Options.optional,
  Options.withDescription("Grade saved outputs (JSONL: id, output) instead of calling a model.")
)
const apiKeyEnv = Options.text("api-key-env").pipe(
  Options.withDefault("OPENAI_API_KEY"),
  Options.withDescription("Environment variable holding the key.")
)
const tokenizer = Options.text("tokenizer").pipe(
  Options.optional,
  Options.withDescription(
    "Count output tokens with this tokenizer (a tokenizer.json or a model folder); default: the local model's own, else Qwen2.5's."
  )
)
const concurrency = Options.integer("concurrency").pipe(
  inRange("--concurrency", 1, 4096),
  Options.withDefault(16),
  Options.withDescription("Requests in flight.")
)
const budgetUsd = budgetUsdOption("this evaluation's")
const budgetTokens = budgetTokensOption("this evaluation's")
const price = Options.text("price").pipe(
  Options.filterMap((text) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/.exec(text)
    return m === null ? Option.none() : Option.some({ input: Number(m[1]), output: Number(m[2]) })
  }, "--price takes IN,OUT: US dollars per million input and output tokens, e.g. 0.27,1.10"),
  Options.optional,
  Options.withDescription(
    "The endpoint's price, IN,OUT in US dollars per million input and output tokens (for cost and --budget-usd)."
  )
)
const noTui = Options.boolean("no-tui").pipe(Options.withDescription("Plain progress lines instead of the live table."))
const noCache = Options.boolean("no-cache").pipe(
  Options.withDescription("Neither read nor write the LLM response cache.")
)

/** What `--regrade DIR` reads: the earlier run's outputs and the settings that produced them. */
const regradeSource = (dir: string) =>
  Effect.gen(function* () {
    const generations = join(dir, "generations.jsonl")
    if (!existsSync(generations))
      return yield* usage(`--regrade ${dir}: no generations.jsonl there (give the folder an evaluation wrote)`)
    const results = readEvalResults(join(dir, "results.json"))
    if (Either.isLeft(results)) return yield* usage(`--regrade ${dir}: ${results.left.message}`)
    return {
      generations,
      model: results.right.model,
      preset: results.right.settings.preset,
      benches: results.right.benchmarks.map((b) => b.bench)
    }
  })

export const evalCommand = Command.make(
  "eval",
  {
    model,
    threads,
    q4Compute: q4ComputeOption,
    f16Compute: f16ComputeOption,
    packProducts: packProductsOption,
    rotary: rotaryOption,
    tokenizer,
    bench,
    samples,
    limit,
    seed,
    extraction,
    lcbWindow,
    regrade,
    out,
    data,
    preset,
    maxTokens,
    predictions,
    apiKeyEnv,
    concurrency,
    noCache,
    noTui,
    budgetUsd,
    budgetTokens,
    price,
    workspace: workspaceOption,
    store: storeOption,
    pipeline: pipelineStoreOption
  },
  (args) =>
    Effect.gen(function* () {
      const earlier = Option.getOrUndefined(args.regrade)
      const regraded = earlier !== undefined ? yield* regradeSource(earlier) : undefined
      const benches =
        args.bench.length > 0 ? args.bench.map((b) => benchmarkNamed(b) ?? b) : (regraded?.benches ?? benchmarkNames())
      const unknown = benches.filter((b) => !benchmarkNames().includes(b))
      if (unknown.length > 0) {
        // "gpqa" for gpqa_diamond, "lcb" is not guessed: only names that one contains the other.
        const near = unknown.flatMap((u) =>
          benchmarkNames().filter((n) => n.includes(u.toLowerCase()) || u.toLowerCase().includes(n))
        )
        return yield* usage(
          `--bench: unknown ${unknown.join(", ")}${near.length > 0 ? ` (did you mean ${near.join(", ")}?)` : ""}; known: ${benchmarkNames().join(", ")}`
        )
      }
      const window = Option.getOrUndefined(args.lcbWindow)
      const lcbWindow = window !== undefined ? parseDateWindow(window) : undefined
      if (window !== undefined && lcbWindow === undefined)
        return yield* usage(
          `--lcb-window ${window}: expected YYYY-MM..YYYY-MM, e.g. 2023-05..2024-05 (either end may be left open)`
        )
      if (regraded !== undefined && (Option.isSome(args.predictions) || Option.isSome(args.model)))
        return yield* usage("--regrade grades an earlier run's outputs: it takes neither --model nor --predictions")
      const preds = regraded?.generations ?? Option.getOrUndefined(args.predictions)
      const spec = Option.getOrUndefined(args.model)
      if (preds === undefined && spec === undefined)
        return yield* usage(
          "give --model openai:MODEL@BASE_URL, --predictions FILE to grade saved outputs, or --regrade DIR to regrade an earlier evaluation"
        )
      // A budget here is this run's: cache hits are free, so a rerun with a larger one pays only for what is new.
      const limits = { usd: Option.getOrUndefined(args.budgetUsd), tokens: Option.getOrUndefined(args.budgetTokens) }
      const budgeted = limits.usd !== undefined || limits.tokens !== undefined
      if (limits.usd !== undefined && Option.isNone(args.price) && spec !== undefined && !spec.startsWith("onnx:")) {
        return yield* usage(
          "--budget-usd needs the endpoint's --price IN,OUT (US dollars per million input and output tokens), or use --budget-tokens"
        )
      }
      const model =
        spec === undefined
          ? undefined
          : yield* EvalModel.make({
              spec,
              apiKey: process.env[args.apiKeyEnv] || undefined,
              concurrency: args.concurrency,
              threads: Option.getOrUndefined(args.threads),
              q4Compute: args.q4Compute,
              f16Compute: args.f16Compute,
              packProducts: args.packProducts,
              rotary: args.rotary,
              price: Option.getOrUndefined(args.price),
              cache: args.noCache ? "off" : "use",
              budget: budgeted ? { limits, whenReached: "fail" } : undefined
            }).pipe(Effect.catchTag("EvalModelError", (e) => usage(`--model: ${e.message}`)))
      const name = model?.name ?? regraded?.model ?? "predictions"
      const tokenizerPath = Option.getOrUndefined(args.tokenizer) ?? model?.localPath
      // Every benchmark's file is found before a model is loaded or a call is made.
      const noData = benches.flatMap((b) => {
        const files = benchmark(b)?.files ?? []
        return files.some((f) => existsSync(join(args.data, f))) ? [] : [`${b} (${files.join(" or ")})`]
      })
      if (noData.length > 0) {
        return yield* usage(
          `--data ${args.data}: no file for ${noData.join(", ")}; point --data at the folder that holds the benchmarks' files`
        )
      }
      const outDir = Option.getOrElse(args.out, () =>
        earlier !== undefined
          ? join(earlier, `regraded-${GRADER_VERSION.replace(/[^\w.-]+/g, "_")}`)
          : join(workspacePaths(args.workspace).root, "eval", evalRunFolder(name))
      )
      const progress = progressLine()
      const table =
        !args.noTui && dashboardTerminal({ keys: false })
          ? (yield* Effect.promise(() => import("../tui/EvalTable.js"))).startEvalTable(name)
          : undefined
      const lm = model?.lm ?? {
        roles: [],
        modelOf: () => name,
        complete: () => Effect.die("no model"),
        stats: Effect.succeed([])
      }
      const results = yield* evaluate({
        benches,
        dataDir: args.data,
        outDir,
        model: name,
        samples: Option.getOrUndefined(args.samples),
        limit: Option.getOrUndefined(args.limit),
        seed: args.seed,
        extraction: args.extraction as Extraction,
        lcbWindow,
        preset: (regraded?.preset ?? args.preset) as Preset,
        maxTokens: Option.getOrUndefined(args.maxTokens),
        concurrency: args.concurrency,
        predictions: preds,
        onProgress: (b, done, total, correct, tokens) =>
          table !== undefined
            ? table.update(b, done, total, correct, tokens)
            : progress.update(
                `${b}: ${done}/${total} graded, ${correct} correct (${((100 * correct) / Math.max(1, done)).toFixed(1)}%), ${(tokens / Math.max(1, done)).toFixed(0)} tokens/answer`
              )
      }).pipe(
        Effect.provideService(LanguageModel, lm),
        Effect.provide(
          Layer.merge(
            tokenizerPath === undefined
              ? QwenTokenCounterLive
              : TokenizerFileCounterLive(tokenizerPath).pipe(Layer.mapError((e) => usage(e.message))),
            SandboxLive()
          )
        ),
        Effect.catchAll((e) => (e instanceof Error ? usage(e.message) : failed(String(e)))),
        Effect.ensuring(Effect.sync(() => table?.close()))
      )
      progress.clear()
      yield* stdout(markdownReport([results]))
      yield* stderr(`results: ${relative(process.cwd(), join(outDir, "results.json"))}`)
      // Generations that failed are not answers: say so, and fail the command (a rerun retries them).
      const lost = results.benchmarks.filter((b) => b.failed !== undefined)
      if (lost.length > 0) {
        const total = results.benchmarks.reduce((n, b) => n + b.summary.samples + (b.failed?.samples ?? 0), 0)
        const missing = lost.reduce((n, b) => n + b.failed!.samples, 0)
        const budget = lm.budget !== undefined ? yield* lm.budget : undefined
        if (budget?.reached === true) {
          return yield* new CliFailure({
            message:
              `stopped at the budget (${describeSpent(budget)} spent): ` +
              `${missing} of ${total} generations are left out of the scores above (not sent once it was reached, or failed; each is in generations.jsonl with its reason). ` +
              "The answers so far are cached: run the same command with a larger budget to go on, paying only for the rest.",
            exitCode: 3
          })
        }
        return yield* failed(
          `${missing} of ${total} generations failed and are left out of the scores (each is in generations.jsonl with its error); run the same command again to retry them. First error: ${lost[0]!.failed!.firstError}`
        )
      }
    }).pipe(Effect.scoped, Effect.provide(namedStoreLayer(args.workspace, args.store, args.pipeline)))
).pipe(
  Command.withDescription(
    "Evaluate a model on MATH-500, AIME 2024, GPQA-Diamond, MMLU-Pro and LiveCodeBench: accuracy and output tokens side by side.\n" +
      "Examples:\n  fastcot eval --model openai:qwen2.5-7b@http://127.0.0.1:8000/v1 --bench math500,aime24 --data ./data\n" +
      "  fastcot eval --model onnx:./models/Qwen2.5-0.5B-Instruct#q4 --bench math500 --limit 20 --data ./data\n" +
      "  fastcot eval --predictions outputs.jsonl --bench math500 --data ./data\n  fastcot eval --model openai:m@http://127.0.0.1:8000/v1 --preset r1 --bench aime24,math500 --data ./data\n" +
      "  fastcot eval --regrade .fastcot/eval/RUN --data ./data   (the stored outputs, graded again by this grader)\n" +
      "  fastcot eval --model openai:m@http://127.0.0.1:8000/v1 --bench mmlu_pro --extraction official --limit 500 --seed 1 --data ./data"
  )
)
