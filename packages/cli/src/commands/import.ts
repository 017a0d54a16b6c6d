import { Args, Command, Options } from "@effect/cli"
import { type Domain, importFile, type ImportReport, type InputFormat, parseFieldMap, workspacePaths } from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { relative } from "node:path"
import { CliFailure, usage } from "../failure.js"
import { jsonOption, progressLine, stderr, stdout, storeLayer, workspaceOption, notAnOption, choiceOption } from "../shared.js"

const SHOWN_REJECTS = 10

const files = Args.text({ name: "FILE" }).pipe(notAnOption("import"), Args.atLeast(1), Args.withDescription("JSONL, JSON, CSV or Parquet files."))
const format = choiceOption("format", ["jsonl", "json", "csv", "parquet"]).pipe(
  Options.optional,
  Options.withDescription("The files' format (default: from each file's extension).")
)
const map = Options.text("map").pipe(
  Options.repeated,
  Options.withDescription("Field mapping target=source,... (targets: question, answer, trace, choices, tests, domain, system, id); may be given more than once.")
)
const domain = choiceOption("domain", ["math", "code", "science"]).pipe(
  Options.optional,
  Options.withDescription("The problems' domain (default: from a `domain` field, else code if tests, science if choices, else math).")
)

const summary = (r: ImportReport, seconds: number) =>
  r.alreadyImported
    ? `${r.file}: already imported with these options (${r.rows} rows, ${r.problemsAdded} problems); nothing added`
    : `${r.file}: ${r.rows} rows${r.resumed ? " (resumed)" : ""}, ${r.problemsAdded} new problems, ${r.itemsAdded} new traces, ` +
      `${r.duplicates} duplicates, ${r.rejected} rejected (${seconds.toFixed(1)} s)`

export const importCommand = Command.make(
  "import",
  { files, format, map, domain, workspace: workspaceOption, json: jsonOption },
  (args) =>
    Effect.gen(function* () {
      const fieldMap = parseFieldMap(args.map.length > 0 ? args.map.join(",") : undefined)
      if (Either.isLeft(fieldMap)) return yield* usage(fieldMap.left)
      const paths = workspacePaths(args.workspace)
      const reports: Array<ImportReport> = []
      let failures = 0
      for (const file of args.files) {
        const started = Date.now()
        const progress = progressLine()
        const result = yield* importFile(file, {
          format: Option.getOrUndefined(args.format) as InputFormat | undefined,
          map: fieldMap.right,
          domain: Option.getOrUndefined(args.domain) as Domain | undefined,
          rejectsDir: paths.rejects,
          onProgress: (p) =>
            progress.update(
              `importing ${file}: ${p.rows} rows, ${p.problemsAdded} new, ${p.rejected} rejected` +
                (p.totalBytes > 0 ? ` (${Math.round((100 * p.bytes) / p.totalBytes)}%)` : "")
            )
        }).pipe(Effect.either)
        progress.clear()
        if (Either.isLeft(result)) {
          failures++
          const e = result.left
          yield* stderr(e._tag === "ImportError" ? `error: ${e.file}: ${e.message}` : `error: ${file}: ${e.message}`)
          continue
        }
        const r = result.right
        reports.push(r)
        if (!args.json) {
          yield* stdout(summary(r, (Date.now() - started) / 1000))
          for (const reject of r.rejects.slice(0, SHOWN_REJECTS)) yield* stderr(`  ${reject.file}:${reject.line}: ${reject.reason}`)
          if (r.rejects.length > SHOWN_REJECTS) yield* stderr(`  ... and ${r.rejects.length - SHOWN_REJECTS} more`)
          if (r.rejectsFile !== undefined) yield* stderr(`  rejected rows are listed in ${relative(process.cwd(), r.rejectsFile) || r.rejectsFile}`)
        }
      }
      if (args.json) {
        yield* stdout(JSON.stringify({ files: reports.map((r) => ({ ...r, rejects: r.rejects.slice(0, 100) })), failures }))
      }
      const goodRows = reports.reduce((n, r) => n + (r.rows - r.rejected), 0)
      if (goodRows === 0) {
        return yield* new CliFailure({ message: "no row was imported", exitCode: 2 })
      }
    }).pipe(Effect.provide(storeLayer(args.workspace)))
).pipe(
  Command.withDescription(
    "Import problems (and any reasoning traces they carry) from JSONL, JSON, CSV or Parquet files.\n" +
      "Examples:\n  fastcot import data/train.jsonl\n  fastcot import gsm8k.parquet --map question=question,answer=answer --domain math"
  )
)
