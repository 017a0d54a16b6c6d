import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import type * as ort from "onnxruntime-node"
import { ChatTokenizer } from "./chatTokenizer.js"
import {
  type ModelFolder,
  type ModelFolderError,
  pickVariant,
  readModelFolder,
  type ModelVariant
} from "./modelFolder.js"
import { loadOrt, type OrtModule } from "./ort.js"
import { findRotary, fuseRotary, readRotaryTable, type RotaryPlan, type RotaryTable } from "./rotary.js"
import { DecodeBatch } from "./decodeBatch.js"
import { type GenerateRequest, type GenerateResult, type GraphSignature, LocalModelError } from "./generation.js"
import {
  computeInFloat32,
  type F16Compute,
  float16Bytes,
  widenFits,
  type GraphIo,
  graphIo,
  packProducts,
  LAST_LOGITS,
  newOutput,
  pastInput,
  type Q4Compute,
  readGraph,
  rewriteDecoder,
  useInt8Activations
} from "./rewrite.js"

export interface LoadOptions {
  /** `fp32`, `q4`, `int8`, … (the file suffix); default: fp32 when present. */
  readonly variant?: string | undefined
  /** Intra-op threads (default: the machine's cores). */
  readonly threads?: number | undefined
  /**
   * `rewritten` (default): the graph generation runs on (see `rewriteDecoder`);
   * `as-exported`: the file's graph unchanged, for `run` in tools and tests (it cannot `generate`).
   */
  readonly graph?: "rewritten" | "as-exported" | undefined
  /**
   * 4-bit products: `int8` (default) computes them on integer kernels, `as-exported` as the file
   * says (see `Q4Compute`). Applies to the rewritten graph.
   */
  readonly q4Compute?: Q4Compute | undefined
  /**
   * Pack products that read the same input into one (see `packProducts`; default false: its gain
   * is small and uncertain for more memory and a longer load; docs/benchmarks.md has the
   * figures). Applies to the rewritten graph.
   */
  readonly packProducts?: boolean | undefined
  /**
   * Float16 files: `auto` (default) computes them in float32 when that fits the machine's memory,
   * `float32` always, `as-exported` in float16 (see `F16Compute`). Applies to the rewritten graph.
   */
  readonly f16Compute?: F16Compute | undefined
  /**
   * Run each rotary embedding the export writes out in nodes as one `RotaryEmbedding` node (see
   * `findRotary`; default true: the same values to float rounding, 240 fewer nodes per decode
   * step on Qwen2.5-0.5B's shapes). False keeps the export's nodes, for comparisons. Applies to
   * the rewritten graph.
   */
  readonly fuseRotary?: boolean | undefined
  /**
   * Prompts longer than this many tokens prefill in chunks of it, each over the cache the ones
   * before wrote, so that one chunk's attention scores are held at a time (default
   * `PREFILL_CHUNK`, 512).
   */
  readonly prefillChunk?: number | undefined
}

export {
  type GenerateRequest,
  type GenerateResult,
  type GraphSignature,
  type LocalFinish,
  LocalModelError
} from "./generation.js"

/** Checks that a session looks like a decoder-only LM with a KV cache; says what it cannot run. */
export const readSignature = (session: GraphIo): Either.Either<GraphSignature, string> => {
  const inputs = session.inputNames
  const outputs = session.outputNames
  if (inputs.includes(pastInput(0, "key"))) return readPreparedSignature(session)
  const problems: Array<string> = []
  if (!inputs.includes("input_ids")) problems.push("no `input_ids` input")
  if (!inputs.includes("attention_mask")) problems.push("no `attention_mask` input")
  if (!outputs.includes("logits")) problems.push("no `logits` output")
  const pastKeys = inputs.filter((n) => /^past_key_values\.\d+\.key$/.test(n))
  const layers = pastKeys.length
  if (layers === 0)
    problems.push(
      "no `past_key_values.N.key/value` inputs (an export without a KV cache; re-export with `--task text-generation-with-past`)"
    )
  for (let l = 0; l < layers; l++) {
    for (const kind of ["key", "value"]) {
      if (!inputs.includes(`past_key_values.${l}.${kind}`)) problems.push(`missing input past_key_values.${l}.${kind}`)
      if (!outputs.includes(`present.${l}.${kind}`)) problems.push(`missing output present.${l}.${kind}`)
    }
  }
  const known = new Set([
    "input_ids",
    "attention_mask",
    "position_ids",
    "use_cache_branch",
    ...pastKeys,
    ...pastKeys.map((k) => k.replace(/key$/, "value"))
  ])
  const unknown = inputs.filter((n) => !known.has(n))
  if (unknown.length > 0)
    problems.push(
      `inputs this runtime does not feed: ${unknown.join(", ")} (multimodal and encoder-decoder models are not supported)`
    )
  if (problems.length > 0) return Either.left(problems.join("; "))
  const typeOf = (meta: GraphIo["inputMetadata"], name: string): string => {
    const m = meta.find((x) => x.name === name)
    return m !== undefined && m.isTensor ? (m.type ?? "float32") : "float32"
  }
  const kv = typeOf(session.inputMetadata, "past_key_values.0.key")
  const lg = typeOf(session.outputMetadata, "logits")
  if ((kv !== "float32" && kv !== "float16") || (lg !== "float32" && lg !== "float16"))
    return Either.left(`unsupported tensor types (KV ${kv}, logits ${lg})`)
  return Either.right({
    layers,
    prepared: false,
    hasPositionIds: inputs.includes("position_ids"),
    hasCacheBranch: inputs.includes("use_cache_branch"),
    kvType: kv,
    logitsType: lg,
    inputs: [...inputs],
    outputs: [...outputs]
  })
}

/** The signature of a graph already in the form generation runs (see `GraphSignature.prepared`). */
const readPreparedSignature = (session: GraphIo): Either.Either<GraphSignature, string> => {
  const { inputNames: inputs, outputNames: outputs } = session
  const layers = inputs.filter((n) => /^fastcot\.past\.\d+\.key$/.test(n)).length
  const needed: Array<readonly ["input" | "output", string, ReadonlyArray<string>]> = [
    ...["input_ids", "attention_mask", "position_ids"].map((n) => ["input", n, inputs] as const),
    ["output", LAST_LOGITS, outputs]
  ]
  for (let l = 0; l < layers; l++)
    for (const kind of ["key", "value"] as const)
      needed.push(["input", pastInput(l, kind), inputs], ["output", newOutput(l, kind), outputs])
  const problems = needed.filter(([, n, list]) => !list.includes(n)).map(([what, n]) => `missing ${what} ${n}`)
  if (problems.length > 0) return Either.left(problems.join("; "))
  const typeOf = (meta: GraphIo["inputMetadata"], name: string) => meta.find((x) => x.name === name)?.type
  const kv = typeOf(session.inputMetadata, pastInput(0, "key"))
  const lg = typeOf(session.outputMetadata, LAST_LOGITS)
  if (kv !== "float32" || lg !== "float32") return Either.left(`unsupported tensor types (KV ${kv}, logits ${lg})`)
  return Either.right({
    layers,
    prepared: true,
    hasPositionIds: true,
    hasCacheBranch: false,
    kvType: kv,
    logitsType: lg,
    inputs: [...inputs],
    outputs: [...outputs]
  })
}

/**
 * How many nodes of each of onnxruntime's fused operators (its `com.microsoft` domain, and
 * `SimplifiedLayerNormalization`) a graph holds, as "MatMulNBits ×97, …", most first.
 */
export const fusedOperators = (
  nodes: ReadonlyArray<{ readonly opType?: string | null; readonly domain?: string | null }>
): string => {
  const counts = new Map<string, number>()
  for (const n of nodes)
    if (n.domain === "com.microsoft" || n.opType === "SimplifiedLayerNormalization")
      counts.set(n.opType ?? "?", (counts.get(n.opType ?? "?") ?? 0) + 1)
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([op, n]) => `${op} ×${n}`)
    .join(", ")
}

/**
 * Settings of every decoder session. `x64quantprecision`: on x86 CPUs without VNNI (AVX2, and
 * AVX-512 without VNNI), onnxruntime's uint8 × int8 kernels add pairs of products in 16 bits and
 * saturate once weights reach past ±64; with this setting onnxruntime turns the int8 weights of a
 * product that reach outside [-64, 63] into uint8 ones at load, on such CPUs only, and the
 * product is exact there too (measured on an AVX2 CPU: a 896 × 4864 product about 1.3x slower
 * than the saturating one). Files quantized elsewhere need it; fastcot writes its int8 weights
 * within ±63 (`INT8_WEIGHT_LIMIT`), which every CPU runs on the fast kernels as they are.
 */
const SESSION_CONFIG = { x64quantprecision: "1" } as const

/** What `openDecoder` reports of a graph it loads without edits. */
const UNEDITED = { int8Products: 0, packedProducts: 0, f16Widened: 0, rotaryFused: 0 } as const

/**
 * Opens a session over one weight file and checks its signature: on the rewritten graph that
 * generation runs (see `rewriteDecoder`; the signature is read from the file, the session made
 * from the new bytes, and weights still read from the file's folder), or on the file's own graph.
 * `int8Products` counts the 4-bit products switched to integer arithmetic (see `Q4Compute`),
 * `packedProducts` the products packed into others (see `packProducts`), `rotaryFused` the rotary
 * embeddings run as one node each (see `findRotary`).
 */
export const openDecoder = (
  rt: OrtModule,
  file: string,
  sessionOptions: ort.InferenceSession.SessionOptions,
  rewritten: boolean,
  edits: {
    readonly q4Compute?: Q4Compute | undefined
    readonly packProducts?: boolean | undefined
    readonly f16Compute?: F16Compute | undefined
    /** Fuse rotary embeddings over tables of this many positions (the model's context); off when unset. */
    readonly rotaryPositions?: number | undefined
  } = {}
): Effect.Effect<
  {
    readonly session: ort.InferenceSession
    readonly signature: GraphSignature
    readonly int8Products: number
    readonly packedProducts: number
    readonly f16Widened: number
    readonly rotaryFused: number
    /** onnxruntime's fused operators in the graph the session runs (see `fusedOperators`). */
    readonly operators: string
  },
  LocalModelError
> =>
  Effect.gen(function* () {
    const withConfig = (session: Record<string, string> = {}): ort.InferenceSession.SessionOptions => ({
      ...sessionOptions,
      extra: { session: { ...SESSION_CONFIG, ...session } }
    })
    const failed = (e: unknown) => {
      const detail = e instanceof Error ? e.message.split("\n")[0]! : String(e)
      return new LocalModelError({ reason: "load", message: `${file}: ${detail}`, detail })
    }
    const unsupported = (why: string) =>
      new LocalModelError({
        reason: "unsupported-graph",
        message: `${file}: cannot run this graph: ${why}`,
        detail: why
      })
    if (!rewritten) {
      const session = yield* Effect.tryPromise({
        try: () => rt.InferenceSession.create(file, withConfig()),
        catch: failed
      })
      const sig = readSignature(session)
      if (Either.isLeft(sig)) {
        yield* Effect.promise(() => session.release())
        return yield* unsupported(sig.left)
      }
      return { session, signature: sig.right, ...UNEDITED, operators: "" }
    }
    const fileBytes = yield* Effect.try({ try: () => fs.readFileSync(file), catch: failed })
    // A truncated download or a file that is not ONNX fails here, deep in protobuf: say what it means.
    const graph = yield* Effect.try({
      try: () => readGraph(fileBytes),
      catch: (e) =>
        failed(
          new Error(`not a readable ONNX model (truncated or corrupt?): ${e instanceof Error ? e.message : String(e)}`)
        )
    })
    const sig = readSignature(graph.io)
    if (Either.isLeft(sig)) return yield* unsupported(sig.left)
    if (sig.right.prepared) {
      // Written for the runtime (by `fastcot models convert`): loaded as it is.
      const session = yield* Effect.tryPromise({
        try: () => rt.InferenceSession.create(file, withConfig()),
        catch: failed
      })
      return { session, signature: sig.right, ...UNEDITED, operators: fusedOperators(graph.proto.graph?.node ?? []) }
    }
    const { f16Widened, int8Products, packedProducts } = yield* Effect.try({
      try: () => {
        // First: float16 scales widened to float32 can then take the integer kernels too.
        const f16 = edits.f16Compute ?? "auto"
        const widen = f16 === "float32" || (f16 === "auto" && widenFits(float16Bytes(graph.proto), os.totalmem()))
        return {
          f16Widened: widen ? computeInFloat32(graph.proto) : 0,
          int8Products: (edits.q4Compute ?? "int8") === "int8" ? useInt8Activations(graph.proto) : 0,
          packedProducts: edits.packProducts === true ? packProducts(graph.proto) : 0
        }
      },
      catch: (e) => unsupported(`the graph edits at load failed: ${e instanceof Error ? e.message : String(e)}`)
    })
    // Rotary embeddings as one node each, over tables the export's own nodes compute (after the
    // widening: float16 tables are left alone). Any problem leaves the graph as it was.
    const rotary = edits.rotaryPositions === undefined ? undefined : findRotary(graph.proto)
    const tables =
      rotary === undefined ? undefined : yield* rotaryTables(rt, rotary, edits.rotaryPositions!, path.dirname(file))
    const rotaryFused = yield* Effect.try({
      try: () => (rotary !== undefined && tables !== undefined ? fuseRotary(graph.proto, rotary, tables) : 0),
      catch: (e) => unsupported(`the rotary fusion failed: ${e instanceof Error ? e.message : String(e)}`)
    })
    // The signature as the session runs it (float16 inputs and outputs may now be float32).
    const runSig = f16Widened > 0 ? readSignature(graphIo(graph.proto)) : sig
    if (Either.isLeft(runSig)) return yield* unsupported(runSig.left)
    const bytes = yield* Effect.try({
      try: () => rewriteDecoder(graph.proto, sig.right.layers, { bytes: fileBytes, location: path.basename(file) }),
      catch: (e) => unsupported(`the decoder rewrite failed: ${e instanceof Error ? e.message : String(e)}`)
    })
    const session = yield* Effect.tryPromise({
      try: () =>
        rt.InferenceSession.create(
          bytes,
          withConfig({ model_external_initializers_file_folder_path: path.dirname(file) })
        ),
      catch: failed
    })
    return {
      session,
      signature: runSig.right,
      int8Products,
      packedProducts,
      f16Widened,
      rotaryFused,
      operators: fusedOperators(graph.proto.graph?.node ?? [])
    }
  })

/**
 * Runs the export's own table nodes (see `findRotary`) over positions 0..n-1 and reads each cos
 * and sin pair; undefined when they do not run, or give tables that `RotaryEmbedding` cannot take.
 */
const rotaryTables = (
  rt: OrtModule,
  plan: RotaryPlan,
  positions: number,
  folder: string
): Effect.Effect<Array<RotaryTable> | undefined> =>
  Effect.tryPromise(async () => {
    const session = await rt.InferenceSession.create(plan.tableModel, {
      executionProviders: ["cpu"],
      intraOpNumThreads: 1,
      logSeverityLevel: 4,
      extra: { session: { model_external_initializers_file_folder_path: folder } }
    })
    try {
      const ids = new BigInt64Array(positions)
      for (let p = 0; p < positions; p++) ids[p] = BigInt(p)
      const out = await session.run({ position_ids: new rt.Tensor("int64", ids, [1, positions]) })
      const tables = plan.pairs.map((p) => readRotaryTable(out[p.cos]!, out[p.sin]!, positions))
      return tables.every((t) => t !== undefined) ? (tables as Array<RotaryTable>) : undefined
    } finally {
      await session.release()
    }
  }).pipe(Effect.orElseSucceed(() => undefined))

/**
 * A loaded local model: an ONNX Runtime session over one weight file (its graph rewritten so
 * that a step moves one cache position per layer and one row of logits across the JavaScript
 * boundary, see `rewriteDecoder`), the tokenizer and chat template, and the KV-cache generation
 * loop (`DecodeBatch`).
 */
export class LocalModel {
  private constructor(
    readonly folder: ModelFolder,
    readonly variant: ModelVariant,
    readonly session: ort.InferenceSession,
    readonly signature: GraphSignature,
    readonly tokenizer: ChatTokenizer,
    readonly threads: number,
    /** The ONNX Runtime module the session came from (loaded on first use). */
    readonly ort: OrtModule,
    /** Whether the session runs the rewritten graph (`generate` needs it) or the file's own. */
    readonly rewritten: boolean,
    /** 4-bit products this session computes on integer kernels though the file leaves it unset. */
    readonly int8Products: number,
    /** Products packed into others that read the same input (see `packProducts`). */
    readonly packedProducts: number,
    /** Float16 tensors of the file this session computes in float32 (see `F16Compute`). */
    readonly f16Widened: number,
    /** Rotary embeddings this session runs as one node each (see `findRotary`). */
    readonly rotaryFused: number,
    /** Prompts longer than this prefill in chunks (see `LoadOptions.prefillChunk`). */
    readonly prefillChunk: number | undefined = undefined
  ) {}

  get id(): string {
    return `${this.folder.dir}#${this.variant.name}`
  }
  get vocabSize(): number {
    return this.folder.config.vocab_size
  }
  get contextLength(): number {
    return this.folder.config.max_position_embeddings ?? 32768
  }

  static load(dir: string, options: LoadOptions = {}): Effect.Effect<LocalModel, ModelFolderError | LocalModelError> {
    return Effect.gen(function* () {
      const folder = yield* readModelFolder(dir)
      const variant = pickVariant(folder, options.variant)
      if (Either.isLeft(variant)) return yield* new LocalModelError({ reason: "load", message: variant.left })
      const threads = options.threads ?? Math.max(1, os.availableParallelism())
      const rt = yield* Effect.promise(loadOrt)
      const file = variant.right.file
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        executionProviders: ["cpu"],
        graphOptimizationLevel: "all",
        executionMode: "sequential",
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        enableCpuMemArena: true,
        logSeverityLevel: 3
      }
      const { session, signature, int8Products, packedProducts, f16Widened, rotaryFused } = yield* openDecoder(
        rt,
        file,
        sessionOptions,
        options.graph !== "as-exported",
        {
          q4Compute: options.q4Compute,
          packProducts: options.packProducts,
          f16Compute: options.f16Compute,
          rotaryPositions: options.fuseRotary === false ? undefined : (folder.config.max_position_embeddings ?? 32768)
        }
      )
      const tokenizer = yield* Effect.try({
        try: () => new ChatTokenizer(folder),
        catch: (e) =>
          new LocalModelError({
            reason: "load",
            message: `${folder.dir}/tokenizer.json: ${e instanceof Error ? e.message : String(e)}`
          })
      })
      return new LocalModel(
        folder,
        variant.right,
        session,
        signature,
        tokenizer,
        threads,
        rt,
        // A prepared graph is the file's own graph and the one generation runs.
        options.graph !== "as-exported" || signature.prepared,
        int8Products,
        packedProducts,
        f16Widened,
        rotaryFused,
        options.prefillChunk
      )
    })
  }

  /** Loads a model for the life of a scope, releasing the session when the scope closes. */
  static scoped(
    dir: string,
    options: LoadOptions = {}
  ): Effect.Effect<LocalModel, ModelFolderError | LocalModelError, Scope.Scope> {
    return Effect.acquireRelease(LocalModel.load(dir, options), (m) => Effect.promise(() => m.release()))
  }

  release(): Promise<void> {
    return this.session.release()
  }

  /** Empty caches for a batch: (batch, kv_heads, 0, head_dim). */
  emptyPast(batch: number): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {}
    const type = this.signature.kvType
    for (let l = 0; l < this.signature.layers; l++) {
      for (const kind of ["key", "value"]) {
        const data = type === "float16" ? new Uint16Array(0) : new Float32Array(0)
        feeds[`past_key_values.${l}.${kind}`] = new this.ort.Tensor(type, data, [
          batch,
          this.folder.numKvHeads,
          0,
          this.folder.headDim
        ])
      }
    }
    return feeds
  }

  /** One forward pass (tests and tools): ids, mask and positions given; returns every output. */
  run(
    feeds: Record<string, ort.Tensor>,
    fetches?: Record<string, ort.Tensor | null>
  ): Promise<ort.InferenceSession.ReturnType> {
    const all = { ...feeds }
    if (this.signature.hasCacheBranch) {
      // The past's length: axis 2, under the export's name or the rewritten graph's.
      const past = (this.rewritten ? feeds[pastInput(0, "key")] : feeds["past_key_values.0.key"])?.dims[2]
      all["use_cache_branch"] = new this.ort.Tensor(
        "bool",
        Uint8Array.from([past !== undefined && past > 0 ? 1 : 0]),
        [1]
      )
    }
    if (!this.signature.hasPositionIds) delete all["position_ids"]
    return fetches === undefined ? this.session.run(all) : this.session.run(all, fetches)
  }

  /**
   * Generates for a batch of prompts at once (left-padded, with attention masks and position ids
   * per row). Rows finish on an EOS id, a stop string, their token budget or their signal.
   * (The engine goes further: rows join and leave a running batch, see `LocalEngine`.)
   */
  async generate(requests: ReadonlyArray<GenerateRequest>): Promise<Array<GenerateResult>> {
    if (requests.length === 0) return []
    if (!this.rewritten)
      throw new LocalModelError({
        reason: "runtime",
        message: 'a model loaded with graph: "as-exported" can run but not generate'
      })
    const now = performance.now()
    const batch = await DecodeBatch.prefill(
      this,
      requests,
      requests.map(() => now)
    )
    while (batch.active > 0) await batch.step()
    return batch.rows.map((row) => row.result())
  }
}
