import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { describeParseError } from "../schema/errors.js"
import { LocalModelErrorReason } from "./generation.js"
import { LocalModel, LocalModelError } from "./localModel.js"
import { type ModelFolderError, pickVariant, readModelFolder } from "./modelFolder.js"
import type { F16Compute, Q4Compute } from "./rewrite.js"
import { GREEDY } from "./sampler.js"

export interface ModelBenchOptions {
  /** Variants to time (default: every one the folder holds). */
  readonly variants?: ReadonlyArray<string> | undefined
  readonly promptTokens?: number | undefined
  readonly newTokens?: number | undefined
  /** Prompts decoded together for the batched line (0: none). */
  readonly batch?: number | undefined
  /** Timed rounds after one warm-up; the median is reported. */
  readonly rounds?: number | undefined
  readonly threads?: number | undefined
  /** For q4 variants: which arithmetic to time; `both` gives a row for each. */
  readonly q4Compute?: Q4Compute | "both" | undefined
  /** Pack the products that read one input (see `packProducts`); `both` gives a row for each. */
  readonly packProducts?: boolean | "both" | undefined
  /** For float16 variants (fp16, q4f16): which arithmetic to time; `both` gives float32 and as-exported rows. */
  readonly f16Compute?: F16Compute | "both" | undefined
  /** Rotary embeddings fused (default) or as exported; `both` gives a row for each. */
  readonly rotary?: "fused" | "as-exported" | "both" | undefined
  readonly onProgress?: ((line: string) => void) | undefined
  /**
   * Run each variant in a process of its own (a child of this one), so that its resident memory
   * is its own and one variant's allocations do not slow the next.
   */
  readonly isolate?: boolean | undefined
  /** Record the process's resident memory in each row (what an isolated child does). */
  readonly measureResident?: boolean | undefined
}

/** One variant's speed on this machine, as generation runs it (a Schema: it crosses processes). */
export const ModelBenchRow = Schema.Struct({
  variant: Schema.String,
  /** The 4-bit arithmetic asked for (q4 variants). */
  q4Compute: Schema.optional(Schema.Literal("int8", "as-exported")),
  /** 4-bit products switched to integer kernels at load (see `useInt8Activations`). */
  int8Products: Schema.Number,
  /** Products packed into others at load (see `packProducts`); absent in rows from before it. */
  packedProducts: Schema.optional(Schema.Number),
  /** Float16 tensors computed in float32 (see `F16Compute`); absent when none was. */
  f16Widened: Schema.optional(Schema.Number),
  /** Rotary embeddings run as one node each (see `findRotary`); absent in rows from before it. */
  rotaryFused: Schema.optional(Schema.Number),
  /** Present when the row was asked to keep the file's rotary nodes. */
  rotary: Schema.optional(Schema.Literal("as-exported")),
  threads: Schema.Number,
  loadSeconds: Schema.Number,
  /** The process's resident memory after the runs, when the variant ran in a process of its own. */
  residentMiB: Schema.optional(Schema.Number),
  promptTokens: Schema.Number,
  newTokens: Schema.Number,
  ttftMs: Schema.Number,
  prefillTokensPerSecond: Schema.Number,
  decodeTokensPerSecond: Schema.Number,
  /** Every row's new tokens over the batch's decode time; absent when no batch was asked for. */
  batchTokensPerSecond: Schema.optional(Schema.Number)
})
export type ModelBenchRow = typeof ModelBenchRow.Type

/** What a bench child process prints: its rows, or why it failed. */
const ChildReply = Schema.parseJson(
  Schema.Union(
    Schema.Struct({ rows: Schema.Array(ModelBenchRow) }),
    Schema.Struct({ error: Schema.Struct({ reason: LocalModelErrorReason, message: Schema.String }) })
  )
)

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/**
 * Times each variant of a model folder the way generation runs it: load, time to first token,
 * prefill and decode speed (greedy, a fixed number of new tokens), and optionally a batch of
 * prompts decoded together. Prompts are fixed pseudo-random token ids, so runs compare.
 */
export const benchModel = (
  dir: string,
  options: ModelBenchOptions = {}
): Effect.Effect<Array<ModelBenchRow>, ModelFolderError | LocalModelError> =>
  Effect.gen(function* () {
    const folder = yield* readModelFolder(dir)
    const names = options.variants ?? folder.variants.map((v) => v.name)
    // Every variant asked for is checked before any is timed: a typo fails at once, not after minutes.
    for (const name of names) {
      const picked = pickVariant(folder, name)
      if (Either.isLeft(picked)) return yield* new LocalModelError({ reason: "load", message: picked.left })
    }
    const promptTokens = Math.max(1, options.promptTokens ?? 128)
    const newTokens = Math.max(2, options.newTokens ?? 32)
    const rounds = Math.max(1, options.rounds ?? 3)
    const batch = Math.max(0, options.batch ?? 4)
    const vocab = folder.config.vocab_size
    // Ids away from the special tokens at the top of the vocabulary.
    const ids = (offset: number) =>
      Array.from({ length: promptTokens }, (_, i) => (((i + offset) * 7919) % Math.max(1, vocab - 512)) + 1)
    const rows: Array<ModelBenchRow> = []
    for (const variant of names) {
      const computes: ReadonlyArray<Q4Compute | undefined> =
        variant.startsWith("q4") && options.q4Compute === "both"
          ? ["int8", "as-exported"]
          : [options.q4Compute === "both" ? undefined : options.q4Compute]
      const packs: ReadonlyArray<boolean> =
        options.packProducts === "both" ? [false, true] : [options.packProducts === true]
      // Float16 files by their onnx-community names (fp16, q4f16, …).
      const half = /16$/.test(variant)
      const halfs: ReadonlyArray<F16Compute | undefined> =
        half && options.f16Compute === "both"
          ? ["float32", "as-exported"]
          : [options.f16Compute === "both" ? undefined : options.f16Compute]
      const rotaries: ReadonlyArray<"fused" | "as-exported"> =
        options.rotary === "both" ? ["fused", "as-exported"] : [options.rotary ?? "fused"]
      const plans = computes.flatMap((c) =>
        packs.flatMap((p) => halfs.flatMap((h) => rotaries.map((r) => [c, p, h, r] as const)))
      )
      for (const [q4Compute, packProducts, f16Compute, rotary] of plans) {
        const label =
          `${variant}${q4Compute !== undefined && variant.startsWith("q4") ? ` (${q4Compute})` : ""}${packProducts ? " (packed)" : ""}` +
          `${f16Compute !== undefined && half ? ` (f16 ${f16Compute})` : ""}${rotary === "as-exported" ? " (rotary as exported)" : ""}`
        if (options.isolate === true) {
          rows.push(
            ...(yield* inChild(
              dir,
              {
                ...options,
                variants: [variant],
                q4Compute,
                packProducts,
                f16Compute,
                rotary,
                isolate: false,
                measureResident: true
              },
              options.onProgress
            ))
          )
          continue
        }
        options.onProgress?.(`${label}: loading`)
        const t0 = performance.now()
        const model = yield* LocalModel.load(dir, {
          variant,
          threads: options.threads,
          q4Compute,
          packProducts,
          f16Compute,
          fuseRotary: rotary === "fused"
        })
        const measure = async (): Promise<ModelBenchRow> => {
          const loadSeconds = (performance.now() - t0) / 1000
          const once = async () => {
            const [r] = await model.generate([
              { promptIds: ids(0), maxNewTokens: newTokens, minNewTokens: newTokens, sampling: GREEDY }
            ])
            return {
              ttft: r!.firstTokenMs,
              decode: ((r!.completionTokens - 1) * 1000) / (r!.totalMs - r!.firstTokenMs)
            }
          }
          await once()
          const timed: Array<{ ttft: number; decode: number }> = []
          for (let i = 0; i < rounds; i++) {
            options.onProgress?.(`${label}: round ${i + 1} of ${rounds}`)
            timed.push(await once())
          }
          let batchTokensPerSecond: number | undefined
          if (batch > 0) {
            options.onProgress?.(`${label}: ${batch} prompts together`)
            const results = await model.generate(
              Array.from({ length: batch }, (_, k) => ({
                promptIds: ids(k + 1),
                maxNewTokens: newTokens,
                minNewTokens: newTokens,
                sampling: GREEDY
              }))
            )
            const decodeMs =
              Math.max(...results.map((r) => r.totalMs)) - Math.max(...results.map((r) => r.firstTokenMs))
            batchTokensPerSecond = (results.reduce((n, r) => n + r.completionTokens - 1, 0) * 1000) / decodeMs
          }
          const ttftMs = median(timed.map((x) => x.ttft))
          return {
            variant,
            q4Compute: variant.startsWith("q4") ? (q4Compute ?? "int8") : undefined,
            int8Products: model.int8Products,
            packedProducts: model.packedProducts,
            f16Widened: model.f16Widened > 0 ? model.f16Widened : undefined,
            rotaryFused: model.rotaryFused,
            rotary: rotary === "as-exported" ? rotary : undefined,
            threads: model.threads,
            loadSeconds,
            promptTokens,
            newTokens,
            ttftMs,
            residentMiB: options.measureResident === true ? process.memoryUsage().rss / 2 ** 20 : undefined,
            prefillTokensPerSecond: (promptTokens * 1000) / ttftMs,
            decodeTokensPerSecond: median(timed.map((x) => x.decode)),
            batchTokensPerSecond
          }
        }
        const row = yield* Effect.tryPromise({
          try: measure,
          catch: (e) =>
            e instanceof LocalModelError
              ? e
              : new LocalModelError({ reason: "runtime", message: e instanceof Error ? e.message : String(e) })
        }).pipe(Effect.ensuring(Effect.promise(() => model.release())))
        rows.push(row)
      }
    }
    return rows
  })

/** Runs `benchModel` for one variant in a child process (see `modelBenchChild`). */
const inChild = (
  dir: string,
  options: Omit<ModelBenchOptions, "onProgress">,
  onProgress: ModelBenchOptions["onProgress"]
): Effect.Effect<ReadonlyArray<ModelBenchRow>, LocalModelError> =>
  Effect.async<ReadonlyArray<ModelBenchRow>, LocalModelError>((resume) => {
    const script = fileURLToPath(new URL("./modelBenchChild.js", import.meta.url))
    const child = spawn(process.execPath, [script, JSON.stringify({ dir, options })], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")))
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString("utf8")
      const lines = err.split("\n")
      err = lines.pop() ?? ""
      for (const line of lines) onProgress?.(line)
    })
    child.on("error", (e) =>
      resume(
        Effect.fail(
          new LocalModelError({ reason: "runtime", message: `the bench process did not start: ${e.message}` })
        )
      )
    )
    child.on("close", (code, signal) => {
      const reply = Schema.decodeUnknownEither(ChildReply)(out)
      if (Either.isLeft(reply)) {
        const why =
          signal !== null
            ? `was killed (${signal})`
            : `exited ${code} with ${out === "" ? "no reply" : `a reply that is not one (${describeParseError(reply.left)})`}`
        return resume(
          Effect.fail(
            new LocalModelError({
              reason: "runtime",
              message: `the bench process for ${options.variants?.join(", ")} ${why}${err !== "" ? `: ${err}` : ""}`
            })
          )
        )
      }
      const r = reply.right
      resume("rows" in r ? Effect.succeed(r.rows) : Effect.fail(new LocalModelError(r.error)))
    })
    return Effect.sync(() => child.kill("SIGTERM"))
  })
