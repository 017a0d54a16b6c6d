import { Args, Command, Options } from "@effect/cli"
import { ensureDir, importFile, workspacePaths } from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { copyFile } from "node:fs/promises"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { failed, usage } from "../failure.js"
import { stdout, workspaceStoreLayer, notAnOption } from "../shared.js"

export const SAMPLE_PROBLEMS = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "assets",
  "sample-problems.jsonl"
)

const dir = Args.text({ name: "DIR" }).pipe(
  notAnOption("init"),
  Args.optional,
  Args.withDescription("The workspace folder (default ./.fastcot).")
)
// Every other command names its workspace with --workspace; init takes it either way.
const workspace = Options.text("workspace").pipe(
  Options.withAlias("w"),
  Options.optional,
  Options.withDescription("The workspace folder, as every command takes it (the same as DIR).")
)

/** Creates a workspace: its store, and sample problems imported into it. */
export const initWorkspace = (workspace: string) => {
  const paths = workspacePaths(workspace)
  return Effect.gen(function* () {
    const samples = join(paths.root, "samples", "problems.jsonl")
    yield* Effect.tryPromise({
      try: async () => {
        await ensureDir(dirname(samples))
        await copyFile(SAMPLE_PROBLEMS, samples)
      },
      catch: (e) => failed(`cannot write ${samples}: ${(e as Error).message}`)
    })
    const report = yield* importFile(samples, { rejectsDir: paths.rejects }).pipe(
      Effect.mapError((e) => failed(e.message))
    )
    return { paths, samples, report }
  }).pipe(Effect.provide(workspaceStoreLayer(workspace)))
}

export const initCommand = Command.make("init", { dir, workspace }, (args) =>
  Effect.gen(function* () {
    if (Option.isSome(args.dir) && Option.isSome(args.workspace) && args.dir.value !== args.workspace.value) {
      return yield* usage(`two workspaces given: ${args.dir.value} and --workspace ${args.workspace.value}; give one`)
    }
    const { paths, samples, report } = yield* initWorkspace(
      Option.getOrElse(
        Option.orElse(args.dir, () => args.workspace),
        () => ".fastcot"
      )
    )
    const rel = relative(process.cwd(), paths.root) || "."
    yield* stdout(
      [
        `workspace ready: ${rel}`,
        `  store     ${relative(process.cwd(), paths.db)}`,
        `  samples   ${relative(process.cwd(), samples)} (${report.rows} problems: math, science multiple choice, code)`,
        "next:",
        `  fastcot import YOUR_DATA.jsonl --workspace ${rel}`,
        `  fastcot status --workspace ${rel}`
      ].join("\n")
    )
  })
).pipe(
  Command.withDescription(
    "Create a workspace with its store and sample problems.\nExamples:\n  fastcot init\n  fastcot init my-project"
  )
)
