import * as Effect from "effect/Effect"
import { EvalError } from "./errors.js"
import * as Schema from "effect/Schema"
import { createWriteStream, writeFileSync } from "node:fs"
import { join } from "node:path"
import { basename } from "node:path"
import {
  ChatRequest,
  type CacheMode,
  DEFAULT_SYSTEM_PROMPT,
  describeLlmError,
  ensureDirSync,
  LanguageModel,
  seededShuffle,
  TokenCounter
} from "@fastcot/core"
import {
  benchmark,
  type Benchmark,
  type EvalItem,
  type Extraction,
  GRADER_VERSION,
  loadBenchmark,
  PROMPT_VERSION
} from "./benchmarks.js"
import { type SampleOutcome, summarise, Summary } from "./metrics.js"
import { readPredictions } from "./predictions.js"
import type { Sandbox } from "./sandbox.js"

/** Sampling presets of current reasoning evaluations; results record which one was used. */
export const PRESETS = {
  /** DeepSeek-R1 style: T=0.6, top_p 0.95, long outputs, pass@1 averaged over k samples. */
  r1: { temperature: 0.6, top_p: 0.95, max_tokens: 32768 },
  /** Qwen2.5-Math style: greedy, 2048 new tokens. */
  greedy: { temperature: 0, max_tokens: 2048 }
} as const
export type Preset = keyof typeof PRESETS

/**
 * Samples per question a preset takes when `--samples` is not given: open-r1's counts for the R1
 * preset (AIME 64, MATH-500 4, GPQA-Diamond 8, LiveCodeBench 16), one otherwise.
 */
export const PRESET_SAMPLES: Record<Preset, Readonly<Record<string, number>>> = {
  r1: { aime24: 64, math500: 4, gpqa_diamond: 8, livecodebench: 16, mmlu_pro: 1 },
  greedy: {}
}

/** A window of LiveCodeBench contest dates, `YYYY-MM..YYYY-MM` (both months included). */
export interface DateWindow {
  readonly from: string
  readonly to: string
}

/** Parses `2023-05..2024-05` (either end may be left open: `2023-05..`); undefined when malformed. */
export const parseDateWindow = (text: string): DateWindow | undefined => {
  const m = /^\s*(\d{4}-\d{2})?\s*\.\.\s*(\d{4}-\d{2})?\s*$/.exec(text)
  if (m === null || (m[1] === undefined && m[2] === undefined)) return undefined
  return { from: m[1] ?? "0000-01", to: m[2] ?? "9999-12" }
}

export interface EvalOptions {
  readonly benches: ReadonlyArray<string>
  readonly dataDir: string
  readonly outDir: string
  readonly model: string
  /** Samples per question: one number for every benchmark, else the preset's count (see `PRESET_SAMPLES`). */
  readonly samples?: number | undefined
  /** At most this many questions per benchmark: a sample stratified by subject or category, seeded by `seed`. */
  readonly limit?: number | undefined
  /** Seeds `--limit`'s sample and GPQA's option shuffle (default 0); results.json records it. */
  readonly seed?: number | undefined
  /** How multiple-choice answers are read (default `fastcot`); results.json records it. */
  readonly extraction?: Extraction | undefined
  /** LiveCodeBench: only problems whose contest date falls in this window. */
  readonly lcbWindow?: DateWindow | undefined
  readonly preset: Preset
  readonly maxTokens?: number | undefined
  readonly systemPrompt?: string | undefined
  readonly concurrency: number
  readonly cache?: CacheMode | undefined
  /** Grade these saved outputs (JSONL: id, output) instead of calling a model. */
  readonly predictions?: string | undefined
  /** After each graded answer: the benchmark's answers graded so far, of how many, how many correct, and their output tokens. */
  readonly onProgress?:
    ((bench: string, done: number, total: number, correct: number, outputTokens: number) => void) | undefined
}

export const BenchResult = Schema.Struct({
  bench: Schema.String,
  file: Schema.String,
  sha256: Schema.String,
  /** Samples drawn per question (absent in results written before presets set it per benchmark). */
  samplesPerItem: Schema.optional(Schema.Number),
  /** Which questions were asked: all, or a stratified sample (`--limit`), with its seed and strata. */
  selection: Schema.optional(
    Schema.Struct({
      of: Schema.Number,
      limit: Schema.optional(Schema.Number),
      seed: Schema.Number,
      strata: Schema.optional(Schema.String)
    })
  ),
  /** LiveCodeBench's release (the file's name) and the contest-date window asked. */
  lcb: Schema.optional(
    Schema.Struct({
      version: Schema.String,
      window: Schema.optional(Schema.Struct({ from: Schema.String, to: Schema.String }))
    })
  ),
  /** The published scorer `--extraction official` reproduced for this benchmark. */
  officialScorer: Schema.optional(Schema.String),
  summary: Summary,
  groups: Schema.Record({ key: Schema.String, value: Summary }),
  /**
   * Generations the model layer could not get (after its retries): not model answers, so they
   * are left out of the scores above, listed in generations.jsonl with their error, and retried
   * by a rerun (failures are never cached). Absent in results written before it was counted.
   */
  failed: Schema.optional(Schema.Struct({ samples: Schema.Number, firstError: Schema.String })),
  /**
   * Graded from saved outputs (`--predictions`): the questions asked that the file has no output
   * for. They are left out of the scores (not counted wrong); absent when the file answers all.
   */
  withoutOutput: Schema.optional(Schema.Number)
})
export type BenchResult = typeof BenchResult.Type

/** results.json (a Schema: `fastcot report` and the desktop app read it back, see `readEvalResults`). */
export const EvalResults = Schema.Struct({
  fastcot: Schema.Literal("eval/v1"),
  model: Schema.String,
  settings: Schema.Struct({
    preset: Schema.Literal(...(Object.keys(PRESETS) as Array<Preset>)),
    sampling: Schema.Record({ key: Schema.String, value: Schema.Number }),
    samples: Schema.Number,
    limit: Schema.optional(Schema.Number),
    systemPrompt: Schema.String,
    promptVersion: Schema.String,
    graderVersion: Schema.String,
    tokenizer: Schema.String,
    predictions: Schema.optional(Schema.String),
    /** Ids of the predictions file that answer no question graded (a mistyped id, another benchmark's). */
    unmatchedPredictions: Schema.optional(Schema.Number),
    /** How multiple-choice answers were read (absent: fastcot's reading, before the option existed). */
    extraction: Schema.optional(Schema.Literal("fastcot", "official")),
    seed: Schema.optional(Schema.Number)
  }),
  startedAt: Schema.String,
  finishedAt: Schema.String,
  benchmarks: Schema.Array(BenchResult)
})
export type EvalResults = typeof EvalResults.Type

/**
 * At most `limit` items, sampled across groups (subject, category, difficulty) in proportion to
 * their sizes (largest remainder), each group's picks seeded by `seed`; the chosen items keep the
 * file's order. All items when `limit` is not below their number.
 */
export const stratifiedSample = (
  items: ReadonlyArray<EvalItem>,
  limit: number | undefined,
  seed: number
): ReadonlyArray<EvalItem> => {
  if (limit === undefined || limit >= items.length) return items
  const groups = new Map<string, Array<EvalItem>>()
  for (const item of items) groups.set(item.group ?? "", [...(groups.get(item.group ?? "") ?? []), item])
  const quotas = [...groups.entries()].map(([g, list]) => ({ g, list, exact: (limit * list.length) / items.length }))
  const take = new Map(quotas.map((q) => [q.g, Math.floor(q.exact)]))
  let left = limit - [...take.values()].reduce((a, b) => a + b, 0)
  for (const q of [...quotas].sort(
    (a, b) => b.exact - Math.floor(b.exact) - (a.exact - Math.floor(a.exact)) || a.g.localeCompare(b.g)
  )) {
    if (left === 0) break
    take.set(q.g, take.get(q.g)! + 1)
    left--
  }
  const chosen = new Set<EvalItem>()
  for (const q of quotas)
    for (const item of seededShuffle(q.list, `${seed}:${q.g}`).slice(0, take.get(q.g))) chosen.add(item)
  return items.filter((i) => chosen.has(i))
}

/** The folder name of an evaluation run: the model's name made file-safe, and the time it started. */
export const evalRunFolder = (model: string, at: Date = new Date()): string =>
  `${model.replace(/[^\w.-]+/g, "_")}-${at.toISOString().replace(/[:.]/g, "-")}`

/**
 * Evaluates a model (the `model` role of the LanguageModel service) on benchmarks, or grades saved
 * predictions: accuracy and output tokens side by side, per benchmark and per subject. Generations
 * go through the LLM cache, so a rerun is free and an interrupted one resumes. Writes
 * `results.json` (with every setting that produced it) and `generations.jsonl` to `outDir`.
 */
export const evaluate = (options: EvalOptions) =>
  Effect.gen(function* () {
    const counter = yield* TokenCounter
    const startedAt = new Date().toISOString()
    const sampling: Record<string, number> = { ...PRESETS[options.preset] }
    if (options.maxTokens !== undefined) sampling["max_tokens"] = options.maxTokens
    const systemPrompt = options.systemPrompt ?? DEFAULT_SYSTEM_PROMPT
    const seed = options.seed ?? 0
    const extraction = options.extraction ?? "fastcot"
    const predictions =
      options.predictions !== undefined
        ? yield* Effect.tryPromise({
            try: () => readPredictions(options.predictions!),
            catch: (e) =>
              e instanceof EvalError
                ? e
                : new EvalError({
                    reason: "predictions",
                    message: `${options.predictions}: ${e instanceof Error ? e.message : String(e)}`
                  })
          })
        : undefined
    ensureDirSync(options.outDir)
    const generations = createWriteStream(join(options.outDir, "generations.jsonl"))
    const results: Array<BenchResult> = []
    const unanswered: Array<string> = []
    for (const name of options.benches) {
      const b: Benchmark | undefined = benchmark(name)
      if (b === undefined)
        return yield* new EvalError({ reason: "unknown-benchmark", message: `unknown benchmark ${name}` })
      const loaded = yield* loadBenchmark(b, options.dataDir, { seed })
      const windowed =
        name === "livecodebench" && options.lcbWindow !== undefined
          ? loaded.items.filter((i) => inWindow(i.date, options.lcbWindow!))
          : loaded.items
      const items = stratifiedSample(windowed, options.limit, seed)
      const samplesPerItem = options.samples ?? PRESET_SAMPLES[options.preset][name] ?? 1
      const work = items.flatMap((item) =>
        Array.from(
          { length: predictions !== undefined ? (predictions.get(name, item)?.length ?? 0) : samplesPerItem },
          (_, sample) => ({ item, sample })
        )
      )
      // Questions the saved outputs do not answer: those with no sample to grade.
      const withoutOutput = predictions === undefined ? 0 : items.length - new Set(work.map((w) => w.item)).size
      // Saved outputs are graded on the benchmarks they answer; one they answer nothing of is left out.
      if (predictions !== undefined && work.length === 0) {
        unanswered.push(
          `${name} (ids like ${items
            .slice(0, 2)
            .map((i) => `\`${i.id}\``)
            .join(", ")})`
        )
        continue
      }
      let done = 0
      let correct = 0
      let tokensSoFar = 0
      let firstError: string | undefined
      const progressed = () => options.onProgress?.(name, ++done, work.length, correct, tokensSoFar)
      const attempts = yield* Effect.forEach(
        work,
        ({ item, sample }) =>
          Effect.gen(function* () {
            let output: string
            let reasoning: string | undefined
            let truncated = false
            let serverTokens: number | undefined
            let reasoningTokens: number | undefined
            if (predictions !== undefined) {
              const saved = predictions.get(name, item)![sample]!
              output = saved.output
              truncated = saved.truncated
            } else {
              const lm = yield* LanguageModel
              const messages = [
                ...(systemPrompt !== "" ? [{ role: "system" as const, content: systemPrompt }] : []),
                { role: "user" as const, content: b.prompt(item) }
              ]
              const c = yield* lm
                .complete("model", new ChatRequest({ messages, ...sampling }), {
                  sampleIndex: sample,
                  cache: options.cache
                })
                .pipe(Effect.either)
              if (c._tag === "Left") {
                const error = describeLlmError(c.left)
                firstError ??= error
                progressed()
                generations.write(JSON.stringify({ bench: name, id: item.id, sample, error }) + "\n")
                return undefined
              }
              output = c.right.text
              reasoning = c.right.reasoning
              truncated = c.right.finishReason === "length"
              serverTokens = c.right.usage.completionTokens > 0 ? c.right.usage.completionTokens : undefined
              reasoningTokens = c.right.usage.reasoningTokens
            }
            // A reply cut at max_tokens has no final answer: it counts as "no answer", reported as truncated.
            const grade = truncated
              ? {
                  correct: false,
                  failure: "no-answer" as const,
                  reason: "no-answer: truncated at max_tokens",
                  extracted: undefined,
                  key: undefined
                }
              : yield* b.grade(item, output, extraction)
            const outputTokens = counter.count((reasoning ?? "") + output)
            if (grade.correct) correct++
            tokensSoFar += outputTokens
            progressed()
            generations.write(
              JSON.stringify({
                bench: name,
                id: item.id,
                sample,
                output,
                reasoning,
                correct: grade.correct,
                extracted: grade.extracted,
                reason: grade.reason,
                outputTokens,
                serverTokens,
                truncated
              }) + "\n"
            )
            return {
              outcome: {
                itemId: item.id,
                correct: grade.correct,
                key: grade.key,
                noAnswer: grade.failure === "no-answer",
                truncated,
                outputTokens,
                reasoningTokens: reasoningTokens ?? (reasoning !== undefined ? counter.count(reasoning) : undefined)
              } satisfies SampleOutcome,
              item
            }
          }),
        { concurrency: options.concurrency }
      )
      const outcomes = attempts.filter((a) => a !== undefined)
      const failures = attempts.length - outcomes.length
      const groups: Record<string, Summary> = {}
      const byGroup = new Map<string, Array<SampleOutcome>>()
      for (const { outcome, item } of outcomes) {
        const g = (item as EvalItem).group
        if (g !== undefined) byGroup.set(g, [...(byGroup.get(g) ?? []), outcome])
      }
      for (const [g, list] of byGroup) groups[g] = summarise(list)
      results.push({
        bench: name,
        file: loaded.file,
        sha256: loaded.sha256,
        samplesPerItem,
        selection: {
          of: windowed.length,
          ...(options.limit !== undefined && options.limit < windowed.length
            ? { limit: options.limit, strata: "subject/category" }
            : {}),
          seed
        },
        ...(name === "livecodebench"
          ? {
              lcb: {
                version: basename(loaded.file).replace(/\.(jsonl|json|parquet)$/, ""),
                ...(options.lcbWindow !== undefined ? { window: options.lcbWindow } : {})
              }
            }
          : {}),
        ...(extraction === "official" && b.officialScorer !== undefined ? { officialScorer: b.officialScorer } : {}),
        summary: summarise(outcomes.map((o) => o.outcome)),
        groups,
        ...(failures > 0 ? { failed: { samples: failures, firstError: firstError ?? "" } } : {}),
        ...(withoutOutput > 0 ? { withoutOutput } : {})
      })
    }
    yield* Effect.promise(() => new Promise<void>((r) => generations.end(() => r())))
    if (predictions !== undefined && results.length === 0) {
      return yield* new EvalError({
        reason: "unmatched-predictions",
        message: `${options.predictions}: none of its ${predictions.ids} ids is an item of ${unanswered.join("; ")}`
      })
    }
    const report: EvalResults = {
      fastcot: "eval/v1",
      model: options.model,
      settings: {
        preset: options.preset,
        sampling,
        samples: options.samples ?? Math.max(1, ...results.map((r) => r.samplesPerItem ?? 1)),
        limit: options.limit,
        systemPrompt,
        promptVersion: PROMPT_VERSION,
        graderVersion: GRADER_VERSION,
        tokenizer: counter.name,
        predictions: options.predictions,
        ...(predictions !== undefined && predictions.unused() > 0
          ? { unmatchedPredictions: predictions.unused() }
          : {}),
        extraction,
        seed
      },
      startedAt,
      finishedAt: new Date().toISOString(),
      benchmarks: results
    }
    writeFileSync(join(options.outDir, "results.json"), JSON.stringify(report, null, 2) + "\n")
    return report
  })

const inWindow = (date: string | undefined, w: DateWindow): boolean => {
  if (date === undefined) return false
  const month = date.slice(0, 7)
  return month >= w.from && month <= w.to
}

export type EvaluateRequirements = LanguageModel | TokenCounter | Sandbox
