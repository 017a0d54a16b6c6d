import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { CacheMode } from "../llm/LanguageModel.js"
import { LanguageModel } from "../llm/LanguageModel.js"
import { describeLlmError, type LlmError, repeatsForRequest } from "../llm/errors.js"
import { ChatRequest, type Completion } from "../llm/schema.js"
import type { PipelineConfig } from "../recipe/config.js"
import type { RunEvent } from "../recipe/events.js"
import { describeReason, type DropCode, type Item, type KeptAs, makeItem, type Stage } from "../schema/item.js"
import type { HandedItem } from "../schema/handedItem.js"
import type { Problem } from "../schema/problem.js"
import { type CallRecord, makeRound, type Round, type Verification } from "../schema/round.js"
import { makeTrace, type Trace } from "../schema/trace.js"
import { makeVerdict, type VerdictLevel } from "../schema/verdict.js"
import { drainConcurrently } from "../util/concurrent.js"
import { RunStore } from "../store/RunStore.js"
import type { StoreError } from "../store/errors.js"
import { TokenCounter } from "../tokens/TokenCounter.js"
import { statedAnswer, Verifier } from "../verify/Verifier.js"
import { loadPrompt, parseVerdict, traceTurn, type VersionedPrompt } from "./prompts.js"

export interface ItemStageOptions {
  readonly cache?: CacheMode | undefined
  readonly concurrency: number
  readonly onEvent?: ((event: RunEvent) => void) | undefined
  /**
   * Items the stages before hand over in memory as they save them, taken besides (and ahead of
   * the end of) those read from the store: the stage neither waits for its next pass to find them
   * nor reads them back. The stream ends when the stages before have finished.
   */
  readonly inbox?: Stream.Stream<HandedItem> | undefined
  /**
   * Told of each item this stage saves still pending (at its next stage), after the save and
   * before this stage's lease on it is given up.
   */
  readonly handOff?: ((handed: HandedItem) => Effect.Effect<void, StoreError>) | undefined
  /**
   * Whether items that failed at this stage before are tried again (default true). A run's first
   * pass does; its later passes take only pending items, so an item whose call fails for good
   * (a refusal the cache answers again) is tried once a run, not in every pass.
   */
  readonly retryFailed?: boolean | undefined
}

export interface ItemStageReport {
  readonly stage: string
  readonly processed: number
  readonly advanced: number
  readonly kept: number
  readonly dropped: number
  /** Items a model call failed for (after its retries, or refused for good): stored as failed, with what was paid for; the next run retries them. */
  readonly failed: number
  /**
   * Pending items the pass found held by another worker sharing the run (0 on SQLite): their work
   * is not done, and should that worker die, a later pass takes it over.
   */
  readonly heldElsewhere?: number | undefined
}

/**
 * An item a model error stopped: failed, with the server's message and every round so far (what
 * was paid for stays in its history). A rerun tries it again; a refusal that repeats is answered
 * from the store without being sent.
 */
const failedItem = (
  item: Item,
  rounds: ReadonlyArray<Round>,
  role: "rewriter" | "judge",
  error: LlmError,
  updatedAt: string
): Item =>
  makeItem({
    ...item,
    fate: "failed",
    reason: {
      code: repeatsForRequest(error) ? "request-refused" : `${role}-error`,
      detail: `${role}: ${describeLlmError(error)}`
    },
    rounds,
    updatedAt
  })

/** The lease key of an item's work at a stage (see `RunStore.claim`). */
export const stageWorkKey = (stage: Stage, itemId: string) => `${stage}:${itemId}`

/**
 * Pending items at a stage (and with `retryFailed` those that failed there) that this worker
 * claims, a page at a time (`RunStore.claimItems`: keyset on id, so items that move on drop out;
 * items another worker holds are counted to `onHeldElsewhere`). On a shared store a page is the
 * stage's concurrency, so that a worker holds no more than it works on and workers sharing a run
 * share its last items too.
 */
const pendingAt = (
  stage: Stage,
  concurrency: number,
  retryFailed: boolean,
  onHeldElsewhere: (items: number) => void
): Stream.Stream<Item, StoreError, RunStore> =>
  Stream.unwrap(
    Effect.map(RunStore, (store) => {
      const size = store.shared ? Math.max(4, concurrency) : 200
      const fates: ReadonlyArray<Item["fate"]> = retryFailed ? ["pending", "failed"] : ["pending"]
      return Stream.paginateChunkEffect(undefined as string | undefined, (afterId) =>
        Effect.map(store.claimItems({ stage, fates, afterId, limit: size }, stageWorkKey(stage, "")), (page) => {
          if (page.heldElsewhere > 0) onHeldElsewhere(page.heldElsewhere)
          return [
            Chunk.fromIterable(page.items),
            page.listed < size || page.lastId === undefined ? Option.none() : Option.some(page.lastId)
          ] as const
        })
      )
    })
  )

const callRecord = (role: CallRecord["role"], c: Completion, promptVersion: string): CallRecord => ({
  role,
  model: c.model,
  promptVersion,
  promptTokens: c.usage.promptTokens,
  completionTokens: c.usage.completionTokens,
  costUsd: c.costUsd,
  latencyMs: c.latencyMs,
  cached: c.cached
})

/** A failed verification's drop code, as the verifier gave it. */
const dropCode = (v: Verification): DropCode => v.failure ?? "answer-mismatch"

/**
 * Runs `step` over every pending item at `stage`, `concurrency` at a time, saving each item as
 * soon as its step is done (one transaction), and reports counts.
 */
const runItemStage = (
  name: string,
  stage: Stage,
  options: ItemStageOptions,
  step: (
    item: Item,
    problem: Problem
  ) => Effect.Effect<Item, StoreError, RunStore | LanguageModel | Verifier | TokenCounter>
) =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const counts = { processed: 0, advanced: 0, kept: 0, dropped: 0, failed: 0, heldElsewhere: 0 }
    const clock = yield* Effect.clock
    const started = clock.unsafeCurrentTimeMillis()
    const emit = options.onEvent ?? (() => {})
    // Items this pass has taken, from the store or the inbox: an item both hold (or that a page
    // read before its save still lists) is worked on once.
    const taken = new Set<string>()
    const fromStore = Stream.map(
      pendingAt(stage, options.concurrency, options.retryFailed ?? true, (n) => (counts.heldElsewhere += n)),
      (item) => ({ item, problem: undefined })
    )
    const fromInbox: Stream.Stream<{ item: Item; problem: Problem | undefined }, StoreError, RunStore> =
      options.inbox === undefined
        ? Stream.empty
        : // On a shared store, what is handed over was claimed for this stage by the hand-off.
          options.inbox
    const work = (item: Item, handedProblem: Problem | undefined) =>
      Effect.gen(function* () {
        // A sample the teacher failed to give has no trace: the teacher stage asks for it again.
        if (item.fate === "failed" && item.trace === undefined) return
        const problem =
          handedProblem !== undefined ? Option.some(handedProblem) : yield* store.getProblem(item.problemId)
        if (Option.isNone(problem)) return
        // A failed item is tried again from where it stopped.
        const retried = item.fate === "failed" ? makeItem({ ...item, fate: "pending", reason: undefined }) : item
        const next = yield* step(retried, problem.value)
        counts.processed++
        yield* store.saveItem(next)
        if (next.fate === "pending" && options.handOff !== undefined)
          yield* options.handOff({ item: next, problem: problem.value })
        if (next.fate === "failed") {
          counts.failed++
          emit({
            _tag: "item",
            stage: name,
            itemId: item.id,
            problemId: item.problemId,
            outcome: "failed",
            reason: next.reason?.detail,
            fate: "failed",
            reasonCode: next.reason?.code
          })
          return
        }
        if (next.fate === "kept") counts.kept++
        else if (next.fate === "dropped") counts.dropped++
        else counts.advanced++
        emit({
          _tag: "item",
          stage: name,
          itemId: item.id,
          problemId: item.problemId,
          outcome: next.fate === "dropped" ? "dropped" : "ok",
          reason: next.reason !== undefined ? describeReason(next.reason) : undefined,
          fate: next.fate,
          keptAs: next.keptAs,
          reasonCode: next.reason?.code,
          tokensBefore: next.fate === "kept" ? (next.original ?? next.trace)?.tokens?.reasoning : undefined,
          tokensAfter: next.fate === "kept" ? next.trace?.tokens?.reasoning : undefined
        })
      }).pipe(Effect.ensuring(Effect.sync(() => store.release([stageWorkKey(stage, item.id)]))))
    yield* drainConcurrently(
      Stream.merge(fromStore, fromInbox),
      ({ item, problem }) => {
        if (taken.has(item.id)) return Effect.void
        taken.add(item.id)
        return work(item, problem)
      },
      options.concurrency
    )
    emit({
      _tag: "stage-done",
      stage: name,
      done: counts.processed,
      failed: counts.failed,
      skipped: 0,
      elapsedMs: clock.unsafeCurrentTimeMillis() - started
    })
    return { stage: name, ...counts } satisfies ItemStageReport
  })

/** Now, from the Clock in context, as records write it. */
const isoNow = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/**
 * Stage 1, long-to-short: imported and teacher traces waiting at `collect` move to `verify`;
 * long (R1-style) ones above the token threshold are first rewritten with the simplify prompt.
 */
export const longToShortStage = (config: PipelineConfig, options: ItemStageOptions) =>
  Effect.gen(function* () {
    const lm = yield* LanguageModel
    const counter = yield* TokenCounter
    const prompt = loadPrompt("simplify", config.stages.align.smallModel)
    const threshold = config.stages.collect.longToShortAboveTokens
    const sampling = config.models.rewriter?.sampling ?? {}
    const store = yield* RunStore
    return yield* runItemStage("long-to-short", "collect", options, (item, problem) =>
      Effect.gen(function* () {
        // Traces of duplicate, contaminated or unverifiable problems go no further.
        const flag = yield* store.problemFlag(problem.id)
        if (Option.isSome(flag))
          return makeItem({
            ...item,
            fate: "dropped",
            reason: { code: flag.value.flag, detail: flag.value.detail },
            updatedAt: yield* isoNow
          })
        const trace = item.trace
        if (trace === undefined)
          return makeItem({
            ...item,
            fate: "dropped",
            reason: { code: "no-trace", detail: "the item has no trace" },
            updatedAt: yield* isoNow
          })
        // A reasoning that never ended is not offered to long-to-short (or anyone) as complete.
        if (trace.cutOff === true)
          return makeItem({
            ...item,
            fate: "dropped",
            reason: {
              code: "reasoning-cut-off",
              detail: "the trace's reasoning never ends: the reply was cut off inside it"
            },
            updatedAt: yield* isoNow
          })
        const tokens = counter.count(trace.reasoning)
        if (!trace.long || tokens <= threshold) return makeItem({ ...item, stage: "verify", updatedAt: yield* isoNow })
        if (!lm.roles.includes("rewriter")) {
          return makeItem({
            ...item,
            fate: "dropped",
            reason: {
              code: "no-rewriter",
              detail: `a ${tokens}-token trace needs long-to-short, and no rewriter is configured`
            },
            updatedAt: yield* isoNow
          })
        }
        const startedAt = yield* isoNow
        const result = yield* lm
          .complete("rewriter", promptRequest(prompt, problem, trace, sampling), { cache: options.cache })
          .pipe(Effect.either)
        if (result._tag === "Left") return failedItem(item, item.rounds, "rewriter", result.left, yield* isoNow)
        const c = result.right
        const short = makeTrace({
          reasoning: c.text.trim(),
          finalAnswer: statedAnswer(problem, c.text),
          origin: "long-to-short",
          model: c.model,
          promptVersion: prompt.version
        })
        return makeItem({
          ...item,
          stage: "verify",
          trace: short,
          original: item.original ?? trace,
          rounds: [
            ...item.rounds,
            makeRound({
              index: item.rounds.length,
              action: "long-to-short",
              input: trace,
              output: short,
              calls: [callRecord("rewriter", c, prompt.version)],
              startedAt,
              finishedAt: yield* isoNow,
              note: `${tokens} reasoning tokens above ${threshold}`
            })
          ],
          updatedAt: yield* isoNow
        })
      })
    )
  })

/** Answer verification: a trace moves on to alignment only if it reaches the reference answer. */
export const verifyStage = (options: ItemStageOptions) =>
  Effect.gen(function* () {
    const verifier = yield* Verifier
    return yield* runItemStage("verify", "verify", options, (item, problem) =>
      Effect.gen(function* () {
        const startedAt = yield* isoNow
        const v = yield* verifier.verify(problem, item.trace!)
        const round = makeRound({
          index: item.rounds.length,
          action: "verify",
          input: item.trace,
          verification: v,
          calls: [],
          startedAt,
          finishedAt: yield* isoNow,
          note: verifier.name
        })
        return v.ok
          ? makeItem({ ...item, stage: "align", rounds: [...item.rounds, round], updatedAt: yield* isoNow })
          : makeItem({
              ...item,
              fate: "dropped",
              reason: { code: dropCode(v), detail: v.reason },
              rounds: [...item.rounds, round],
              updatedAt: yield* isoNow
            })
      })
    )
  })

/**
 * The verdict of k judges: the most frequent parsed level; unparseable only when no vote parsed.
 * Ties go to medium when it is among the tied levels, else to hard (simplifying is the safer
 * rewrite for a small model).
 */
export const majorityVerdict = (votes: ReadonlyArray<VerdictLevel>): VerdictLevel => {
  const counts = new Map<VerdictLevel, number>()
  for (const v of votes) if (v !== "unparseable") counts.set(v, (counts.get(v) ?? 0) + 1)
  if (counts.size === 0) return "unparseable"
  const best = Math.max(...counts.values())
  const tied = (["medium", "hard", "easy"] as const).filter((l) => counts.get(l) === best)
  return tied[0]!
}

/** A judge or rewriter request: the recipe prompt as system turn, the trace as user turn. */
const promptRequest = (
  prompt: VersionedPrompt,
  problem: Problem,
  trace: Trace,
  sampling: NonNullable<PipelineConfig["models"]["rewriter"]>["sampling"],
  sample = 0,
  choice?: ReadonlyArray<string>
) =>
  new ChatRequest({
    messages: [
      { role: "system", content: prompt.text },
      { role: "user", content: traceTurn(problem, trace) }
    ],
    temperature: sampling.temperature,
    top_p: sampling.top_p,
    max_tokens: sampling.max_tokens,
    seed: sampling.seed !== undefined ? sampling.seed + sample : undefined,
    stop: sampling.stop,
    choice
  })

/**
 * Stage 2, cognitive alignment: judge each verified trace from a small model's point of view;
 * medium is kept, easy is expanded, hard is simplified; every rewrite is verified (and re-tried
 * when it no longer reaches the answer) and judged again, up to `maxRounds` rewrites. Every call
 * is recorded as a round; an item that never reaches medium is dropped with the reason.
 */
export const alignStage = (config: PipelineConfig, options: ItemStageOptions) =>
  Effect.gen(function* () {
    const lm = yield* LanguageModel
    const verifier = yield* Verifier
    const counter = yield* TokenCounter
    // Real token counts (never length/4) on the trace the item started from and the one it ends with.
    const counted = (t: Trace): Trace =>
      t.tokens !== undefined
        ? t
        : makeTrace({
            ...t,
            tokens: {
              reasoning: counter.count(t.reasoning),
              answer: counter.count(t.finalAnswer ?? ""),
              tokenizer: counter.name
            }
          })
    const settings = config.stages.align
    const judgePrompt = loadPrompt("judge", settings.smallModel)
    const expandPrompt = loadPrompt("expand", settings.smallModel)
    const simplifyPrompt = loadPrompt("simplify", settings.smallModel)
    const judgeSampling = config.models.judge?.sampling ?? {}
    const rewriteSampling = config.models.rewriter?.sampling ?? {}

    return yield* runItemStage("align", "align", options, (start, problem) =>
      Effect.gen(function* () {
        const rounds = [...start.rounds]
        const push = (r: Omit<ConstructorParameters<typeof Round>[0], "index">) =>
          rounds.push(makeRound({ ...r, index: rounds.length }))
        const finish = (
          fields: { fate: Item["fate"]; keptAs?: KeptAs; reason?: Item["reason"]; trace: Trace },
          updatedAt: string
        ) => {
          const original = start.original ?? (fields.trace !== start.trace ? start.trace : undefined)
          return makeItem({
            ...start,
            ...fields,
            trace: counted(fields.trace),
            stage: "done",
            original: original !== undefined ? counted(original) : undefined,
            rounds,
            updatedAt
          })
        }
        let trace = start.trace!
        let first: VerdictLevel | undefined
        const history: Array<string> = []
        for (let round = 0; ; round++) {
          // Judge (k times when settings.judges > 1, by majority), re-asking an unparseable reply up to judgeRetries times.
          const votes: Array<VerdictLevel> = []
          for (let vote = 0; vote < settings.judges; vote++) {
            let said: VerdictLevel = "unparseable"
            for (let ask = 0; ask <= settings.judgeRetries; ask++) {
              const startedAt = yield* isoNow
              const sample = vote * (settings.judgeRetries + 1) + ask
              const request = promptRequest(judgePrompt, problem, trace, judgeSampling, sample, [
                "easy",
                "medium",
                "hard"
              ])
              const result = yield* lm
                .complete("judge", request, { sampleIndex: sample, cache: options.cache })
                .pipe(Effect.either)
              if (result._tag === "Left") return failedItem(start, rounds, "judge", result.left, yield* isoNow)
              const c = result.right
              const parsed = parseVerdict(c.text)
              const notes = [
                ...(settings.judges > 1 ? [`vote ${vote + 1} of ${settings.judges}`] : []),
                ...(parsed === undefined ? [`unparseable reply, ask ${ask + 1} of ${settings.judgeRetries + 1}`] : [])
              ]
              push({
                action: "judge",
                input: trace,
                verdict: makeVerdict({
                  level: parsed ?? "unparseable",
                  raw: c.text,
                  model: c.model,
                  promptVersion: judgePrompt.version
                }),
                calls: [callRecord("judge", c, judgePrompt.version)],
                startedAt,
                finishedAt: yield* isoNow,
                note: notes.length > 0 ? notes.join("; ") : undefined
              })
              if (parsed !== undefined) {
                said = parsed
                break
              }
            }
            votes.push(said)
          }
          const level = majorityVerdict(votes)
          options.onEvent?.({ _tag: "verdict", itemId: start.id, level, round })
          if (level === "unparseable") {
            return finish(
              {
                fate: "dropped",
                reason: {
                  code: "judge-unparseable",
                  detail: `no easy/medium/hard after ${settings.judgeRetries + 1} asks`
                },
                trace
              },
              yield* isoNow
            )
          }
          history.push(level)
          first ??= level
          if (level === "medium") {
            const keptAs: KeptAs =
              first === "medium" ? "initial-medium" : first === "easy" ? "easy-to-medium" : "hard-to-medium"
            return finish({ fate: "kept", keptAs, trace }, yield* isoNow)
          }
          if (round >= settings.maxRounds) {
            return finish(
              {
                fate: "dropped",
                reason: {
                  code: "max-rounds",
                  detail: `not medium after ${settings.maxRounds} rewrites (verdicts: ${history.join(" → ")})`
                },
                trace
              },
              yield* isoNow
            )
          }
          if (!lm.roles.includes("rewriter")) {
            return finish(
              {
                fate: "dropped",
                reason: { code: "no-rewriter", detail: `judged ${level}; no rewriter is configured` },
                trace
              },
              yield* isoNow
            )
          }
          // Rewrite: expand an easy trace, simplify a hard one; the rewrite must keep the answer.
          const prompt = level === "easy" ? expandPrompt : simplifyPrompt
          let rewritten: Trace | undefined
          let lastReason = ""
          for (let attempt = 0; attempt <= settings.rewriteRetries && rewritten === undefined; attempt++) {
            const startedAt = yield* isoNow
            const result = yield* lm
              .complete("rewriter", promptRequest(prompt, problem, trace, rewriteSampling, attempt), {
                sampleIndex: attempt,
                cache: options.cache
              })
              .pipe(Effect.either)
            if (result._tag === "Left") return failedItem(start, rounds, "rewriter", result.left, yield* isoNow)
            const c = result.right
            const candidate = makeTrace({
              reasoning: c.text.trim(),
              finalAnswer: statedAnswer(problem, c.text),
              origin: prompt.name as "expand" | "simplify",
              model: c.model,
              promptVersion: prompt.version
            })
            const v = yield* verifier.verify(problem, candidate)
            push({
              action: prompt.name as "expand" | "simplify",
              input: trace,
              output: candidate,
              verification: v,
              calls: [callRecord("rewriter", c, prompt.version)],
              startedAt,
              finishedAt: yield* isoNow
            })
            if (v.ok) rewritten = candidate
            else lastReason = v.reason
          }
          if (rewritten === undefined) {
            return finish(
              {
                fate: "dropped",
                reason: {
                  code: "rewrite-changed-answer",
                  detail: `no ${prompt.name} kept the answer after ${settings.rewriteRetries + 1} tries (${lastReason})`
                },
                trace
              },
              yield* isoNow
            )
          }
          trace = rewritten
        }
      })
    )
  })
