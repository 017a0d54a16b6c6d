import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { BudgetState } from "../llm/budget.js"
import { type CacheMode, LanguageModel, type LanguageModelShape, makeLanguageModel } from "../llm/LanguageModel.js"
import { LocalEngines } from "../onnx/localEngines.js"
import { buildRoles, checkLocalModels, type Role, unpricedEndpoints } from "../pipeline/models.js"
import { type PipelineReport, runPipeline, type StageName, STAGES } from "../pipeline/runPipeline.js"
import type { PipelineConfig } from "../recipe/config.js"
import type { RunEvent } from "../recipe/events.js"
import type { StoreError, WorkspaceBusy } from "../store/errors.js"
import { RunStore, type StoreStatus, workspaceSpending } from "../store/RunStore.js"

/** Why a run could not be set up: what to fix is in the message. */
export class RunSetupError extends Data.TaggedError("RunSetupError")<{
  readonly reason: "stages" | "models" | "local-model" | "no-problems" | "unpriced"
  readonly message: string
}> {}

/** What a run is asked to do; every front-end (command line, demo, desktop) fills one in. */
export interface RunRequest {
  /** The pipeline, overrides applied. */
  readonly config: PipelineConfig
  /** Which stages, in order (default: all). */
  readonly stages?: ReadonlyArray<string> | undefined
  /** Only the first N problems. */
  readonly limit?: number | undefined
  readonly cache?: CacheMode | undefined
  /** A spending limit counted with what the workspace spent before (see `Budget`). */
  readonly budget?: { readonly usd?: number | undefined; readonly tokens?: number | undefined } | undefined
  /** Who holds the workspace's run lock, as other processes are told: "fastcot run", "the desktop app". */
  readonly holder: string
  /** Take the run lock even from a run that looks alive (one on a machine that is gone). */
  readonly takeOver?: boolean | undefined
  /** Where API keys are read (default: this process's environment). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Told once per endpoint what it does not do as configured. */
  readonly onWarning?: ((message: string) => void) | undefined
}

/** Why a run must stop before its work is done: the budget is reached, or a role's accounts cannot pay. */
export type StopReason =
  { readonly _tag: "budget"; readonly state: BudgetState } | { readonly _tag: "quota"; readonly message: string }

/**
 * A run set up and ready: the workspace's run lock held, its models built (local ones loaded on
 * first use), the budget counting what the workspace spent before. It lives in the Scope that made
 * it: closing the scope releases the lock and every local model.
 */
export interface RunSessionShape {
  readonly config: PipelineConfig
  readonly stages: ReadonlyArray<StageName>
  /** The workspace when the session started. */
  readonly status: StoreStatus
  readonly lm: LanguageModelShape
  /** Closed: no new model call starts (calls in flight finish): pause and clean stops. */
  readonly gate: Effect.Latch
  readonly limits: { readonly usd?: number | undefined; readonly tokens?: number | undefined }
  /** Ends when the run must stop (budget reached, quota exhausted), with why. */
  readonly stopWhen: Effect.Effect<StopReason>
  /** Why the run had to stop, if it had to. */
  readonly stopped: Effect.Effect<Option.Option<StopReason>>
  /** The pipeline over this session's models; the caller provides the verifier and the token counter. */
  readonly pipeline: (
    onEvent: (event: RunEvent) => void
  ) => Effect.Effect<
    PipelineReport,
    Effect.Effect.Error<ReturnType<typeof runPipeline>>,
    Exclude<Effect.Effect.Context<ReturnType<typeof runPipeline>>, LanguageModel>
  >
}

/** The roles the given stages call. */
export const rolesFor = (stages: ReadonlyArray<StageName>): Array<Role> => [
  ...(stages.includes("teacher") ? (["teacher"] as const) : []),
  ...(stages.includes("long-to-short") || stages.includes("align") ? (["rewriter"] as const) : []),
  ...(stages.includes("align") ? (["judge"] as const) : [])
]

/** The stages named, checked against the pipeline's (default: all). */
export const checkStages = (
  names: ReadonlyArray<string> | undefined
): Either.Either<ReadonlyArray<StageName>, RunSetupError> => {
  const wanted = names === undefined || names.length === 0 ? STAGES : names
  const unknown = wanted.filter((x) => !(STAGES as ReadonlyArray<string>).includes(x))
  return unknown.length > 0
    ? Either.left(
        new RunSetupError({
          reason: "stages",
          message: `unknown stage ${unknown.join(", ")}; the stages are ${STAGES.join(", ")}`
        })
      )
    : Either.right(wanted as ReadonlyArray<StageName>)
}

/** Sets up a run in the current Scope: checks, locks the workspace, builds the models. */
export const makeRunSession = (
  request: RunRequest
): Effect.Effect<RunSessionShape, RunSetupError | WorkspaceBusy | StoreError, RunStore | Scope.Scope> =>
  Effect.gen(function* () {
    const { config } = request
    const stages = yield* checkStages(request.stages)
    const needed = rolesFor(stages)
    const engines = yield* LocalEngines.make
    const roles = buildRoles(config, request.env ?? process.env, needed, request.onWarning, engines)
    if (Either.isLeft(roles)) return yield* new RunSetupError({ reason: "models", message: roles.left })
    yield* checkLocalModels(config, needed).pipe(
      Effect.mapError((message) => new RunSetupError({ reason: "local-model", message }))
    )
    const store = yield* RunStore
    const status = yield* store.status
    if (status.problems === 0) {
      return yield* new RunSetupError({
        reason: "no-problems",
        message: "the workspace has no problems yet: run `fastcot import FILE` first"
      })
    }
    const limits = {
      usd: request.budget?.usd ?? config.budget?.usd,
      tokens: request.budget?.tokens ?? config.budget?.tokens
    }
    const budgeted = limits.usd !== undefined || limits.tokens !== undefined
    if (limits.usd !== undefined) {
      const unpriced = unpricedEndpoints(config, needed)
      if (unpriced.length > 0) {
        return yield* new RunSetupError({
          reason: "unpriced",
          message:
            `a budget in US dollars needs a price on every endpoint that is called; ${unpriced.join(", ")} has none ` +
            "(give it `price: {input: USD, output: USD}` per million tokens in the pipeline file, or use a token budget)"
        })
      }
    }
    // One run per workspace, across processes: held until the scope closes.
    yield* store.lockRun(request.holder, { takeOver: request.takeOver })
    const stop = yield* Deferred.make<StopReason>()
    const gate = yield* Effect.makeLatch(true)
    const lm = yield* makeLanguageModel(roles.right, {
      cache: request.cache,
      gate,
      budget: budgeted
        ? {
            limits,
            spent: workspaceSpending(status.llm),
            workspaceSpending: Effect.map(store.spending, (s) => ({ usd: s.costUsd, tokens: s.tokens })),
            onReached: (state) => Deferred.unsafeDone(stop, Exit.succeed({ _tag: "budget", state }))
          }
        : undefined,
      onExhausted: (_role, message) => Deferred.unsafeDone(stop, Exit.succeed({ _tag: "quota", message }))
    })
    return {
      config,
      stages,
      status,
      lm,
      gate,
      limits,
      stopWhen: Deferred.await(stop),
      stopped: Deferred.poll(stop).pipe(
        Effect.flatMap((polled) => (Option.isSome(polled) ? Effect.asSome(polled.value) : Effect.succeedNone))
      ),
      pipeline: (onEvent) =>
        runPipeline(config, { cache: request.cache, onEvent, limit: request.limit, stages }).pipe(
          Effect.provideService(LanguageModel, lm)
        )
    } satisfies RunSessionShape
  })

/** A run set up for the scope of a Layer (see `makeRunSession`). */
export class RunSession extends Context.Tag("@fastcot/core/RunSession")<RunSession, RunSessionShape>() {
  static readonly make = makeRunSession
  static readonly layer = (
    request: RunRequest
  ): Layer.Layer<RunSession, RunSetupError | WorkspaceBusy | StoreError, RunStore> =>
    Layer.scoped(RunSession, makeRunSession(request))
}
