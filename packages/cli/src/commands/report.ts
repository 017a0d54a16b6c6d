import { Args, Command, Options } from "@effect/cli"
import {
  disagreements,
  disagreementsMarkdown,
  type EvalResults,
  type Generation,
  htmlReport,
  markdownReport,
  readEvalResults,
  readGenerations
} from "@fastcot/evaluator"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { existsSync, statSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { usage } from "../failure.js"
import { stderr, stdout, notAnOption } from "../shared.js"

const runs = Args.text({ name: "RUN" }).pipe(
  notAnOption("report"),
  Args.atLeast(1),
  Args.withDescription("Evaluation folders (or their results.json files).")
)
const html = Options.text("html").pipe(
  Options.optional,
  Options.withDescription("Also write a self-contained HTML page with charts.")
)

export const reportCommand = Command.make("report", { runs, html }, (args) =>
  Effect.gen(function* () {
    const loaded: Array<EvalResults> = []
    const generations: Array<{ model: string; generations: Array<Generation> }> = []
    for (const run of args.runs) {
      const file = existsSync(run) && statSync(run).isDirectory() ? join(run, "results.json") : run
      const gens = join(dirname(file), "generations.jsonl")
      const parsed = readEvalResults(file)
      if (Either.isLeft(parsed))
        return yield* usage(parsed.left.reason === "missing" ? `${file}: no such results file` : parsed.left.message)
      loaded.push(parsed.right)
      if (existsSync(gens)) {
        const list = readGenerations(gens)
        if (Either.isLeft(list)) return yield* usage(list.left.message)
        generations.push({ model: `${parsed.right.model} (${generations.length + 1})`, generations: list.right })
      }
    }
    yield* stdout(markdownReport(loaded))
    if (generations.length > 1 && generations.length === loaded.length)
      yield* stdout(disagreementsMarkdown(disagreements(generations)))
    const target = Option.getOrUndefined(args.html)
    if (target !== undefined) {
      writeFileSync(
        target,
        htmlReport(
          loaded,
          generations.length > 1 && generations.length === loaded.length ? disagreements(generations) : []
        )
      )
      yield* stderr(`html: ${target}`)
    }
  })
).pipe(
  Command.withDescription(
    "Compare evaluation runs: accuracy and average output tokens per benchmark, and accuracy against tokens.\nExamples:\n  fastcot report .fastcot/eval/run-a .fastcot/eval/run-b --html report.html"
  )
)
