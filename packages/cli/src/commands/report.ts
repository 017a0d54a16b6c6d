import { Args, Command, Options } from "@effect/cli"
import { disagreements, disagreementsMarkdown, type EvalResults, type Generation, htmlReport, markdownReport } from "@fastcot/evaluator"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { usage } from "../failure.js"
import { stderr, stdout } from "../shared.js"

const runs = Args.text({ name: "RUN" }).pipe(Args.atLeast(1), Args.withDescription("Evaluation folders (or their results.json files)."))
const html = Options.text("html").pipe(Options.optional, Options.withDescription("Also write a self-contained HTML page with charts."))

export const reportCommand = Command.make("report", { runs, html }, (args) =>
  Effect.gen(function* () {
    const loaded: Array<EvalResults> = []
    const generations: Array<{ model: string; generations: Array<Generation> }> = []
    for (const run of args.runs) {
      const file = existsSync(run) && statSync(run).isDirectory() ? join(run, "results.json") : run
      const gens = join(dirname(file), "generations.jsonl")
      if (!existsSync(file)) return yield* usage(`${file}: no such results file`)
      try {
        const parsed = JSON.parse(readFileSync(file, "utf8")) as EvalResults
        if (parsed.fastcot !== "eval/v1") return yield* usage(`${file}: not a fastcot evaluation result`)
        loaded.push(parsed)
        if (existsSync(gens)) {
          const list = readFileSync(gens, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Generation)
          generations.push({ model: `${parsed.model} (${generations.length + 1})`, generations: list })
        }
      } catch {
        return yield* usage(`${file}: not JSON`)
      }
    }
    yield* stdout(markdownReport(loaded))
    if (generations.length > 1 && generations.length === loaded.length) yield* stdout(disagreementsMarkdown(disagreements(generations)))
    const target = Option.getOrUndefined(args.html)
    if (target !== undefined) {
      writeFileSync(target, htmlReport(loaded, generations.length > 1 && generations.length === loaded.length ? disagreements(generations) : []))
      yield* stderr(`html: ${target}`)
    }
  })
).pipe(Command.withDescription("Compare evaluation runs: accuracy and average output tokens per benchmark, and accuracy against tokens.\nExamples:\n  fastcot report .fastcot/eval/run-a .fastcot/eval/run-b --html report.html"))
