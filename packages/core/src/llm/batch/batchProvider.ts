import { randomUUID } from "node:crypto"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { BatchJobRecord, RunStoreShape } from "../../store/RunStore.js"
import { BadRequest, isRetryable, type LlmError, ServerError } from "../errors.js"
import type { BatchWire, ModelProvider, ProviderResult } from "../provider.js"
import type { ChatRequest } from "../schema.js"
import { type BatchApi, batchApi, FINAL_STATES, type OutputLine, outputLines, type RemoteBatch } from "./batchApi.js"
import type { BatchSettings, BatchStats } from "./batchSettings.js"

/** A line's outcome, as the batch's files gave it: a response (status and body) or an error. */
type LineOutcome =
  | { readonly _tag: "response"; readonly status: number; readonly body: unknown }
  | { readonly _tag: "failed"; readonly message: string }

/** A batch job in this process: its record, and its keys not yet given to a call. */
interface Job {
  record: BatchJobRecord
  /** Keys whose outcome no call has taken yet (the job is done when none is left). */
  readonly unresolved: Set<string>
}

/**
 * An endpoint in batch mode: calls are gathered into the provider's batch jobs instead of being
 * sent one by one, at the batch price. Gathered requests are sent as one JSONL file (`custom_id` =
 * the call's cache key) once no new call has come for `gatherMs` or the batch is full (requests
 * or bytes); the batch is polled with backoff, and each answer goes back to its call (the service
 * then caches and verifies it as any other). Jobs are recorded in the store before and after
 * each step, so a restarted run takes up the jobs it created (finding a batch whose creation it
 * did not see answered by its input file) and never submits the same requests twice. A line that
 * fails or expires fails its call with a retryable error; the service's retry sends it in a new
 * batch, up to `resubmit` times, then to the live endpoint when `fallbackLive` allows.
 */
export const makeBatchProvider = (
  /** The role the endpoint serves: each role's jobs are its own, when roles share an endpoint. */
  role: string,
  live: ModelProvider & { readonly batch: BatchWire },
  settings: BatchSettings,
  store: RunStoreShape
): Effect.Effect<ModelProvider & { readonly batchStats: () => BatchStats }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const endpoint = `${role}: ${live.id} (${live.model})`
    const api: BatchApi = batchApi(live.batch, live.id)
    const scope = yield* Effect.scope
    const clock = yield* Effect.clock
    const now = () => new Date(clock.unsafeCurrentTimeMillis()).toISOString()

    const waiting = new Map<string, Deferred.Deferred<ProviderResult, LlmError>>()
    const requests = new Map<string, ChatRequest>()
    /** Outcomes that came before any call asked for them (jobs taken up after a restart). */
    const ready = new Map<string, { readonly job: Job; readonly outcome: LineOutcome }>()
    /** The job each key is in, while its outcome is not known. */
    const inJob = new Map<string, Job>()
    const failures = new Map<string, number>()
    let gathered: Array<{ readonly key: string; readonly line: string }> = []
    let gatheredBytes = 0
    let lastGathered = 0
    const stats = { submitted: 0, running: 0, done: 0, failed: 0, linesWaiting: 0, resubmitted: 0, live: 0 }

    const deferredOf = (key: string) => {
      let d = waiting.get(key)
      if (d === undefined) {
        d = Deferred.unsafeMake<ProviderResult, LlmError>(FiberId.none)
        waiting.set(key, d)
      }
      return d
    }

    const save = (job: Job, patch: Partial<BatchJobRecord>) => {
      job.record = { ...job.record, ...patch, updatedAt: now() }
      return store.saveBatchJob(job.record)
    }

    // The API's transient failures (a server restarting, a dropped connection) are retried with
    // backoff up to `pollMaxMs` apart, for as long as the run lasts; others end the step.
    const patiently = <A>(effect: Effect.Effect<A, LlmError>) =>
      Effect.retry(effect, {
        while: isRetryable,
        schedule: Schedule.exponential(Duration.millis(settings.pollMs), 1.5).pipe(
          Schedule.modifyDelay((_, d) => Duration.min(d, Duration.millis(settings.pollMaxMs)))
        )
      })

    /** Gives a line's outcome to its call (or keeps it for the call to come), and counts the job's progress. */
    const resolve = (job: Job, key: string, outcome: LineOutcome) =>
      Effect.gen(function* () {
        inJob.delete(key)
        const request = requests.get(key)
        const d = waiting.get(key)
        if (d !== undefined && request !== undefined) {
          waiting.delete(key)
          requests.delete(key)
          const exit = outcomeAsExit(key, request, outcome)
          yield* Deferred.done(d, Either.isRight(exit) ? Exit.succeed(exit.right) : Exit.fail(exit.left))
          yield* settle(job, key)
        } else {
          ready.set(key, { job, outcome })
        }
      })

    /** A key is given to its call: once the job has none left, it is done (its answers are in the service's hands). */
    const settle = (job: Job, key: string) =>
      Effect.suspend(() => {
        job.unresolved.delete(key)
        stats.linesWaiting = Math.max(0, stats.linesWaiting - 1)
        return job.unresolved.size === 0 && job.record.state !== "done"
          ? Effect.orElse(save(job, { state: "done" }), () => Effect.void)
          : Effect.void
      })

    const outcomeAsExit = (key: string, request: ChatRequest, outcome: LineOutcome) => {
      const failed = (message: string): LlmError => {
        failures.set(key, (failures.get(key) ?? 0) + 1)
        return new ServerError({ endpoint: live.id, status: 0, message })
      }
      if (outcome._tag === "failed") return Either.left(failed(outcome.message))
      const answer = live.batch.answer(request, outcome.status, outcome.body)
      if (Either.isLeft(answer) && isRetryable(answer.left)) {
        failures.set(key, (failures.get(key) ?? 0) + 1)
      }
      return answer
    }

    /** The outcome of every key of a finished batch, from its output and error files. */
    const outcomesOf = (job: Job, remote: RemoteBatch) =>
      Effect.gen(function* () {
        const outcomes = new Map<string, LineOutcome>()
        const read = (fileId: string | null | undefined) =>
          fileId === null || fileId === undefined
            ? Effect.succeed<Array<OutputLine>>([])
            : Effect.map(patiently(api.download(fileId)), (text) => outputLines(text).lines)
        for (const line of [...(yield* read(remote.output_file_id)), ...(yield* read(remote.error_file_id))]) {
          if (
            line.response !== undefined &&
            line.response !== null &&
            (line.error === undefined || line.error === null)
          )
            outcomes.set(line.custom_id, {
              _tag: "response",
              status: line.response.status_code,
              body: line.response.body
            })
          else
            outcomes.set(line.custom_id, {
              _tag: "failed",
              message: `batch ${remote.id}: ${line.error?.code ?? "error"}: ${line.error?.message ?? "the line failed"}`
            })
        }
        const why =
          remote.status === "failed"
            ? `batch ${remote.id} failed: ${(remote.errors?.data ?? []).map((e) => `${e.code ?? ""} ${e.message ?? ""}`.trim()).join("; ") || "no reason given"}`
            : `batch ${remote.id} (${remote.status}) returned nothing for this request`
        for (const key of job.record.keys) if (!outcomes.has(key)) outcomes.set(key, { _tag: "failed", message: why })
        return outcomes
      })

    /** Polls a submitted job to its end, then gives every line's outcome back. */
    const follow = (job: Job, first: RemoteBatch) =>
      Effect.gen(function* () {
        let remote = first
        let delay = settings.pollMs
        while (!FINAL_STATES.has(remote.status)) {
          yield* Effect.sleep(Duration.millis(delay))
          delay = Math.min(settings.pollMaxMs, delay * 1.5)
          const polled = yield* Effect.either(patiently(api.retrieve(job.record.batchId!)))
          // A batch the provider no longer knows (404) is lost: its lines fail and go out again.
          remote = Either.isRight(polled) ? polled.right : { ...remote, status: "lost" }
          if (remote.status === "lost") break
          if (remote.status !== job.record.remoteStatus)
            yield* Effect.orElse(save(job, { remoteStatus: remote.status }), () => Effect.void)
        }
        const outcomes =
          remote.status === "lost"
            ? new Map(
                job.record.keys.map((k) => [
                  k,
                  { _tag: "failed", message: `batch ${job.record.batchId}: the provider no longer knows it` } as const
                ])
              )
            : yield* outcomesOf(job, remote)
        let completed = 0
        for (const o of outcomes.values()) if (o._tag === "response" && o.status === 200) completed++
        stats.running--
        if (remote.status === "completed") stats.done++
        else stats.failed++
        yield* Effect.orElse(
          save(job, { remoteStatus: remote.status, completed, failed: outcomes.size - completed }),
          () => Effect.void
        )
        // Keys some earlier call already has an answer for (in the cache) need no call now.
        for (const key of job.record.keys) {
          const cached = yield* Effect.orElseSucceed(store.cacheGet(key), () => Option.none())
          if (Option.isSome(cached) && !waiting.has(key)) {
            inJob.delete(key)
            yield* settle(job, key)
          } else yield* resolve(job, key, outcomes.get(key)!)
        }
        if (job.unresolved.size === 0 && job.record.state !== "done")
          yield* Effect.orElse(save(job, { state: "done" }), () => Effect.void)
      })

    /**
     * Makes the batch of an uploaded file. A creation whose answer was lost may have made one: after
     * a transient failure, and for a job taken up after a restart, the batch made of the file is
     * looked for before another is made.
     */
    const submit = (job: Job, resumed: boolean) =>
      Effect.gen(function* () {
        const create = api.create(job.record.fileId, { fastcot_job: job.record.id })
        const findOrCreate = Effect.flatMap(api.findByFile(job.record.fileId), (found) =>
          found === undefined ? create : Effect.succeed(found)
        )
        const remote = resumed
          ? yield* patiently(findOrCreate)
          : yield* Effect.catchIf(create, isRetryable, () => patiently(findOrCreate))
        yield* save(job, { state: "submitted", batchId: remote.id, remoteStatus: remote.status })
        return remote
      })

    /** A job's whole life from `state`; on a failure it cannot wait out, its lines fail (and go out again). */
    const run = (job: Job, from: "new" | "uploaded" | "submitted", lines?: string) =>
      Effect.gen(function* () {
        stats.submitted++
        stats.running++
        let remote: RemoteBatch
        if (from === "new") {
          const fileId = yield* patiently(api.upload(`fastcot-${job.record.id}.jsonl`, lines!))
          yield* save(job, { fileId, state: "uploaded" })
          remote = yield* submit(job, false)
        } else if (from === "uploaded") remote = yield* submit(job, true)
        else remote = yield* patiently(api.retrieve(job.record.batchId!))
        yield* follow(job, remote)
      }).pipe(
        Effect.catchAll((error) =>
          Effect.gen(function* () {
            stats.running--
            stats.failed++
            const message = `batch job ${job.record.id}: ${error.message}`
            yield* Effect.orElse(
              save(job, { state: "done", remoteStatus: job.record.remoteStatus ?? "not-submitted" }),
              () => Effect.void
            )
            for (const key of [...job.unresolved]) yield* resolve(job, key, { _tag: "failed", message })
          })
        )
      )

    /** Sends what has been gathered as one job. */
    const flush = Effect.suspend(() => {
      if (gathered.length === 0) return Effect.void
      const lines = gathered
      gathered = []
      gatheredBytes = 0
      const id = randomUUID()
      const at = now()
      const job: Job = {
        record: {
          id,
          endpoint,
          state: "uploaded",
          fileId: "",
          batchId: null,
          keys: lines.map((l) => l.key),
          remoteStatus: null,
          completed: 0,
          failed: 0,
          createdAt: at,
          updatedAt: at
        },
        unresolved: new Set(lines.map((l) => l.key))
      }
      for (const l of lines) inJob.set(l.key, job)
      return Effect.asVoid(Effect.forkIn(run(job, "new", lines.map((l) => l.line).join("\n") + "\n"), scope))
    })

    // Sends the gathered requests once none has come for `gatherMs`.
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.suspend(() => {
          if (gathered.length === 0) return Effect.sleep(Duration.millis(Math.min(settings.gatherMs, 200)))
          const quietFor = clock.unsafeCurrentTimeMillis() - lastGathered
          return quietFor >= settings.gatherMs
            ? flush
            : Effect.sleep(Duration.millis(Math.max(1, settings.gatherMs - quietFor)))
        })
      )
    )

    // Jobs an earlier run created and did not see through.
    const open = yield* Effect.orElseSucceed(store.batchJobs({ endpoint, open: true }), () => [])
    for (const record of open) {
      const job: Job = { record, unresolved: new Set(record.keys) }
      for (const key of record.keys) inJob.set(key, job)
      stats.linesWaiting += record.keys.length
      yield* Effect.forkIn(run(job, record.state === "submitted" ? "submitted" : "uploaded"), scope)
    }

    const gather = (key: string, request: ChatRequest): Effect.Effect<ProviderResult, LlmError> =>
      Effect.suspend(() => {
        const line = JSON.stringify({
          custom_id: key,
          method: "POST",
          url: "/v1/chat/completions",
          body: live.batch.body(request)
        })
        const bytes = Buffer.byteLength(line) + 1
        if (bytes > settings.maxBytes)
          return Effect.fail(
            new BadRequest({
              endpoint: live.id,
              status: 0,
              message: `the request is ${bytes} bytes, over the batch limit of ${settings.maxBytes}`
            })
          )
        const d = deferredOf(key)
        requests.set(key, request)
        const full = gathered.length >= settings.maxRequests || gatheredBytes + bytes > settings.maxBytes
        const before = full ? flush : Effect.void
        return Effect.zipRight(
          before,
          Effect.suspend(() => {
            gathered.push({ key, line })
            gatheredBytes += bytes
            lastGathered = clock.unsafeCurrentTimeMillis()
            stats.linesWaiting++
            if ((failures.get(key) ?? 0) > 0) stats.resubmitted++
            return Deferred.await(d)
          })
        )
      })

    const call = (request: ChatRequest, context?: { readonly key?: string | undefined }) =>
      Effect.suspend((): Effect.Effect<ProviderResult, LlmError> => {
        const key = context?.key ?? randomUUID()
        const early = ready.get(key)
        if (early !== undefined) {
          ready.delete(key)
          const exit = outcomeAsExit(key, request, early.outcome)
          return Effect.zipRight(
            settle(early.job, key),
            Either.isRight(exit) ? Effect.succeed(exit.right) : Effect.fail(exit.left)
          )
        }
        if (inJob.has(key) || waiting.has(key)) {
          requests.set(key, request)
          return Deferred.await(deferredOf(key))
        }
        if ((failures.get(key) ?? 0) > settings.resubmit) {
          if (!settings.fallbackLive)
            return Effect.fail(
              new BadRequest({
                endpoint: live.id,
                status: 0,
                message: `failed in ${failures.get(key)} batches; not sent live (batch.fallback is off)`
              })
            )
          stats.live++
          return live.call(request, context)
        }
        return gather(key, request)
      })

    return {
      id: live.id,
      model: live.model,
      call,
      batchStats: () => ({ ...stats, gathering: gathered.length })
    }
  })
