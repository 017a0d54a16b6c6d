import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { createWriteStream, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { ChatRequest, type CacheMode, DEFAULT_SYSTEM_PROMPT, ensureDirSync, LanguageModel, TokenCounter } from "@fastcot/core"
import { benchmark, type Benchmark, type EvalItem, GRADER_VERSION, loadBenchmark, PROMPT_VERSION } from "./benchmarks.js"
import { type SampleOutcome, summarise, Summary } from "./metrics.js"
import type { Sandbox } from "./sandbox.js"

/** Sampling presets of current reasoning evaluations; results record which one was used. */
export const PRESETS = {
  /** DeepSeek-R1 style: T=0.6, top_p 0.95, long outputs, pass@1 averaged over k samples. */
  r1: { temperature: 0.6, top_p: 0.95, max_tokens: 32768 },
  /** Qwen2.5-Math style: greedy, 2048 new tokens. */
  greedy: { temperature: 0, max_tokens: 2048 }
} as const
export type Preset = keyof typeof PRESETS

export interface EvalOptions {
  readonly benches: ReadonlyArray<string>
  readonly dataDir: string
  readonly outDir: string
  readonly model: string
  readonly samples: number
  readonly limit?: number | undefined
  readonly preset: Preset
  readonly maxTokens?: number | undefined
  readonly systemPrompt?: string | undefined
  readonly concurrency: number
  readonly cache?: CacheMode | undefined
  /** Grade these saved outputs (JSONL: id, output) instead of calling a model. */
  readonly predictions?: string | undefined
  /** After each graded answer: the benchmark's answers graded so far, of how many, how many correct, and their output tokens. */
  readonly onProgress?: ((bench: string, done: number, total: number, correct: number, outputTokens: number) => void) | undefined
}

export const BenchResult = Schema.Struct({
  bench: Schema.String,
  file: Schema.String,
  sha256: Schema.String,
  summary: Summary,
  groups: Schema.Record({ key: Schema.String, value: Summary }),
  /**
   * Generations the model layer could not get (after its retries): not model answers, so they
   * are left out of the scores above, listed in generations.jsonl with their error, and retried
   * by a rerun (failures are never cached). Absent in results written before it was counted.
   */
  failed: Schema.optional(Schema.Struct({ samples: Schema.Number, firstError: Schema.String }))
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
    predictions: Schema.optional(Schema.String)
  }),
  startedAt: Schema.String,
  finishedAt: Schema.String,
  benchmarks: Schema.Array(BenchResult)
})
export type EvalResults = typeof EvalResults.Type

/**
 * Saved outputs by id. A line may name its `bench` (as `generations.jsonl` lines do): it then
 * answers that benchmark only, so a whole earlier run's generations can be regraded at once even
 * where benchmarks share ids.
 */
interface Predictions {
  readonly get: (bench: string, id: string) => ReadonlyArray<string> | undefined
  readonly ids: number
}
const Predictions = (file: string): Predictions => {
  const any = new Map<string, Array<string>>()
  const byBench = new Map<string, Map<string, Array<string>>>()
  const ids = new Set<string>()
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (line.trim() === "") return
      let row: { id?: unknown; output?: unknown; bench?: unknown }
      try {
        row = JSON.parse(line) as { id?: unknown; output?: unknown; bench?: unknown }
      } catch {
        throw new Error(`${file}:${i + 1}: malformed JSON`)
      }
      if (row.id === undefined || typeof row.output !== "string") throw new Error(`${file}:${i + 1}: each line needs \`id\` and a string \`output\``)
      if (row.bench !== undefined && typeof row.bench !== "string") throw new Error(`${file}:${i + 1}: \`bench\`, when given, must be a benchmark's name`)
      const id = String(row.id)
      ids.add(row.bench === undefined ? id : `${row.bench}/${id}`)
      let map = any
      if (row.bench !== undefined) {
        map = byBench.get(row.bench) ?? new Map<string, Array<string>>()
        byBench.set(row.bench, map)
      }
      map.set(id, [...(map.get(id) ?? []), row.output])
    })
  return { get: (bench, id) => byBench.get(bench)?.get(id) ?? any.get(id), ids: ids.size }
}

/** The folder name of an evaluation run: the model's name made file-safe, and the time it started. */
export const evalRunFolder = (model: string, at: Date = new Date()): string => `${model.replace(/[^\w.-]+/g, "_")}-${at.toISOString().replace(/[:.]/g, "-")}`

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
    const predictions = options.predictions !== undefined ? yield* Effect.try({ try: () => Predictions(options.predictions!), catch: (e) => e as Error }) : undefined
    ensureDirSync(options.outDir)
    const generations = createWriteStream(join(options.outDir, "generations.jsonl"))
    const results: Array<BenchResult> = []
    const unanswered: Array<string> = []
    for (const name of options.benches) {
      const b: Benchmark | undefined = benchmark(name)
      if (b === undefined) return yield* Effect.fail(new Error(`unknown benchmark ${name}`))
      const loaded = yield* loadBenchmark(b, options.dataDir)
      const items = options.limit !== undefined ? loaded.items.slice(0, options.limit) : loaded.items
      const work = items.flatMap((item) => Array.from({ length: predictions !== undefined ? (predictions.get(name, item.id)?.length ?? 0) : options.samples }, (_, sample) => ({ item, sample })))
      // Saved outputs are graded on the benchmarks they answer; one they answer nothing of is left out.
      if (predictions !== undefined && work.length === 0) {
        unanswered.push(`${name} (ids like ${items.slice(0, 2).map((i) => `\`${i.id}\``).join(", ")})`)
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
              output = predictions.get(name, item.id)![sample]!
            } else {
              const lm = yield* LanguageModel
              const messages = [
                ...(systemPrompt !== "" ? [{ role: "system" as const, content: systemPrompt }] : []),
                { role: "user" as const, content: b.prompt(item) }
              ]
              const c = yield* lm.complete("model", new ChatRequest({ messages, ...sampling }), { sampleIndex: sample, cache: options.cache }).pipe(Effect.either)
              if (c._tag === "Left") {
                const error = `${c.left._tag}: ${c.left.message}`
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
            const grade = yield* b.grade(item, output)
            const outputTokens = counter.count((reasoning ?? "") + output)
            if (grade.correct) correct++
            tokensSoFar += outputTokens
            progressed()
            generations.write(JSON.stringify({ bench: name, id: item.id, sample, output, reasoning, correct: grade.correct, extracted: grade.extracted, reason: grade.reason, outputTokens, serverTokens, truncated }) + "\n")
            return {
              outcome: {
                itemId: item.id,
                correct: grade.correct,
                noAnswer: grade.reason === "no-answer" || grade.reason.startsWith("no-answer"),
                truncated: truncated && grade.reason.startsWith("no-answer"),
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
        summary: summarise(outcomes.map((o) => o.outcome)),
        groups,
        ...(failures > 0 ? { failed: { samples: failures, firstError: firstError ?? "" } } : {})
      })
    }
    yield* Effect.promise(() => new Promise<void>((r) => generations.end(() => r())))
    if (predictions !== undefined && results.length === 0) {
      return yield* Effect.fail(new Error(`${options.predictions}: none of its ${predictions.ids} ids is an item of ${unanswered.join("; ")}`))
    }
    const report: EvalResults = {
      fastcot: "eval/v1",
      model: options.model,
      settings: {
        preset: options.preset,
        sampling,
        samples: options.samples,
        limit: options.limit,
        systemPrompt,
        promptVersion: PROMPT_VERSION,
        graderVersion: GRADER_VERSION,
        tokenizer: counter.name,
        predictions: options.predictions
      },
      startedAt,
      finishedAt: new Date().toISOString(),
      benchmarks: results
    }
    writeFileSync(join(options.outDir, "results.json"), JSON.stringify(report, null, 2) + "\n")
    return report
  })

export type EvaluateRequirements = LanguageModel | TokenCounter | Sandbox
