import * as Effect from "effect/Effect"
import { alignStage, type ItemStageReport, longToShortStage, verifyStage } from "../align/stages.js"
import { sampleTeacher, type StageReport } from "../collect/teacherSampling.js"
import { type FilterReport, filterProblems } from "../collect/filterProblems.js"
import type { CacheMode } from "../llm/LanguageModel.js"
import { LanguageModel } from "../llm/LanguageModel.js"
import type { PipelineConfig } from "./config.js"
import type { RunEvent } from "./events.js"
import { roleConcurrency } from "./models.js"

export const STAGES = ["filter", "teacher", "long-to-short", "verify", "align"] as const
export type StageName = (typeof STAGES)[number]

export interface PipelineOptions {
  readonly cache?: CacheMode | undefined
  readonly onEvent?: ((event: RunEvent) => void) | undefined
  readonly limit?: number | undefined
  readonly stages?: ReadonlyArray<StageName> | undefined
}

export interface PipelineReport {
  readonly filter?: FilterReport | undefined
  readonly teacher?: StageReport | undefined
  readonly longToShort?: ItemStageReport | undefined
  readonly verify?: ItemStageReport | undefined
  readonly align?: ItemStageReport | undefined
}

/**
 * The recipe, stage by stage over the store: dedup and decontamination, teacher sampling, long-to-short, answer
 * verification, then the judge → expand/simplify loop. Each stage picks up whatever is pending at
 * its step, so a rerun continues from the store (and the LLM cache pays for nothing twice).
 */
export const runPipeline = (config: PipelineConfig, options: PipelineOptions = {}) =>
  Effect.gen(function* () {
    const lm = yield* LanguageModel
    const wanted = new Set(options.stages ?? STAGES)
    const has = (role: "teacher" | "rewriter" | "judge") => lm.roles.includes(role)
    const base = { cache: options.cache, onEvent: options.onEvent }
    const filter = wanted.has("filter") ? yield* filterProblems(config.stages.filter) : undefined
    const teacher = wanted.has("teacher") && has("teacher")
      ? yield* sampleTeacher(config, { ...base, concurrency: roleConcurrency(config, "teacher"), limit: options.limit })
      : undefined
    const longToShort = wanted.has("long-to-short") ? yield* longToShortStage(config, { ...base, concurrency: roleConcurrency(config, "rewriter") }) : undefined
    const verify = wanted.has("verify") ? yield* verifyStage({ ...base, concurrency: 8 }) : undefined
    const align = wanted.has("align") && has("judge")
      ? yield* alignStage(config, { ...base, concurrency: Math.max(roleConcurrency(config, "judge"), 1) })
      : undefined
    return { filter, teacher, longToShort, verify, align } satisfies PipelineReport
  })
