import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Mailbox from "effect/Mailbox"
import { alignStage, type ItemStageReport, longToShortStage, stageWorkKey, verifyStage } from "../align/stages.js"
import { sampleTeacher, type StageReport } from "../collect/teacherSampling.js"
import { type FilterReport, filterProblems } from "../collect/filterProblems.js"
import type { CacheMode } from "../llm/LanguageModel.js"
import { LanguageModel } from "../llm/LanguageModel.js"
import * as Stream from "effect/Stream"
import type { ImportError } from "../import/importFile.js"
import { RunStore } from "../store/RunStore.js"
import type { HandedItem } from "../schema/handedItem.js"
import type { Stage } from "../schema/item.js"
import type { StoreError } from "../store/errors.js"
import type { TokenCounter } from "../tokens/TokenCounter.js"
import type { Verifier } from "../verify/Verifier.js"
import type { PipelineConfig } from "../recipe/config.js"
import type { RunEvent } from "../recipe/events.js"
import { roleConcurrency } from "./models.js"

/** Items an inbox holds for a stage that is behind; further ones wait in the store for its next pass. */
const INBOX_ROOM = 2_048

/**
 * The lease prefixes of the work that can still bring items to `stage`: the teacher's samples
 * and every item stage up to and including this one. A worker sharing the run that holds any of
 * them may yet save an item here, and die before working on it.
 */
const feedingPrefixes = (stage: Stage): ReadonlyArray<string> => {
  const order: ReadonlyArray<string> = ["teacher", "collect", "verify", "align"]
  return order.slice(0, order.indexOf(stage) + 1).map((s) => `${s}:`)
}

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

const sumReports = (stage: string, reports: ReadonlyArray<ItemStageReport>): ItemStageReport => ({
  stage,
  processed: reports.reduce((n, r) => n + r.processed, 0),
  advanced: reports.reduce((n, r) => n + r.advanced, 0),
  kept: reports.reduce((n, r) => n + r.kept, 0),
  dropped: reports.reduce((n, r) => n + r.dropped, 0),
  failed: reports.reduce((n, r) => n + r.failed, 0)
})

/**
 * The recipe over the store: dedup and decontamination first, then teacher sampling,
 * long-to-short, answer verification and the judge → expand/simplify loop running side by side.
 * Each item stage keeps taking whatever is pending at its step while the stages before it are
 * still producing, so judge and rewriter calls overlap teacher calls; it finishes once those
 * stages have finished and nothing is left for it. A rerun continues from the store, and the LLM
 * cache pays for nothing twice.
 */
export const runPipeline = (config: PipelineConfig, options: PipelineOptions = {}) =>
  Effect.gen(function* () {
    const lm = yield* LanguageModel
    const store = yield* RunStore
    const wanted = new Set(options.stages ?? STAGES)
    const has = (role: "teacher" | "rewriter" | "judge") => lm.roles.includes(role)
    const emit = options.onEvent ?? (() => {})
    // Item stages run in passes; only their final totals are announced as stage-done.
    const passEvents = (event: RunEvent) => {
      if (event._tag !== "stage-done") emit(event)
    }
    const base = { cache: options.cache, onEvent: passEvents }
    // Items a stage works on at once, for `calls` calls its endpoints take at once. On a shared
    // store every item also waits on the database's round trips (cache, leases, saves): twice as
    // many items keep the endpoints' calls in flight meanwhile (the endpoints' own limits still
    // cap the calls). Figures in docs/benchmarks.md; on SQLite it gains nothing.
    const slots = (calls: number) => (store.shared ? 2 * calls : calls)
    const filterStarted = yield* Clock.currentTimeMillis
    const filter = wanted.has("filter") ? yield* filterProblems(config.stages.filter) : undefined
    if (filter !== undefined) {
      const filterMs = (yield* Clock.currentTimeMillis) - filterStarted
      emit({
        _tag: "progress",
        stage: "filter",
        total: filter.problems,
        done: filter.problems - filter.flagged,
        failed: 0,
        skipped: filter.flagged,
        cached: 0,
        promptTokens: 0,
        completionTokens: 0,
        costUsd: 0,
        elapsedMs: filterMs
      })
      emit({
        _tag: "stage-done",
        stage: "filter",
        done: filter.problems - filter.flagged,
        failed: 0,
        skipped: filter.flagged,
        elapsedMs: filterMs
      })
    }

    // A stage whose role sends in batches waits for the stage before it: its passes are then
    // rounds over every item, each round's calls one batch per role (items trickling in would
    // make many small batches, each a day's wait at worst).
    const batched = (role: "rewriter" | "judge") =>
      config.models[role]?.endpoints.some((e) => e.mode === "batch") === true
    const after = <A, E, R>(upstream: Deferred.Deferred<void>, waits: boolean, stage: Effect.Effect<A, E, R>) =>
      waits ? Effect.zipRight(Deferred.await(upstream), stage) : stage

    const teacherDone = yield* Deferred.make<void>()
    const l2sDone = yield* Deferred.make<void>()
    const verifyDone = yield* Deferred.make<void>()

    // Items move on in memory as each stage saves them; the store stays the record, and each
    // stage's passes over it take what the hand-off leaves (items of earlier runs, of other
    // workers, or beyond an inbox's room while the stage is behind). A stage that waits for the
    // one before it (batch mode) reads the store alone.
    const alignWaits = batched("judge") || batched("rewriter")
    const inboxes = new Map<Stage, Mailbox.Mailbox<HandedItem>>()
    const openInbox = (stage: Stage) =>
      Effect.map(Mailbox.make<HandedItem>({ capacity: INBOX_ROOM, strategy: "dropping" }), (m) => inboxes.set(stage, m))
    if (wanted.has("long-to-short") && !batched("rewriter")) yield* openInbox("collect")
    if (wanted.has("verify")) yield* openInbox("verify")
    if (wanted.has("align") && has("judge") && !alignWaits) yield* openInbox("align")
    // On a shared store the next stage's lease is taken before this stage's is given up (the
    // caller releases it after the hand-off), so an item waiting in memory is never held by no
    // one: workers sharing the run see it held, and take it over only if this worker dies.
    const handOff = (handed: HandedItem): Effect.Effect<void, StoreError> => {
      const inbox = inboxes.get(handed.item.stage)
      if (inbox === undefined) return Effect.void
      if (!store.shared) return Effect.sync(() => void inbox.unsafeOffer(handed))
      const key = stageWorkKey(handed.item.stage, handed.item.id)
      // Uninterruptible: a lease taken is either in the inbox's keeping or given up.
      return Effect.uninterruptible(
        Effect.map(store.claim([key]), (mine) => {
          if (mine.size > 0 && !inbox.unsafeOffer(handed)) store.release([key])
        })
      )
    }
    const inboxOf = (stage: Stage) => {
      const inbox = inboxes.get(stage)
      return inbox === undefined ? undefined : Mailbox.toStream(inbox)
    }
    /** A stage has finished: the ones after it may end, and `next`'s inbox holds all it will get. */
    const stageDone = (done: Deferred.Deferred<void>, next: Stage) =>
      Effect.zipRight(
        Deferred.succeed(done, undefined),
        Effect.suspend(() => inboxes.get(next)?.end ?? Effect.void)
      )

    /**
     * Passes of an item stage until `upstream` has finished, a pass finds nothing pending (none
     * to work on, none held by another worker), and no other worker sharing the run holds work of
     * this stage or one before it (if one dies, its leases are freed and a pass here takes the
     * work over).
     */
    const drain = <E, R>(
      name: string,
      stage: Stage,
      upstream: Deferred.Deferred<void>,
      /** One pass; the first tries again the items that failed at the stage before. */
      pass: (first: boolean) => Effect.Effect<ItemStageReport, E, R>
    ) =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const reports: Array<ItemStageReport> = []
        for (;;) {
          const finished = yield* Deferred.isDone(upstream)
          // Read before the pass: a lease that expires after this read is claimed by the pass. Work
          // of the stages before counts too: another worker may save an item here and then die.
          const elsewhere = store.shared
            ? yield* Effect.reduce(feedingPrefixes(stage), 0, (n, prefix) =>
                Effect.map(store.heldByOthers(prefix), (held) => n + held)
              )
            : 0
          const r = yield* pass(reports.length === 0)
          reports.push(r)
          if (finished && r.processed === 0 && (r.heldElsewhere ?? 0) === 0 && elsewhere === 0) break
          if (r.processed === 0) yield* Effect.sleep(Duration.millis(50))
        }
        const total = sumReports(name, reports)
        const elapsedMs = (yield* Clock.currentTimeMillis) - started
        emit({
          _tag: "stage-done",
          stage: name,
          done: total.processed,
          failed: total.failed,
          skipped: 0,
          elapsedMs
        })
        return total
      })

    const teacher = (
      wanted.has("teacher") && has("teacher")
        ? sampleTeacher(config, {
            cache: options.cache,
            onEvent: emit,
            concurrency: slots(roleConcurrency(config, "teacher")),
            limit: options.limit,
            handOff
          }).pipe(Effect.map((r) => r as StageReport | undefined))
        : Effect.succeed(undefined)
    ).pipe(Effect.ensuring(stageDone(teacherDone, "collect")))
    const longToShort = (
      wanted.has("long-to-short")
        ? after(
            teacherDone,
            batched("rewriter"),
            drain("long-to-short", "collect", teacherDone, (first) =>
              longToShortStage(config, {
                ...base,
                concurrency: slots(roleConcurrency(config, "rewriter")),
                inbox: inboxOf("collect"),
                handOff,
                retryFailed: first
              })
            )
          ).pipe(Effect.map((r) => r as ItemStageReport | undefined))
        : Effect.succeed(undefined)
    ).pipe(Effect.ensuring(stageDone(l2sDone, "verify")))
    const verify = (
      wanted.has("verify")
        ? drain("verify", "verify", l2sDone, (first) =>
            verifyStage({ ...base, concurrency: 16, inbox: inboxOf("verify"), handOff, retryFailed: first })
          ).pipe(Effect.map((r) => r as ItemStageReport | undefined))
        : Effect.succeed(undefined)
    ).pipe(Effect.ensuring(stageDone(verifyDone, "align")))
    const align =
      wanted.has("align") && has("judge")
        ? after(
            verifyDone,
            alignWaits,
            drain("align", "align", verifyDone, (first) =>
              alignStage(config, {
                ...base,
                // An item alternates between judge and rewriter calls: enough items in flight to keep
                // both roles' endpoints busy (their own limits still cap the calls).
                concurrency: slots(
                  roleConcurrency(config, "judge") + (has("rewriter") ? roleConcurrency(config, "rewriter") : 0)
                ),
                inbox: inboxOf("align"),
                retryFailed: first
              })
            )
          ).pipe(Effect.map((r) => r as ItemStageReport | undefined))
        : Effect.succeed(undefined)

    const [t, l, v, a] = yield* Effect.all([teacher, longToShort, verify, align], { concurrency: "unbounded" })
    return { filter, teacher: t, longToShort: l, verify: v, align: a } satisfies PipelineReport
  })

/**
 * The pipeline as a stream of its typed progress events, for dashboards: every stage's progress,
 * item outcomes and stage-done events, ending with `pipeline-done`. Interrupting the stream
 * interrupts the run (in-flight calls are cancelled; stored work is kept).
 */
export const pipelineEvents = (config: PipelineConfig, options: Omit<PipelineOptions, "onEvent"> = {}) =>
  Stream.asyncPush<RunEvent, StoreError | ImportError, LanguageModel | RunStore | Verifier | TokenCounter>((emit) =>
    runPipeline(config, { ...options, onEvent: (event) => emit.single(event) }).pipe(
      Effect.tap((report) =>
        Effect.sync(() => {
          emit.single({
            _tag: "pipeline-done",
            kept: report.align?.kept ?? 0,
            dropped: (report.longToShort?.dropped ?? 0) + (report.verify?.dropped ?? 0) + (report.align?.dropped ?? 0),
            failed: (report.teacher?.failed ?? 0) + (report.longToShort?.failed ?? 0) + (report.align?.failed ?? 0)
          })
          emit.end()
        })
      ),
      Effect.catchAll((error) => Effect.sync(() => emit.fail(error))),
      Effect.forkScoped
    )
  )
