import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { createReadStream } from "node:fs"
import { access, stat, writeFile } from "node:fs/promises"
import { ensureDir } from "../util/dirs.js"
import { basename, join, resolve } from "node:path"
import { createHash } from "node:crypto"
import type { Item } from "../schema/item.js"
import type { Domain, Problem } from "../schema/problem.js"
import { type ImportProgress, type ImportReject, RunStore } from "../store/RunStore.js"
import type { StoreError } from "../store/errors.js"
import { canonicalJson, sha256Hex } from "../util/hash.js"
import { type DatasetLayout, datasetLayout, detectLayout, type LayoutName, mapRowWithLayout } from "./datasetLayouts.js"
import { type FieldMap, type LayoutOptions } from "./layout.js"
import { formatFromPath, type InputFormat, readRows, START } from "./readers.js"

/** The file cannot be imported at all (missing, unreadable, unknown format, broken structure). */
export class ImportError extends Data.TaggedError("ImportError")<{
  readonly file: string
  readonly message: string
}> {}

export interface ImportOptions {
  readonly format?: InputFormat | undefined
  /** The dataset's layout; by default recognised from the file's first row (see `detectLayout`). */
  readonly layout?: LayoutName | undefined
  readonly map?: FieldMap | undefined
  readonly domain?: Domain | undefined
  /** Which traces are long (see `LayoutOptions.long`): more tokens than `above`, counted by `count`. */
  readonly long?: LayoutOptions["long"] | undefined
  readonly batchSize?: number | undefined
  /** Where the rejects file goes; none is written when undefined. */
  readonly rejectsDir?: string | undefined
  readonly onProgress?: ((p: ImportProgressEvent) => void) | undefined
}

export interface ImportProgressEvent {
  readonly file: string
  readonly rows: number
  readonly bytes: number
  readonly totalBytes: number
  readonly problemsAdded: number
  readonly rejected: number
}

/** What one import of a file added itself (its own batches, not those of earlier or other imports). */
export interface ImportedByThisRun {
  readonly rows: number
  readonly problemsAdded: number
  readonly itemsAdded: number
  readonly duplicates: number
  readonly rejected: number
}

/**
 * How an import ended. `rows`, `problemsAdded`, `itemsAdded`, `duplicates` and `rejected` are the
 * file's, as stored: with those of an interrupted import this one resumed, and of other workers
 * importing the same file at once. `byThisRun` is this import's own share; summed over every
 * import of a file, its added counts make the file's.
 */
export interface ImportReport {
  readonly file: string
  readonly format: InputFormat
  /** The layout the rows were read with. */
  readonly layout: LayoutName
  readonly key: string
  readonly rows: number
  readonly problemsAdded: number
  readonly itemsAdded: number
  readonly duplicates: number
  readonly rejected: number
  readonly byThisRun: ImportedByThisRun
  readonly rejects: ReadonlyArray<ImportReject>
  readonly rejectsFile?: string | undefined
  /** The file had been imported before with the same options: nothing was read again. */
  readonly alreadyImported: boolean
  /** An interrupted import of this file was continued. */
  readonly resumed: boolean
}

const hashFile = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const h = createHash("sha256")
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on("data", (c) => h.update(c))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")))
  })

/** What an import read and added between two of its own views of the file's progress. */
const shareBetween = (from: ImportProgress, to: ImportProgress): ImportedByThisRun => ({
  rows: to.rows - from.rows,
  problemsAdded: to.problemsAdded - from.problemsAdded,
  itemsAdded: to.itemsAdded - from.itemsAdded,
  duplicates: to.duplicates - from.duplicates,
  rejected: to.rejected - from.rejected
})

/** A row that could not be imported: its file, line and why, with the start of the row as read. */
const rejectOf = (file: string, line: number, reason: string, value: unknown): ImportReject => ({
  file,
  line,
  reason,
  raw: JSON.stringify(value)?.slice(0, 200) ?? ""
})

/**
 * Imports one file into the store, streamed in batches. Each batch (its problems, items, rejects
 * and the read position) is one transaction, so a killed import resumes where it stopped and adds
 * nothing twice. Bad rows never abort the import: each is recorded with its line and reason.
 */
export const importFile = (
  file: string,
  options: ImportOptions = {}
): Effect.Effect<ImportReport, ImportError | StoreError, RunStore> =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const format = options.format ?? formatFromPath(file)
    if (format === undefined) {
      return yield* new ImportError({
        file,
        message: "cannot tell the format from the file name; pass --format jsonl|json|csv|parquet"
      })
    }
    const info = yield* Effect.tryPromise({
      try: async () => {
        await access(file)
        const s = await stat(file)
        if (!s.isFile()) throw new Error("not a regular file")
        return s
      },
      catch: (e) =>
        new ImportError({
          file,
          message: `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`
        })
    })
    const contentHash = yield* Effect.tryPromise({
      try: () => hashFile(file),
      catch: (e) => new ImportError({ file, message: `cannot read the file: ${(e as Error).message}` })
    })
    const layout = yield* chooseLayout(file, format, options.layout)
    const key = sha256Hex(
      canonicalJson({
        contentHash,
        format,
        map: options.map ?? {},
        domain: options.domain ?? null,
        layout: layout.name,
        long: options.long?.above ?? null
      })
    )
    const previous = yield* store.importProgress(key)
    const start: ImportProgress = Option.getOrElse(previous, () => ({
      key,
      path: resolve(file),
      rows: 0,
      offset: 0,
      line: 1,
      problemsAdded: 0,
      itemsAdded: 0,
      duplicates: 0,
      rejected: 0,
      done: false
    }))
    const fileName = basename(file)
    const writeRejects = (progress: ImportProgress, byThisRun: ImportedByThisRun) =>
      Effect.gen(function* () {
        const rejects = yield* store.importRejects(key)
        let rejectsFile: string | undefined
        if (options.rejectsDir !== undefined && rejects.length > 0) {
          const dir = options.rejectsDir
          rejectsFile = join(dir, `${fileName}.${key.slice(0, 8)}.rejects.jsonl`)
          const body = rejects.map((r) => JSON.stringify(r)).join("\n") + "\n"
          yield* Effect.tryPromise({
            try: async () => {
              await ensureDir(dir)
              await writeFile(rejectsFile!, body)
            },
            catch: (e) => new ImportError({ file, message: `cannot write the rejects file: ${(e as Error).message}` })
          })
        }
        return {
          file,
          format,
          layout: layout.name,
          key,
          rows: progress.rows,
          problemsAdded: progress.problemsAdded,
          itemsAdded: progress.itemsAdded,
          duplicates: progress.duplicates,
          rejected: progress.rejected,
          byThisRun,
          rejects,
          rejectsFile
        }
      })

    if (start.done) {
      const report = yield* writeRejects(start, shareBetween(start, start))
      return { ...report, alreadyImported: true, resumed: false } satisfies ImportReport
    }

    const batchSize = options.batchSize ?? 2000
    let progress = start
    const iterator = readRows(format, file, { rows: start.rows, line: start.line, offset: start.offset }, batchSize)
    // One batch's commit runs while the next batch is read and mapped: batches commit in order,
    // each with the position after it, so a resumed import starts after the last one committed.
    let committing:
      | {
          readonly fiber: Fiber.RuntimeFiber<{ problemsAdded: number; itemsAdded: number }, StoreError>
          readonly position: ImportProgress
          readonly problems: number
          readonly bytes: number
        }
      | undefined
    const settle = Effect.gen(function* () {
      if (committing === undefined) return
      const { fiber, position, problems, bytes } = committing
      committing = undefined
      const added = yield* Fiber.join(fiber)
      progress = {
        ...position,
        problemsAdded: progress.problemsAdded + added.problemsAdded,
        itemsAdded: progress.itemsAdded + added.itemsAdded,
        duplicates: progress.duplicates + (problems - added.problemsAdded)
      }
      options.onProgress?.({
        file,
        rows: progress.rows,
        bytes,
        totalBytes: info.size,
        problemsAdded: progress.problemsAdded,
        rejected: progress.rejected
      })
    })
    for (;;) {
      // A file that cannot be read on: the batch before the failure is committed first.
      const next = yield* Effect.tryPromise({
        try: () => iterator.next(),
        catch: (e) => new ImportError({ file, message: (e as Error).message })
      }).pipe(Effect.tapError(() => (committing === undefined ? Effect.void : Fiber.await(committing.fiber))))
      if (next.done === true) break
      const batch = next.value
      const now = new Date(yield* Clock.currentTimeMillis).toISOString()
      const problems: Array<Problem> = []
      const items: Array<Item> = []
      const rejects: Array<ImportReject> = []
      for (const row of batch.rows) {
        if (row.error !== undefined) {
          rejects.push({ file, line: row.line, reason: row.error, raw: row.raw })
          continue
        }
        const mapped = mapRowWithLayout(
          layout,
          row.value,
          row.line,
          { map: options.map ?? {}, domain: options.domain, file: fileName, long: options.long },
          now,
          options.layout === undefined
        )
        if (Either.isLeft(mapped)) {
          rejects.push(rejectOf(file, row.line, mapped.left, row.value))
          continue
        }
        problems.push(mapped.right.problem)
        items.push(...mapped.right.items)
      }
      yield* settle
      const position: ImportProgress = {
        ...progress,
        rows: batch.next.rows,
        line: batch.next.line,
        offset: batch.next.offset,
        rejected: progress.rejected + rejects.length,
        done: false
      }
      committing = {
        fiber: yield* Effect.fork(store.commitImportBatch({ progress: position, problems, items, rejects })),
        position,
        problems: problems.length,
        bytes: batch.bytes
      }
    }
    yield* settle
    progress = { ...progress, done: true }
    yield* store.commitImportBatch({ progress, problems: [], items: [], rejects: [] })
    // Another worker importing the same file at once has added to the file's counts as well.
    const stored = Option.getOrElse(yield* store.importProgress(key), () => progress)
    const report = yield* writeRejects(stored, shareBetween(start, progress))
    return { ...report, alreadyImported: false, resumed: start.rows > 0 } satisfies ImportReport
  })

/** The first row of a file that parses, or undefined when it has none. */
const firstRow = (format: InputFormat, file: string): Effect.Effect<unknown, ImportError> =>
  Effect.tryPromise({
    try: async () => {
      const rows = readRows(format, file, START, 20)
      try {
        for await (const batch of rows) {
          for (const row of batch.rows) if (row.error === undefined) return row.value
        }
        return undefined
      } finally {
        await rows.return(undefined)
      }
    },
    catch: (e) => new ImportError({ file, message: (e as Error).message })
  })

/** The layout to read a file with: the one asked for, else the one its first row has; an ambiguous file asks for `--layout`. */
const chooseLayout = (
  file: string,
  format: InputFormat,
  asked: LayoutName | undefined
): Effect.Effect<DatasetLayout, ImportError> =>
  asked !== undefined
    ? Effect.succeed(datasetLayout(asked))
    : Effect.flatMap(firstRow(format, file), (row) => {
        const detected = detectLayout(row)
        return Either.isRight(detected)
          ? Effect.succeed(detected.right)
          : Effect.fail(
              new ImportError({
                file,
                message: `its rows fit several layouts (${detected.left.candidates.join(", ")}); say which with --layout`
              })
            )
      })

export interface DryRunReport {
  readonly file: string
  readonly format: InputFormat
  readonly layout: LayoutName
  /** How the layout reads a row: field to what it becomes. */
  readonly fields: Readonly<Record<string, string>>
  readonly rows: number
  /** Distinct problems the file would add (before those the workspace already has). */
  readonly problems: number
  readonly traces: number
  readonly longTraces: number
  readonly cutOffTraces: number
  readonly rejected: number
  readonly rejects: ReadonlyArray<ImportReject>
  /** The first rows as they would be stored. */
  readonly preview: ReadonlyArray<{
    readonly line: number
    readonly problem: Problem
    readonly items: ReadonlyArray<Item>
  }>
}

/**
 * What `importFile` would do, without writing anything: the layout it detects (or is told), its
 * field mapping, the problems and traces the file would create, its rejects, and the first rows as
 * they would be stored.
 */
export const dryRunImport = (
  file: string,
  options: ImportOptions & { readonly previewRows?: number | undefined } = {}
): Effect.Effect<DryRunReport, ImportError> =>
  Effect.gen(function* () {
    const format = options.format ?? formatFromPath(file)
    if (format === undefined)
      return yield* new ImportError({
        file,
        message: "cannot tell the format from the file name; pass --format jsonl|json|csv|parquet"
      })
    yield* Effect.tryPromise({
      try: () => access(file),
      catch: (e) =>
        new ImportError({
          file,
          message: `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`
        })
    })
    const layout = yield* chooseLayout(file, format, options.layout)
    const problems = new Set<string>()
    const counts = { rows: 0, traces: 0, longTraces: 0, cutOffTraces: 0 }
    const rejects: Array<ImportReject> = []
    const preview: Array<DryRunReport["preview"][number]> = []
    const now = new Date(yield* Clock.currentTimeMillis).toISOString()
    const iterator = readRows(format, file, START, options.batchSize ?? 2000)
    for (;;) {
      const next = yield* Effect.tryPromise({
        try: () => iterator.next(),
        catch: (e) => new ImportError({ file, message: (e as Error).message })
      })
      if (next.done === true) break
      for (const row of next.value.rows) {
        counts.rows++
        if (row.error !== undefined) {
          rejects.push({ file, line: row.line, reason: row.error, raw: row.raw })
          continue
        }
        const mapped = mapRowWithLayout(
          layout,
          row.value,
          row.line,
          { map: options.map ?? {}, domain: options.domain, file: basename(file), long: options.long },
          now,
          options.layout === undefined
        )
        if (Either.isLeft(mapped)) {
          rejects.push(rejectOf(file, row.line, mapped.left, row.value))
          continue
        }
        problems.add(mapped.right.problem.id)
        counts.traces += mapped.right.items.length
        counts.longTraces += mapped.right.items.filter((i) => i.trace?.long === true).length
        counts.cutOffTraces += mapped.right.items.filter((i) => i.trace?.cutOff === true).length
        if (preview.length < (options.previewRows ?? 3))
          preview.push({ line: row.line, problem: mapped.right.problem, items: mapped.right.items })
      }
    }
    return {
      file,
      format,
      layout: layout.name,
      fields: layout.fields,
      ...counts,
      problems: problems.size,
      rejected: rejects.length,
      rejects: rejects.slice(0, 100),
      preview
    }
  })
