import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { type Completion, ChatRequest } from "../llm/schema.js"
import type { CacheMode } from "../llm/LanguageModel.js"
import { LanguageModel } from "../llm/LanguageModel.js"
import { describeLlmError, type LlmError, repeatsForRequest } from "../llm/errors.js"
import { type PipelineConfig, roleMaxOutputTokens } from "../recipe/config.js"
import type { RunEvent } from "../recipe/events.js"
import { problemPrompt, TEACHER_PROMPT_VERSION } from "../recipe/prompts.js"
import { type Item, makeItem } from "../schema/item.js"
import type { HandedItem } from "../schema/handedItem.js"
import type { Problem } from "../schema/problem.js"
import { makeRound } from "../schema/round.js"
import { makeTrace } from "../schema/trace.js"
import { pagedStream } from "../store/pagedStream.js"
import { drainConcurrently } from "../util/concurrent.js"
import { RunStore } from "../store/RunStore.js"
import type { StoreError } from "../store/errors.js"
import { contentId } from "../util/hash.js"
import { lastBoxed } from "../util/latex.js"

export interface StageOptions {
  readonly cache?: CacheMode | undefined
  readonly concurrency: number
  readonly onEvent?: ((event: RunEvent) => void) | undefined
  /** Only the first N problems (by id), for trial runs. */
  readonly limit?: number | undefined
  /**
   * Told of each sample saved pending (at its next stage), after the save and before this
   * stage's lease on it is given up.
   */
  readonly handOff?: ((handed: HandedItem) => Effect.Effect<void, StoreError>) | undefined
}

export interface StageReport {
  readonly stage: string
  readonly total: number
  readonly done: number
  readonly failed: number
  readonly skipped: number
}

const PAGE = 500

/** All problems, a page at a time, as a stream. */
export const problemStream = (limit?: number): Stream.Stream<Problem, StoreError, RunStore> =>
  pagedStream(PAGE, (afterId, size) =>
    Effect.flatMap(RunStore, (store) => store.listProblems({ afterId, limit: size, unflagged: true }))
  ).pipe((s) => (limit !== undefined ? Stream.take(s, limit) : s))

export const teacherItemId = (problemId: string, model: string, sample: number) =>
  contentId("i_", { problem: problemId, origin: "teacher", model, sample }) as Item["id"]

/** The lease key of one teacher sample's work (see `RunStore.claim`). */
const teacherWorkKey = (problemId: string, model: string, sample: number) =>
  `teacher:${teacherItemId(problemId, model, sample)}`

/**
 * Stage 1, teacher sampling: N samples per problem from a fast-thinking teacher, each stored as an
 * item (with its call recorded as round 0) the moment it arrives. Resumable: samples already
 * stored are skipped, and replies that finished before a crash come back free from the cache.
 * A call that fails after its retries is stored as failed (`teacher-error`, or `request-refused`
 * when the server refused the request in a way that repeats) and tried again on the next run.
 */
export const sampleTeacher = (
  config: PipelineConfig,
  options: StageOptions
): Effect.Effect<StageReport, StoreError, RunStore | LanguageModel> =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const lm = yield* LanguageModel
    const settings = config.stages.collect
    const samples = settings.samplesPerProblem
    const sampling = config.models.teacher?.sampling ?? {}
    const model = lm.modelOf("teacher")
    const status = yield* store.status
    const flagged = Object.values(status.flags).reduce((a, b) => a + b, 0)
    const total = Math.min(status.problems - flagged, options.limit ?? Infinity) * samples
    // Time from the Clock in context (a TestClock in tests), read in the callbacks below.
    const clock = yield* Effect.clock
    const started = clock.unsafeCurrentTimeMillis()
    const counts = { done: 0, failed: 0, skipped: 0, cached: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 }
    const emit = options.onEvent ?? (() => {})
    const progress = () =>
      emit({
        _tag: "progress",
        stage: "teacher",
        total,
        ...counts,
        elapsedMs: clock.unsafeCurrentTimeMillis() - started
      })
    if (samples === 0 || config.models.teacher === undefined) {
      return { stage: "teacher", total: 0, done: 0, failed: 0, skipped: 0 }
    }

    const sampleOne = (problem: Problem, sample: number) =>
      Effect.gen(function* () {
        const id = teacherItemId(problem.id, model, sample)
        const request = new ChatRequest({
          messages: [
            ...(settings.systemPrompt !== "" ? [{ role: "system" as const, content: settings.systemPrompt }] : []),
            { role: "user" as const, content: problemPrompt(problem, settings.mathInstruction) }
          ],
          temperature: sampling.temperature,
          top_p: sampling.top_p,
          max_tokens: sampling.max_tokens,
          seed: sampling.seed !== undefined ? sampling.seed + sample : undefined,
          stop: sampling.stop
        })
        const startedAt = new Date(clock.unsafeCurrentTimeMillis()).toISOString()
        const ask = (r: ChatRequest) =>
          lm.complete("teacher", r, { sampleIndex: sample, cache: options.cache }).pipe(Effect.either)
        let result = yield* ask(request)
        // truncation: extend re-asks a reply cut at max_tokens with twice the room, up to the cap;
        // every call is recorded (and paid for) in the item's round.
        const earlier: Array<Completion> = []
        // Never past what the teacher's endpoints allow (a request above it would only be refused).
        const endpointCap = roleMaxOutputTokens(config, "teacher")
        const wanted = settings.extendUpTo ?? (sampling.max_tokens !== undefined ? sampling.max_tokens * 4 : undefined)
        const cap = wanted !== undefined && endpointCap !== undefined ? Math.min(wanted, endpointCap) : wanted
        let maxTokens = sampling.max_tokens
        while (
          settings.truncation === "extend" &&
          result._tag === "Right" &&
          result.right.finishReason === "length" &&
          maxTokens !== undefined &&
          cap !== undefined &&
          maxTokens < cap
        ) {
          earlier.push(result.right)
          maxTokens = Math.min(cap, maxTokens * 2)
          result = yield* ask(new ChatRequest({ ...request, max_tokens: maxTokens }))
        }
        const finishedAt = new Date(clock.unsafeCurrentTimeMillis()).toISOString()
        const now = finishedAt
        const callRecord = (call: Completion) => ({
          role: "teacher" as const,
          model: call.model,
          promptVersion: TEACHER_PROMPT_VERSION,
          promptTokens: call.usage.promptTokens,
          completionTokens: call.usage.completionTokens,
          costUsd: call.costUsd,
          latencyMs: call.latencyMs,
          cached: call.cached
        })
        if (result._tag === "Left") {
          const error: LlmError = result.left
          counts.failed++
          // The item fails with the server's message; replies already paid for (a reply extended
          // until the server refused) stay in its history. A refusal that repeats is remembered by
          // the model layer, so a rerun does not send it again unless the settings change.
          const last = earlier[earlier.length - 1]
          yield* store.saveItem(
            makeItem({
              id,
              problemId: problem.id,
              stage: "collect",
              fate: "failed",
              reason: {
                code: repeatsForRequest(error) ? "request-refused" : "teacher-error",
                detail: describeLlmError(error)
              },
              rounds:
                last === undefined
                  ? []
                  : [
                      makeRound({
                        index: 0,
                        action: "collect",
                        output: makeTrace({
                          reasoning: last.reasoning ?? last.text,
                          finalAnswer: undefined,
                          origin: "teacher",
                          model: last.model,
                          promptVersion: TEACHER_PROMPT_VERSION,
                          long: false
                        }),
                        calls: earlier.map(callRecord),
                        startedAt,
                        finishedAt: now,
                        note: `cut at max_tokens ${maxTokens !== undefined ? `${maxTokens / 2} and below` : ""}; the next, longer request failed: ${error.message.slice(0, 200)}`
                      })
                    ],
              createdAt: now,
              updatedAt: now
            })
          )
          emit({
            _tag: "item",
            stage: "teacher",
            itemId: id,
            problemId: problem.id,
            outcome: "failed",
            reason: describeLlmError(error)
          })
          return
        }
        const c: Completion = result.right
        const long = c.reasoning !== undefined && c.reasoning !== ""
        const trace = makeTrace({
          reasoning: long ? c.reasoning! : c.text,
          finalAnswer: long ? c.text : lastBoxed(c.text),
          origin: "teacher",
          model: c.model,
          promptVersion: TEACHER_PROMPT_VERSION,
          long
        })
        const truncated = c.finishReason === "length"
        const dropped = truncated && settings.truncation !== "keep"
        counts.done++
        if (c.cached) counts.cached++
        for (const call of [...earlier, c]) {
          counts.promptTokens += call.usage.promptTokens
          counts.completionTokens += call.usage.completionTokens
          counts.costUsd += call.costUsd ?? 0
        }
        // A long (reasoning) trace waits at collect for long-to-short; a short one goes to verify.
        const saved = makeItem({
          id,
          problemId: problem.id,
          stage: dropped || long ? "collect" : "verify",
          fate: dropped ? "dropped" : "pending",
          reason: dropped
            ? {
                code: "truncated",
                detail: `the teacher's reply hit max_tokens (${maxTokens ?? "server default"}${earlier.length > 0 ? `, after ${earlier.length} extension${earlier.length > 1 ? "s" : ""} from ${sampling.max_tokens}` : ""})`
              }
            : undefined,
          trace,
          rounds: [
            makeRound({
              index: 0,
              action: "collect",
              output: trace,
              calls: [...earlier, c].map(callRecord),
              startedAt,
              finishedAt,
              note: truncated
                ? `truncated at max_tokens (${maxTokens ?? "server default"})`
                : earlier.length > 0
                  ? `cut at max_tokens ${sampling.max_tokens}, asked again with ${maxTokens}`
                  : undefined
            })
          ],
          createdAt: now,
          updatedAt: now
        })
        yield* store.saveItem(saved)
        if (saved.fate === "pending" && options.handOff !== undefined) yield* options.handOff({ item: saved, problem })
        emit({
          _tag: "item",
          stage: "teacher",
          itemId: id,
          problemId: problem.id,
          outcome: dropped ? "dropped" : "ok",
          reason: dropped ? "truncated" : undefined
        })
      }).pipe(Effect.ensuring(Effect.sync(progress)))

    // Work not yet done: samples with no item, or whose call failed last time (on the first
    // pass; later passes, while other workers sharing the run hold samples of their own, take
    // only what no one has sampled: the work of a worker that died or whose leases ran out).
    // A first pass on a shared store claims a stage's concurrency at a time, so that workers share
    // the samples; later passes find few left (those of a worker that died) and look a page at a time.
    const claimGroup = (first: boolean) => (store.shared && first ? Math.max(4, options.concurrency) : PAGE)
    // Samples a pass found unsampled but held by another worker.
    let heldElsewhere = 0
    const pending = (first: boolean) =>
      problemStream(options.limit).pipe(
        Stream.mapConcat((problem) => Array.from({ length: samples }, (_, sample) => ({ problem, sample }))),
        Stream.grouped(claimGroup(first)),
        Stream.mapEffect((chunk) =>
          Effect.gen(function* () {
            const work = Chunk.toReadonlyArray(chunk)
            const states = yield* store.itemStates(work.map((w) => teacherItemId(w.problem.id, model, w.sample)))
            const todo = work.filter((w) => {
              const state = states.get(teacherItemId(w.problem.id, model, w.sample))
              // Failed samples are asked again (a refusal that repeats is answered from the store, unsent).
              const redo =
                state === undefined ||
                (first &&
                  (state.fate === "failed" || (state.fate === "dropped" && state.reasonCode === "teacher-error")))
              if (!redo && first) counts.skipped++
              return redo
            })
            const mine = yield* store.claim(todo.map((w) => teacherWorkKey(w.problem.id, model, w.sample)))
            const claimed = todo.filter((w) => mine.has(teacherWorkKey(w.problem.id, model, w.sample)))
            heldElsewhere += todo.length - claimed.length
            if (!store.shared || claimed.length === 0) return claimed
            // Read again after the claim: another worker may have saved a sample and given up its
            // lease between the read above and the claim.
            const now = yield* store.itemStates(claimed.map((w) => teacherItemId(w.problem.id, model, w.sample)))
            const still: typeof claimed = []
            for (const w of claimed) {
              const id = teacherItemId(w.problem.id, model, w.sample)
              const before = states.get(id)
              const after = now.get(id)
              const moved = after !== undefined && (before === undefined || before.fate !== after.fate)
              if (moved) store.release([teacherWorkKey(w.problem.id, model, w.sample)])
              else still.push(w)
            }
            return still
          })
        ),
        Stream.flattenIterables
      )
    progress()
    // The stage ends after a pass that found no sample unsampled but held by another worker: every
    // one it found unsampled it sampled itself. (Another worker's leases read before the pass
    // would not do: one may take a sample the pass was about to, and die with it.)
    for (let first = true; ; first = false) {
      heldElsewhere = 0
      yield* drainConcurrently(
        pending(first),
        ({ problem, sample }) =>
          sampleOne(problem, sample).pipe(
            Effect.ensuring(Effect.sync(() => store.release([teacherWorkKey(problem.id, model, sample)])))
          ),
        options.concurrency
      )
      if (heldElsewhere === 0) break
      yield* Effect.sleep(Duration.millis(100))
    }
    progress()
    const report = { stage: "teacher", total, done: counts.done, failed: counts.failed, skipped: counts.skipped }
    emit({
      _tag: "stage-done",
      stage: "teacher",
      done: counts.done,
      failed: counts.failed,
      skipped: counts.skipped,
      elapsedMs: clock.unsafeCurrentTimeMillis() - started
    })
    return report
  })
