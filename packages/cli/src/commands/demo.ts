import { Command, Options } from "@effect/cli"
import { exportDataset, RunStore, workspacePaths } from "@fastcot/core"
import { Effect, Layer } from "effect"
import { rm } from "node:fs/promises"
import { join, relative } from "node:path"
import { stdout, storeLayer, tokenLayer } from "../shared.js"
import { initWorkspace } from "./init.js"

const workspace = Options.text("workspace").pipe(
  Options.withDefault(".fastcot-demo"),
  Options.withDescription("The demo's workspace (recreated on every run).")
)

export const demoCommand = Command.make("demo", { workspace }, (args) =>
  Effect.gen(function* () {
    const paths = workspacePaths(args.workspace)
    yield* Effect.promise(() => rm(paths.root, { recursive: true, force: true }))
    const rel = (p: string) => relative(process.cwd(), p) || p
    yield* stdout(`fastcot demo: a fresh workspace in ${rel(paths.root)}, on the embedded defaults (SQLite store, sample problems)`)
    const { report } = yield* initWorkspace(args.workspace)
    yield* stdout(`1. import   ${report.rows} sample problems (math, science multiple choice, code) -> ${report.problemsAdded} problems`)
    const status = yield* Effect.flatMap(RunStore, (s) => s.status).pipe(Effect.provide(storeLayer(args.workspace)))
    yield* stdout(`2. status   ${status.problems} problems: ${Object.entries(status.domains).map(([d, n]) => `${n} ${d}`).join(", ")}`)
    yield* stdout("3. collect and align: not built yet (the LLM layer and the recipe pipeline come next)")
    const exported = yield* exportDataset({ format: "openai", out: join(paths.exports, "openai", "train.jsonl") }).pipe(
      Effect.provide(Layer.merge(storeLayer(args.workspace), tokenLayer))
    )
    yield* stdout(`4. export   ${exported.counts.train} kept items -> ${rel(exported.files.train)} (card: ${rel(exported.files.card)})`)
    yield* stdout(`done. Look around with: npx fastcot status --workspace ${rel(paths.root)}`)
  })
).pipe(Command.withDescription("Run the whole recipe offline on the embedded defaults, in a fresh demo workspace.\nExamples:\n  fastcot demo"))
