import { Args, Command, Options } from "@effect/cli"
import {
  datasetFiles,
  DATASET_LAYOUTS,
  type Domain,
  dryRunImport,
  type DryRunReport,
  importFile,
  type ImportOptions,
  type ImportReport,
  type InputFormat,
  LAYOUT_NAMES,
  type LayoutName,
  parseFieldMap,
  TokenCounter,
  QwenTokenCounterLive,
  workspacePaths
} from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { statSync } from "node:fs"
import { relative } from "node:path"
import { CliFailure, usage } from "../failure.js"
import {
  jsonOption,
  progressLine,
  stderr,
  stdout,
  namedStoreLayer,
  pipelineStoreOption,
  workspaceOption,
  storeOption,
  notAnOption,
  choiceOption
} from "../shared.js"

const SHOWN_REJECTS = 10

const files = Args.text({ name: "FILE" }).pipe(
  notAnOption("import"),
  Args.atLeast(1),
  Args.withDescription(
    "JSONL, JSON, CSV or Parquet files, or a dataset folder (a Hugging Face cache entry such as ~/.cache/huggingface/hub/datasets--open-r1--OpenR1-Math-220k)."
  )
)
const layout = choiceOption("layout", LAYOUT_NAMES).pipe(
  Options.optional,
  Options.withDescription(`The dataset's layout (default: recognised from the first row): ${LAYOUT_NAMES.join(", ")}.`)
)
const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription(
    "Show the layout, the field mapping, what would be created and the first rows as they would be stored; write nothing."
  )
)
const split = Options.text("split").pipe(
  Options.withDefault("train"),
  Options.withDescription("A dataset folder's split (default train).")
)
const config = Options.text("config").pipe(
  Options.optional,
  Options.withDescription("A dataset folder's configuration (default: the dataset card's default).")
)
const longAbove = Options.integer("long-above").pipe(
  Options.withDefault(1024),
  Options.withDescription(
    "Traces with more reasoning tokens than this (Qwen2.5 tokenizer) are long: candidates for long-to-short (default 1024, the recipe's)."
  )
)
const format = choiceOption("format", ["jsonl", "json", "csv", "parquet"]).pipe(
  Options.optional,
  Options.withDescription("The files' format (default: from each file's extension).")
)
const map = Options.text("map").pipe(
  Options.repeated,
  Options.withDescription(
    "Field mapping target=source,... (targets: question, answer, trace, choices, tests, domain, system, id); may be given more than once."
  )
)
const domain = choiceOption("domain", ["math", "code", "science"]).pipe(
  Options.optional,
  Options.withDescription(
    "The problems' domain (default: from a `domain` field, else code if tests, science if choices, else math)."
  )
)

const summary = (r: ImportReport, seconds: number) =>
  r.alreadyImported
    ? `${r.file}: already imported with these options (${r.rows} rows, ${r.problemsAdded} problems); nothing added`
    : `${r.file}: ${r.rows} rows${r.layout === "generic" ? "" : ` (layout ${r.layout})`}${r.resumed ? " (resumed)" : ""}, ${r.problemsAdded} new problems, ${r.itemsAdded} new traces, ` +
      `${r.duplicates} duplicates, ${r.rejected} rejected (${seconds.toFixed(1)} s)` +
      (r.byThisRun.problemsAdded !== r.problemsAdded || r.byThisRun.itemsAdded !== r.itemsAdded
        ? `; of these, this import added ${r.byThisRun.problemsAdded} problems and ${r.byThisRun.itemsAdded} traces, ` +
          `the rest ${r.resumed ? "the interrupted import it resumed (or one running at the same time)" : "another import of the file running at the same time"}`
        : "")

/** The files to import: each file given, and a dataset folder's files of the split. */
const expandFolders = (paths: ReadonlyArray<string>, split: string, config: string | undefined) =>
  Effect.forEach(paths, (path) => {
    let isDir = false
    try {
      isDir = statSync(path).isDirectory()
    } catch {
      // A missing file is reported by the import itself, with its name.
    }
    if (!isDir) return Effect.succeed([path])
    const found = datasetFiles(path, { split, config })
    return Either.isLeft(found) ? Effect.fail(usage(found.left)) : Effect.succeed([...found.right.files])
  }).pipe(Effect.map((lists) => lists.flat()))

const dryRunText = (r: DryRunReport): string =>
  [
    `${r.file}: layout ${r.layout} (${DATASET_LAYOUTS.find((l) => l.name === r.layout)?.datasets ?? ""})`,
    ...Object.entries(r.fields).map(([to, from]) => `  ${to.padEnd(16)} <- ${from}`),
    `would create ${r.problems} problems and ${r.traces} traces (${r.longTraces} long, ${r.cutOffTraces} cut off inside their reasoning) from ${r.rows} rows; ${r.rejected} rejected`,
    ...r.rejects.slice(0, SHOWN_REJECTS).map((x) => `  ${x.file}:${x.line}: ${x.reason}`),
    ...r.preview.flatMap((p) => [
      `line ${p.line}: problem ${p.problem.id} (${p.problem.domain})`,
      `  question: ${clip(p.problem.question)}`,
      ...(p.problem.answer !== undefined ? [`  answer:   ${clip(p.problem.answer)}`] : []),
      ...(p.problem.tests !== undefined ? [`  tests:    ${p.problem.tests.length}`] : []),
      ...p.items.map(
        (i, k) =>
          `  trace ${k + 1}: ${i.trace!.reasoning.length} characters of reasoning${i.trace!.long ? " (long)" : ""}${i.trace!.cutOff === true ? " (cut off)" : ""}; final: ${clip(i.trace!.finalAnswer ?? "-")}` +
          (i.metadata !== undefined ? `; ${JSON.stringify(i.metadata)}` : "")
      )
    ]),
    "nothing was written (--dry-run)"
  ].join("\n")

const clip = (s: string, n = 100) => {
  const one = s.replace(/\s+/g, " ").trim()
  return one.length > n ? `${one.slice(0, n - 3)}...` : one
}

/** Imports the files one by one into the workspace's store, reporting each; a file that fails is named and the rest go on. */
const importAll = (list: ReadonlyArray<string>, common: ImportOptions, rejectsDir: string, json: boolean) =>
  Effect.gen(function* () {
    const reports: Array<ImportReport> = []
    let failures = 0
    for (const file of list) {
      const started = Date.now()
      const progress = progressLine()
      const result = yield* importFile(file, {
        ...common,
        rejectsDir,
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
      if (!json) {
        yield* stdout(summary(r, (Date.now() - started) / 1000))
        for (const reject of r.rejects.slice(0, SHOWN_REJECTS))
          yield* stderr(`  ${reject.file}:${reject.line}: ${reject.reason}`)
        if (r.rejects.length > SHOWN_REJECTS) yield* stderr(`  ... and ${r.rejects.length - SHOWN_REJECTS} more`)
        if (r.rejectsFile !== undefined)
          yield* stderr(`  rejected rows are listed in ${relative(process.cwd(), r.rejectsFile) || r.rejectsFile}`)
      }
    }
    if (json)
      yield* stdout(
        JSON.stringify({ files: reports.map((r) => ({ ...r, rejects: r.rejects.slice(0, 100) })), failures })
      )
    const goodRows = reports.reduce((n, r) => n + (r.rows - r.rejected), 0)
    if (goodRows === 0) return yield* new CliFailure({ message: "no row was imported", exitCode: 2 })
  })

export const importCommand = Command.make(
  "import",
  {
    files,
    format,
    layout,
    map,
    domain,
    dryRun,
    split,
    config,
    longAbove,
    workspace: workspaceOption,
    store: storeOption,
    pipeline: pipelineStoreOption,
    json: jsonOption
  },
  (args) =>
    Effect.gen(function* () {
      const fieldMap = parseFieldMap(args.map.length > 0 ? args.map.join(",") : undefined)
      if (Either.isLeft(fieldMap)) return yield* usage(fieldMap.left)
      if (args.longAbove < 0) return yield* usage("--long-above must be at least 0")
      const list = yield* expandFolders(args.files, args.split, Option.getOrUndefined(args.config))
      // Long traces are told by their real token count, with the student's default tokenizer
      // (built on its own thread while the files are listed and opened; it ends with the command).
      const counter = yield* TokenCounter
      const common: ImportOptions = {
        format: Option.getOrUndefined(args.format) as InputFormat | undefined,
        layout: Option.getOrUndefined(args.layout) as LayoutName | undefined,
        map: fieldMap.right,
        domain: Option.getOrUndefined(args.domain) as Domain | undefined,
        long: { above: args.longAbove, count: counter.count }
      }
      if (args.dryRun) {
        // A dry run reads the files only: the workspace is neither made nor opened.
        const dry: Array<DryRunReport> = []
        for (const file of list) {
          const r = yield* dryRunImport(file, common).pipe(Effect.mapError((e) => usage(`${e.file}: ${e.message}`)))
          dry.push(r)
          if (!args.json) yield* stdout(dryRunText(r))
        }
        if (args.json) yield* stdout(JSON.stringify({ dryRun: dry }))
        return
      }
      yield* importAll(list, common, workspacePaths(args.workspace).rejects, args.json).pipe(
        Effect.provide(namedStoreLayer(args.workspace, args.store, args.pipeline))
      )
    }).pipe(Effect.provide(QwenTokenCounterLive))
).pipe(
  Command.withDescription(
    "Import problems (and any reasoning traces they carry) from JSONL, JSON, CSV or Parquet files, or a dataset folder.\n" +
      "Published layouts (OpenThoughts, OpenR1-Math, NuminaMath, s1K, reasoning_content, LiveCodeBench, APPS, TACO) are recognised from their fields.\n" +
      "Examples:\n  fastcot import data/train.jsonl\n  fastcot import ~/.cache/huggingface/hub/datasets--open-r1--OpenR1-Math-220k --dry-run\n" +
      "  fastcot import openthoughts.parquet --layout openthoughts\n  fastcot import gsm8k.parquet --map question=question,answer=answer --domain math"
  )
)
