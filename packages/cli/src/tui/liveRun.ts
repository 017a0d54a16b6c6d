import { type LanguageModelShape, type PipelineReport, type RunEvent, type RunStoreShape } from "@fastcot/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"

/**
 * Runs a pipeline with the dashboard when `tui` is set (else with `onEvent`): p pauses through
 * `gate`, q closes it, waits for the calls in flight and stops the run (resumable), i inspects
 * items from `store`. Returns how the run ended and whether the user quit.
 */
export const liveRun = <E, R>(options: {
  readonly tui: boolean
  readonly title: string
  readonly stages: ReadonlyArray<string>
  readonly lm: LanguageModelShape
  readonly gate: Effect.Latch
  readonly store: RunStoreShape
  readonly onEvent: (e: RunEvent) => void
  readonly pipeline: (onEvent: (e: RunEvent) => void) => Effect.Effect<PipelineReport, E, R>
  /** Ends when the run must stop as q stops it (a budget reached), with the reason to show. */
  readonly stopWhen?: Effect.Effect<string> | undefined
}): Effect.Effect<
  { readonly exit: Exit.Exit<PipelineReport, E>; readonly quit: boolean; readonly stopReason?: string | undefined },
  never,
  R
> =>
  Effect.gen(function* () {
    const { gate, lm, store } = options
    let quit = false
    let stopReason: string | undefined
    let run: Fiber.RuntimeFiber<PipelineReport, E> | undefined
    // q: no new calls, wait for those in flight (their answers land in the cache), then stop.
    const quitCleanly = Effect.gen(function* () {
      quit = true
      yield* gate.close
      for (;;) {
        const inFlight = (yield* lm.stats).reduce((n, x) => n + x.inFlight, 0)
        dashboard?.message(inFlight > 0 ? `waiting for ${inFlight} calls in flight` : "stopping")
        if (inFlight === 0) break
        yield* Effect.sleep(Duration.millis(100))
      }
      if (run !== undefined) yield* Fiber.interrupt(run)
    })
    // Ink is loaded only for the dashboard: commands without it start faster.
    const dashboard = options.tui
      ? (yield* Effect.promise(() => import("./startDashboard.js"))).startDashboard({
          title: options.title,
          stages: options.stages,
          pause: (paused) => Effect.runSync(paused ? gate.close : gate.open),
          quit: () => Effect.runFork(quitCleanly),
          loadItem: (id) =>
            Effect.runPromise(
              Effect.gen(function* () {
                const item = yield* store.getItem(id)
                if (Option.isNone(item)) return undefined
                const problem = yield* store.getProblem(item.value.problemId)
                return { item: item.value, problem: Option.getOrUndefined(problem) }
              }).pipe(Effect.orElseSucceed(() => undefined))
            )
        })
      : undefined
    run = yield* Effect.fork(options.pipeline(dashboard !== undefined ? dashboard.event : options.onEvent))
    const stopper =
      options.stopWhen !== undefined
        ? yield* Effect.fork(
            Effect.flatMap(options.stopWhen, (reason) => {
              stopReason = reason
              dashboard?.message(reason)
              return quitCleanly
            })
          )
        : undefined
    let polls = 0
    const poller =
      dashboard !== undefined
        ? yield* Effect.fork(
            Effect.forever(
              Effect.flatMap(
                Effect.all([
                  lm.stats,
                  lm.budget ?? Effect.succeed(undefined),
                  // The workers sharing the run, on a shared store (a database query: every 2 s).
                  store.shared && ++polls % 4 === 1 ? Effect.option(store.workers) : Effect.succeedNone
                ]),
                ([st, budget, workers]) =>
                  Effect.sync(() => {
                    dashboard.stats(st)
                    dashboard.budget(budget)
                    if (Option.isSome(workers)) dashboard.workers(workers.value)
                  })
              ).pipe(Effect.zipRight(Effect.sleep(Duration.millis(500))))
            )
          )
        : undefined
    const exit = yield* Fiber.await(run).pipe(
      Effect.onInterrupt(() => Effect.promise(() => dashboard?.close() ?? Promise.resolve()))
    )
    if (poller !== undefined) yield* Fiber.interrupt(poller)
    if (stopper !== undefined) yield* Fiber.interrupt(stopper)
    if (dashboard !== undefined) {
      dashboard.stats(yield* lm.stats)
      if (lm.budget !== undefined) dashboard.budget(yield* lm.budget)
      if (Exit.isSuccess(exit))
        dashboard.event({ _tag: "pipeline-done", kept: exit.value.align?.kept ?? 0, dropped: 0, failed: 0 })
      yield* Effect.promise(() => dashboard.close())
    }
    return { exit, quit, stopReason }
  })
