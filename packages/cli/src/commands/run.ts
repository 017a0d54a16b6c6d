import { Args, Command, Options } from "@effect/cli"
import {
  applyOverrides,
  buildRoles,
  defaultPipelineText,
  LanguageModel,
  makeLanguageModel,
  parsePipeline,
  roleConcurrency,
  RunStore,
  type RunEvent,
  sampleTeacher
} from "@fastcot/core"
import { Effect, Either, Option } from "effect"
import { readFile } from "node:fs/promises"
import { CliFailure, usage } from "../failure.js"
import { progressLine, stderr, stdout, storeLayer, workspaceOption } from "../shared.js"

const pipeline = Args.text({ name: "PIPELINE" }).pipe(Args.optional, Args.withDescription("A pipeline YAML/JSON file (default: the built-in DistilQwen2.5-DS3-0324 recipe)."))
const spec = (role: string) =>
  Options.text(role).pipe(Options.optional, Options.withDescription(`The ${role} model: openai:MODEL@BASE_URL (replaces the pipeline's ${role} endpoints).`))
const apiKeyEnv = Options.text("api-key-env").pipe(Options.optional, Options.withDescription("Environment variable holding the key for --teacher/--rewriter/--judge (default OPENAI_API_KEY)."))
const concurrency = Options.integer("concurrency").pipe(Options.optional, Options.withDescription("Requests in flight per endpoint (replaces the pipeline's)."))
const noTui = Options.boolean("no-tui").pipe(Options.withDescription("Plain progress lines instead of the dashboard."))
const json = Options.boolean("json").pipe(Options.withDescription("Print progress events as JSON lines."))
const noCache = Options.boolean("no-cache").pipe(Options.withDescription("Neither read nor write the LLM response cache."))
const refresh = Options.boolean("refresh").pipe(Options.withDescription("Ignore cached responses, and store the new ones."))
const limit = Options.integer("limit").pipe(Options.optional, Options.withDescription("Only the first N problems (a trial run)."))

const formatProgress = (e: Extract<RunEvent, { _tag: "progress" }>) => {
  const finished = e.done + e.failed
  const rate = e.elapsedMs > 0 ? (finished / e.elapsedMs) * 1000 : 0
  const remaining = e.total - e.skipped - finished
  const eta = rate > 0 ? `${Math.ceil(remaining / rate)} s left` : ""
  return `${e.stage}: ${finished + e.skipped}/${e.total} (${e.done} ok, ${e.failed} failed, ${e.skipped} already done, ${e.cached} cached) ` +
    `${rate.toFixed(1)}/s ${eta}  tokens ${e.promptTokens}+${e.completionTokens}  $${e.costUsd.toFixed(4)}`
}

export const runCommand = Command.make(
  "run",
  { pipeline, teacher: spec("teacher"), rewriter: spec("rewriter"), judge: spec("judge"), apiKeyEnv, concurrency, noTui, json, noCache, refresh, limit, workspace: workspaceOption },
  (args) =>
    Effect.gen(function* () {
      const file = Option.getOrUndefined(args.pipeline)
      const text = file === undefined
        ? defaultPipelineText()
        : yield* Effect.tryPromise({ try: () => readFile(file, "utf8"), catch: (e) => usage(`${file}: cannot read the pipeline file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`) })
      const parsed = parsePipeline(text, file ?? "built-in pipeline")
      if (Either.isLeft(parsed)) return yield* usage(`the pipeline is not valid:\n${parsed.left}`)
      if (args.noCache && args.refresh) return yield* usage("--no-cache and --refresh exclude each other")
      const config = applyOverrides(parsed.right, {
        teacher: Option.getOrUndefined(args.teacher),
        rewriter: Option.getOrUndefined(args.rewriter),
        judge: Option.getOrUndefined(args.judge),
        apiKeyEnv: Option.getOrUndefined(args.apiKeyEnv),
        concurrency: Option.getOrUndefined(args.concurrency)
      })
      const roles = buildRoles(config, process.env)
      if (Either.isLeft(roles)) return yield* usage(roles.left)
      const cache = args.noCache ? "off" : args.refresh ? "refresh" : "use"

      const store = yield* RunStore
      const status = yield* store.status
      if (status.problems === 0) return yield* usage("the workspace has no problems yet: run `fastcot import FILE` first")

      const progress = progressLine()
      let lastProgress = 0
      const onEvent = (event: RunEvent) => {
        if (args.json) {
          if (event._tag === "progress" && Date.now() - lastProgress < 200 && event.done + event.failed + event.skipped < event.total) return
          if (event._tag === "progress") lastProgress = Date.now()
          process.stdout.write(JSON.stringify(event) + "\n")
          return
        }
        if (event._tag === "progress") progress.update(formatProgress(event))
        if (event._tag === "item" && event.outcome === "failed") {
          progress.clear()
          process.stderr.write(`warn: ${event.stage} ${event.itemId}: ${event.reason ?? "failed"}\n`)
        }
      }
      if (!args.json) yield* stderr(`fastcot run: ${config.name} on ${status.problems} problems (workspace ${store.location})`)
      const lm = yield* makeLanguageModel(roles.right, { cache })
      const report = yield* sampleTeacher(config, { cache, concurrency: roleConcurrency(config, "teacher"), onEvent, limit: Option.getOrUndefined(args.limit) }).pipe(
        Effect.provideService(LanguageModel, lm)
      )
      progress.clear()
      const stats = yield* lm.stats
      if (!args.json) {
        yield* stdout(`teacher: ${report.done} sampled, ${report.failed} failed, ${report.skipped} already done (of ${report.total})`)
        for (const s of stats.filter((x) => x.requests > 0 || x.cacheHits > 0)) {
          yield* stdout(`  ${s.role} ${s.model} @ ${s.endpoint}: ${s.requests} requests, ${s.retries} retries, ${s.cacheHits} cache hits, ${s.promptTokens}+${s.completionTokens} tokens, $${s.costUsd.toFixed(4)}`)
        }
        yield* stdout("verify and align: not built yet; the sampled traces wait at the verify stage (fastcot status)")
      }
      if (report.failed > 0) {
        return yield* new CliFailure({ message: `${report.failed} teacher calls failed; run again to retry them`, exitCode: 1 })
      }
    }).pipe(Effect.provide(storeLayer(args.workspace)))
).pipe(
  Command.withDescription(
    "Run or resume the pipeline: teacher sampling now (verification and alignment come next).\n" +
      "Examples:\n  fastcot run --teacher openai:deepseek-chat@https://api.deepseek.com/v1 --api-key-env DEEPSEEK_API_KEY\n" +
      "  fastcot run apps/distilqwen-ds3-0324/pipeline.yaml --limit 20\n  fastcot run --teacher openai:qwen@http://127.0.0.1:8000/v1 --json"
  )
)

