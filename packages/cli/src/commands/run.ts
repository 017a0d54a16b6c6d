import { Args, Command, Options } from "@effect/cli"
import {
  displayStoreUrl,
  isPostgresUrl,
  applyOverrides,
  defaultPipelineText,
  ensureDir,
  parsePipeline,
  QwenTokenCounterLive,
  TokenCounter,
  tokenizerFileCounter,
  describeSpent,
  RunStore,
  type RunEvent,
  workspacePaths,
  ROLES,
  type Role,
  RunSession,
  STAGES
} from "@fastcot/core"
import { benchmark, benchmarkNames, makeSandbox, verifierFor } from "@fastcot/evaluator"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { existsSync, statSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { CliFailure, usage } from "../failure.js"
import {
  budgetTokensOption,
  budgetUsdOption,
  dashboardTerminal,
  inRange,
  progressLine,
  stderr,
  stdout,
  storeFromEnv,
  readPipeline,
  storeLayer,
  workspaceOption,
  storeOption,
  notAnOption,
  listOption
} from "../shared.js"
import { liveRun } from "../tui/liveRun.js"

const pipeline = Args.text({ name: "PIPELINE" }).pipe(
  notAnOption("run"),
  Args.optional,
  Args.withDescription("A pipeline YAML/JSON file (default: the built-in DistilQwen2.5-DS3-0324 recipe).")
)
const spec = (role: string) =>
  Options.text(role).pipe(
    Options.optional,
    Options.withDescription(`The ${role} model: openai:MODEL@BASE_URL (replaces the pipeline's ${role} endpoints).`)
  )
const apiKeyEnv = Options.text("api-key-env").pipe(
  Options.optional,
  Options.withDescription(
    "Environment variable holding the key for --teacher/--rewriter/--judge (default OPENAI_API_KEY)."
  )
)
const concurrency = Options.integer("concurrency").pipe(
  inRange("--concurrency", 1, 4096),
  Options.optional,
  Options.withDescription("Requests in flight per endpoint (replaces the pipeline's).")
)
const noTui = Options.boolean("no-tui").pipe(Options.withDescription("Plain progress lines instead of the dashboard."))
const json = Options.boolean("json").pipe(Options.withDescription("Print progress events as JSON lines."))
const noCache = Options.boolean("no-cache").pipe(
  Options.withDescription("Neither read nor write the LLM response cache.")
)
const refresh = Options.boolean("refresh").pipe(
  Options.withDescription("Ignore cached responses, and store the new ones.")
)
const stages = listOption("stages", `Which stages to run, in order (default: all): ${STAGES.join(", ")}.`)
const benchmarks = listOption(
  "benchmarks",
  "Benchmark files to decontaminate against, or the folder `fastcot eval --data` reads (its MATH-500, AIME 2024, GPQA-Diamond, MMLU-Pro and LiveCodeBench files); adds to the pipeline's filter.benchmarks."
)

/**
 * The benchmark files to decontaminate against: a file as given, a folder as the evaluation
 * benchmarks' files it holds (where `fastcot eval --data` finds them). A folder with none of them
 * is refused rather than read as no benchmark at all.
 */
const benchmarkFiles = (entries: ReadonlyArray<string>): Either.Either<ReadonlyArray<string>, string> => {
  const files: Array<string> = []
  for (const entry of entries) {
    if (!existsSync(entry) || !statSync(entry).isDirectory()) {
      files.push(entry)
      continue
    }
    const found = benchmarkNames().flatMap((name) => {
      const file = (benchmark(name)?.files ?? []).map((f) => join(entry, f)).find((f) => existsSync(f))
      return file === undefined ? [] : [file]
    })
    if (found.length === 0)
      return Either.left(
        `${entry}: a folder with none of the evaluation benchmarks' files (${benchmarkNames()
          .map((n) => benchmark(n)?.files[0])
          .join(", ")}); name the files to decontaminate against`
      )
    files.push(...found)
  }
  return Either.right(files)
}
const batch = listOption(
  "batch",
  "Roles whose endpoints go to the provider's batch API at the batch price (teacher, rewriter, judge)."
)
const tokenizer = Options.text("tokenizer").pipe(
  Options.optional,
  Options.withDescription(
    "The student's tokenizer for token counts: a tokenizer.json or a model folder holding one (default: Qwen2.5's)."
  )
)
const budgetUsd = budgetUsdOption("the workspace's")
const budgetTokens = budgetTokensOption("the workspace's")
const limit = Options.integer("limit").pipe(
  inRange("--limit", 1, Number.MAX_SAFE_INTEGER),
  Options.optional,
  Options.withDescription("Only the first N problems (a trial run).")
)
const takeOver = Options.boolean("take-over").pipe(
  Options.withDescription(
    "Take the workspace's run lock even from a run that looks alive (one on another machine that is gone); two live runs would pay for the same calls twice."
  )
)

const formatProgress = (e: Extract<RunEvent, { _tag: "progress" }>) => {
  const finished = e.done + e.failed
  const rate = e.elapsedMs > 0 ? (finished / e.elapsedMs) * 1000 : 0
  const remaining = e.total - e.skipped - finished
  const eta = rate > 0 ? `${Math.ceil(remaining / rate)} s left` : ""
  return (
    `${e.stage}: ${finished + e.skipped}/${e.total} (${e.done} ok, ${e.failed} failed, ${e.skipped} already done, ${e.cached} cached) ` +
    `${rate.toFixed(1)}/s ${eta}  tokens ${e.promptTokens}+${e.completionTokens}  $${e.costUsd.toFixed(4)}`
  )
}

export const runCommand = Command.make(
  "run",
  {
    pipeline,
    teacher: spec("teacher"),
    rewriter: spec("rewriter"),
    judge: spec("judge"),
    apiKeyEnv,
    concurrency,
    batch,
    noTui,
    json,
    noCache,
    refresh,
    limit,
    stages,
    benchmarks,
    tokenizer,
    budgetUsd,
    budgetTokens,
    takeOver,
    workspace: workspaceOption,
    store: storeOption
  },
  (args) =>
    Effect.gen(function* () {
      const pipeline = Option.isSome(args.pipeline)
        ? yield* readPipeline(args.pipeline.value)
        : Either.getOrThrow(parsePipeline(defaultPipelineText(), "built-in pipeline"))
      if (args.noCache && args.refresh) return yield* usage("--no-cache and --refresh exclude each other")
      const notRoles = args.batch.filter((r) => !(ROLES as ReadonlyArray<string>).includes(r))
      if (notRoles.length > 0)
        return yield* usage(`--batch takes roles (${ROLES.join(", ")}), not ${notRoles.join(", ")}`)
      const batchRoles = args.batch as ReadonlyArray<Role>
      const decontaminateAgainst = benchmarkFiles([...pipeline.stages.filter.benchmarks, ...args.benchmarks])
      if (Either.isLeft(decontaminateAgainst)) return yield* usage(`--benchmarks: ${decontaminateAgainst.left}`)
      const withBenchmarks = {
        ...pipeline,
        stages: {
          ...pipeline.stages,
          filter: { ...pipeline.stages.filter, benchmarks: decontaminateAgainst.right }
        }
      }
      const config = applyOverrides(withBenchmarks, {
        teacher: Option.getOrUndefined(args.teacher),
        rewriter: Option.getOrUndefined(args.rewriter),
        judge: Option.getOrUndefined(args.judge),
        apiKeyEnv: Option.getOrUndefined(args.apiKeyEnv),
        concurrency: Option.getOrUndefined(args.concurrency),
        batch: batchRoles
      })
      // The store: --store, else the pipeline file's `store:`, else FASTCOT_STORE, else the workspace's file.
      const fromEnv = storeFromEnv()
      if (Option.isNone(args.store) && config.store !== undefined && fromEnv !== undefined && fromEnv !== config.store)
        yield* stderr(
          `note: the pipeline file's store (${displayStoreUrl(config.store)}) is used; FASTCOT_STORE names another (${isPostgresUrl(fromEnv) ? displayStoreUrl(fromEnv) : fromEnv})`
        )
      return yield* Effect.gen(function* () {
        // What an endpoint does not do as configured (a constraint it ignored, a stream it forces) is
        // said once: on stderr until the run starts, then as a warning in its events.
        let warn = (message: string): void => void process.stderr.write(`warn: ${message}\n`)
        const store = yield* RunStore
        const session = yield* RunSession.make({
          config,
          stages: args.stages,
          limit: Option.getOrUndefined(args.limit),
          cache: args.noCache ? "off" : args.refresh ? "refresh" : "use",
          budget: { usd: Option.getOrUndefined(args.budgetUsd), tokens: Option.getOrUndefined(args.budgetTokens) },
          holder: "fastcot run",
          takeOver: args.takeOver,
          onWarning: (message) => warn(message)
        }).pipe(
          Effect.catchTags({
            RunSetupError: (e) => usage(e.reason === "stages" ? `--stages: ${e.message}` : e.message),
            // One run per workspace (a second would send the same calls and pay for them twice).
            WorkspaceBusy: (e) =>
              new CliFailure({
                message: `${e.message}. If that run was on another machine and has ended, run again with --take-over.`,
                exitCode: 1
              })
          })
        )
        const { status, lm, limits } = session

        const progress = progressLine()
        let lastProgress = 0
        // One live line: the teacher's progress, then per item stage: done/-dropped !failed.
        let teacherLine = ""
        // The budget's standing, once the service that keeps it exists.
        let budgetNow: () => string = () => ""
        const stageCounts: Record<string, { ok: number; dropped: number; failed: number }> = {}
        const onEvent = (event: RunEvent) => {
          if (args.json) {
            if (
              event._tag === "progress" &&
              Date.now() - lastProgress < 200 &&
              event.done + event.failed + event.skipped < event.total
            )
              return
            if (event._tag === "progress") lastProgress = Date.now()
            process.stdout.write(JSON.stringify(event) + "\n")
            return
          }
          if (event._tag === "progress") teacherLine = formatProgress(event)
          if (event._tag === "item" && event.stage !== "teacher") {
            const c = (stageCounts[event.stage] ??= { ok: 0, dropped: 0, failed: 0 })
            c[event.outcome]++
          }
          const items = Object.entries(stageCounts).map(
            ([stage, c]) =>
              `${stage} ${c.ok}${c.dropped > 0 ? `/-${c.dropped}` : ""}${c.failed > 0 ? ` !${c.failed}` : ""}`
          )
          progress.update([teacherLine, ...items, budgetNow()].filter((x) => x !== "").join(" | "))
          if (event._tag === "item" && event.outcome === "failed") {
            progress.clear()
            process.stderr.write(`warn: ${event.stage} ${event.itemId}: ${event.reason ?? "failed"}\n`)
          }
        }
        if (!args.json)
          yield* stderr(`fastcot run: ${config.name} on ${status.problems} problems (workspace ${store.location})`)
        // One sandbox: its isolation is probed once, reported here and used by the verifier.
        const sandbox = makeSandbox()
        if (session.stages.includes("verify") && sandbox.warning !== undefined && !args.json)
          yield* stderr(`warn: code sandbox: ${sandbox.warning}`)
        // The student's tokenizer, checked before any work starts.
        const counterLayer = Option.isNone(args.tokenizer)
          ? QwenTokenCounterLive
          : Layer.succeed(
              TokenCounter,
              yield* tokenizerFileCounter(args.tokenizer.value).pipe(
                Effect.mapError((e) => usage(`--tokenizer: ${e.message}`))
              )
            )
        const tui = !args.json && !args.noTui && dashboardTerminal({ keys: true })
        const budgetState = lm.budget
        if (budgetState !== undefined) {
          budgetNow = () => `budget ${describeSpent(Effect.runSync(budgetState))}`
          if (!args.json) yield* stderr(`budget: ${describeSpent(yield* budgetState)} spent so far`)
        }
        const {
          exit,
          quit: quitRequested,
          stopReason
        } = yield* liveRun({
          tui,
          title: `${config.name} · ${status.problems} problems · ${store.location}`,
          stages: session.stages,
          lm,
          gate: session.gate,
          store,
          onEvent,
          stopWhen: Effect.map(session.stopWhen, (why) =>
            why._tag === "quota"
              ? `stopped: ${why.message}`
              : `budget reached (${describeSpent(why.state)}): finishing the calls in flight`
          ),
          pipeline: (emit) =>
            Effect.sync(() => {
              warn = (message) => emit({ _tag: "log", level: "warn", message })
            }).pipe(
              Effect.zipRight(
                session.pipeline(emit).pipe(
                  Effect.provide(Layer.merge(verifierFor(sandbox), counterLayer)),
                  Effect.catchTag("ImportError", (e) => usage(`${e.file}: ${e.message}`))
                )
              )
            )
        })
        if (Exit.isFailure(exit)) {
          if (quitRequested) {
            const after = yield* store.status
            progress.clear()
            const stopped = Option.getOrUndefined(yield* session.stopped)
            if (stopped?._tag === "quota") {
              return yield* new CliFailure({
                message: `${stopped.message}\nNothing more was sent; ${after.kept} kept, ${after.dropped} dropped, ${after.pending} pending. Add funds or another endpoint, then run the same command again to go on.`,
                exitCode: 1
              })
            }
            if (stopReason !== undefined) {
              const state = yield* lm.budget ?? Effect.succeed(undefined)
              return yield* new CliFailure({
                message:
                  `stopped at the budget${state !== undefined ? ` (${describeSpent(state)} spent by the workspace)` : ""}: ${after.kept} kept, ${after.dropped} dropped, ${after.pending} pending.\n` +
                  (state?.heldBack !== undefined
                    ? `The next call could cost up to ${[limits.usd !== undefined ? `$${state.heldBack.usd.toFixed(4)}` : "", limits.tokens !== undefined ? `${state.heldBack.tokens} tokens` : ""].filter((x) => x !== "").join(" and ")} (its prompt and max_tokens), more than is left; no call starts that the budget could not pay for.\n`
                    : "") +
                  "Raise --budget-usd/--budget-tokens and run the same command again to go on.",
                exitCode: 3
              })
            }
            yield* stdout(
              `stopped (q): ${after.kept} kept, ${after.dropped} dropped, ${after.pending} pending; run the same command again to resume`
            )
            return
          }
          return yield* exit
        }
        const report = exit.value
        if (report.filter !== undefined) {
          const file = join(workspacePaths(args.workspace).root, "reports", "filter.json")
          yield* Effect.promise(() =>
            ensureDir(dirname(file)).then(() => writeFile(file, JSON.stringify(report.filter, null, 2) + "\n"))
          )
        }
        progress.clear()
        const stats = yield* lm.stats
        const failed = (report.teacher?.failed ?? 0) + (report.longToShort?.failed ?? 0) + (report.align?.failed ?? 0)
        if (!args.json) {
          if (report.filter !== undefined) {
            const f = report.filter
            const overlap =
              f.benchmarkProblems > 0
                ? `${f.contaminated} overlapping ${f.benchmarkProblems} benchmark problems`
                : "not checked against any benchmark"
            yield* stdout(
              `filter         ${f.problems} problems: ${f.duplicates} duplicates, ${f.nearDuplicates} near-duplicates, ${overlap}, ${f.noReference} without a reference answer (report: reports/filter.json)`
            )
            if (f.benchmarkProblems === 0)
              yield* stderr(
                "warn: not decontaminated: no evaluation benchmark was given (--benchmarks DATA_DIR or FILES, or filter.benchmarks in the pipeline file), so a training problem that is also a MATH-500 or AIME question would be trained on and then scored"
              )
          }
          if (report.teacher !== undefined) {
            yield* stdout(
              `teacher        ${report.teacher.done} sampled, ${report.teacher.failed} failed, ${report.teacher.skipped} already done (of ${report.teacher.total})`
            )
          }
          for (const r of [report.longToShort, report.verify, report.align]) {
            if (r === undefined) continue
            yield* stdout(
              `${r.stage.padEnd(14)} ${r.processed} items: ${r.advanced} moved on, ${r.kept} kept, ${r.dropped} dropped, ${r.failed} failed`
            )
          }
          for (const s of stats.filter((x) => x.requests > 0 || x.cacheHits > 0)) {
            yield* stdout(
              `  ${s.role} ${s.model} @ ${s.endpoint}: ${s.requests} requests, ${s.retries} retries, ${s.cacheHits} cache hits, ${s.promptTokens}+${s.completionTokens} tokens, $${s.costUsd.toFixed(4)}` +
                (s.batch === undefined
                  ? ""
                  : `; in batches: ${s.batch.submitted} jobs (${s.batch.failed} failed or expired), ${s.batch.resubmitted} requests sent again, ${s.batch.live} live, $${s.batch.savedUsd.toFixed(4)} saved`)
            )
          }
          const after = yield* store.status
          yield* stdout(
            `workspace      ${after.kept} kept (${
              Object.entries(after.keptAs)
                .map(([k, n]) => `${n} ${k}`)
                .join(", ") || "none"
            }), ${after.dropped} dropped, ${after.pending} pending` +
              (after.failed > 0
                ? `, ${after.failed} failed (${Object.entries(after.failReasons)
                    .map(([k, n]) => `${n} ${k}`)
                    .join(", ")}; \`fastcot inspect --fate failed\` shows why)`
                : "")
          )
        }
        if (failed > 0) {
          return yield* new CliFailure({
            message: `${failed} model calls failed after their retries; run again to retry them (\`fastcot inspect --fate failed\` shows why; a role's \`maxAttempts\` in the pipeline file sets its tries, 6 by default)`,
            exitCode: 1
          })
        }
      }).pipe(Effect.scoped, Effect.provide(storeLayer(args.workspace, args.store, config.store)))
    })
).pipe(
  Command.withDescription(
    "Run or resume the recipe: teacher sampling, long-to-short, answer verification, then judge -> expand/simplify until medium.\n" +
      "Examples:\n  fastcot run --teacher openai:deepseek-chat@https://api.deepseek.com/v1 --api-key-env DEEPSEEK_API_KEY\n" +
      "  fastcot run apps/distilqwen-ds3-0324/pipeline.yaml --limit 20\n  fastcot run --teacher openai:qwen@http://127.0.0.1:8000/v1 --json"
  )
)
