import { Command, Options } from "@effect/cli"
import {
  applyOverrides,
  buildRoles,
  defaultPipelineText,
  exportDataset,
  LanguageModel,
  makeLanguageModel,
  parsePipeline,
  RunStore,
  sampleTeacher,
  workspacePaths
} from "@fastcot/core"
import { startScriptedServer } from "@fastcot/core/testing/scriptedServer"
import { Effect, Either, Layer } from "effect"
import { rm } from "node:fs/promises"
import { join, relative } from "node:path"
import { stdout, storeLayer, tokenLayer } from "../shared.js"
import { initWorkspace } from "./init.js"

const workspace = Options.text("workspace").pipe(
  Options.withDefault(".fastcot-demo"),
  Options.withDescription("The demo's workspace (recreated on every run).")
)

export const demoCommand = Command.make("demo", { workspace }, (args) =>
  Effect.scoped(Effect.gen(function* () {
    const paths = workspacePaths(args.workspace)
    yield* Effect.promise(() => rm(paths.root, { recursive: true, force: true }))
    const rel = (p: string) => relative(process.cwd(), p) || p
    yield* stdout(`fastcot demo: a fresh workspace in ${rel(paths.root)}, on the embedded defaults (SQLite store, sample problems)`)
    const { report } = yield* initWorkspace(args.workspace)
    yield* stdout(`1. import   ${report.rows} sample problems (math, science multiple choice, code) -> ${report.problemsAdded} problems`)
    const status = yield* Effect.flatMap(RunStore, (s) => s.status).pipe(Effect.provide(storeLayer(args.workspace)))
    yield* stdout(`2. status   ${status.problems} problems: ${Object.entries(status.domains).map(([d, n]) => `${n} ${d}`).join(", ")}`)
    // A scripted teacher on 127.0.0.1: no model behind it, so its text is canned, and some of its
    // replies fail on purpose to show retries.
    const teacher = yield* Effect.acquireRelease(
      Effect.promise(() =>
        startScriptedServer({
          latencyMs: 30,
          faultRate: 0.2,
          faults: ["429", "500"],
          retryAfterSeconds: 0.05,
          script: (r) => ({ content: `(scripted teacher, canned text) Step 1: read the problem.\n\nStep 2: ${(r.messages[1]?.content ?? "").slice(0, 60)}...\n\nThe answer is \\boxed{42}.` })
        })
      ),
      (server) => Effect.promise(() => server.close())
    )
    yield* stdout(`3. teacher  a SCRIPTED teacher on ${teacher.baseUrl} (canned replies, 20% injected 429/500 faults)`)
    const base = Either.getOrThrow(parsePipeline(defaultPipelineText(), "built-in pipeline"))
    const config = applyOverrides(base, { teacher: `openai:scripted-teacher@${teacher.baseUrl}`, concurrency: 4 })
    const roles = Either.getOrThrow(buildRoles(config, {}, ["teacher"]))
    const sampled = yield* Effect.gen(function* () {
      const lm = yield* makeLanguageModel(roles)
      const report = yield* sampleTeacher(config, { concurrency: 4 }).pipe(Effect.provideService(LanguageModel, lm))
      const stats = (yield* lm.stats)[0]!
      return { report, stats }
    }).pipe(Effect.provide(storeLayer(args.workspace)))
    yield* stdout(
      `           ${sampled.report.done} traces sampled, ${sampled.stats.retries} retries after injected faults, ${sampled.report.failed} failed`
    )
    yield* stdout("   verify and align: not built yet; the traces wait at the verify stage")
    const exported = yield* exportDataset({ format: "openai", out: join(paths.exports, "openai", "train.jsonl") }).pipe(
      Effect.provide(Layer.merge(storeLayer(args.workspace), tokenLayer))
    )
    yield* stdout(`4. export   ${exported.counts.train} kept items -> ${rel(exported.files.train)} (card: ${rel(exported.files.card)})`)
    yield* stdout(`done. Look around with: npx fastcot status --workspace ${rel(paths.root)}`)
  }))
).pipe(Command.withDescription("Run the whole recipe offline on the embedded defaults, in a fresh demo workspace.\nExamples:\n  fastcot demo"))
