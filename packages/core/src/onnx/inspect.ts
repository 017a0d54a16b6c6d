import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import { loadOrt } from "./ort.js"
import { openDecoder } from "./localModel.js"
import { estimateParameters, type ModelFolderError, readModelFolder } from "./modelFolder.js"

export interface VariantReport {
  readonly name: string
  readonly file: string
  readonly bytes: number
  readonly externalData: ReadonlyArray<string>
  /** The weight type the file name stands for (onnx-community's suffixes). */
  readonly weights: string
  /** Whether the runtime can drive this graph, and why not; absent when graphs were not read. */
  readonly graph?: {
    readonly runnable: boolean
    readonly message: string
    readonly layers?: number
    readonly kvType?: string
    /** 4-bit products whose arithmetic the file leaves unset, which fastcot runs on integer kernels. */
    readonly int8Products?: number
    /** Float16 tensors fastcot computes in float32 (see `F16Compute`). */
    readonly f16Widened?: number
    /** Rotary embeddings fastcot runs as one node each (see `findRotary`). */
    readonly rotaryFused?: number
    /** Written for the runtime by `fastcot models convert` (loaded with no rewrite). */
    readonly prepared?: boolean
    /** onnxruntime's fused operators in the graph as it runs ("MatMulNBits ×97, …"). */
    readonly operators?: string
  }
}

export interface ModelReport {
  readonly dir: string
  readonly architecture: string
  readonly modelType: string
  readonly parameters: number | null
  readonly contextLength: number | null
  readonly hiddenSize: number
  readonly layers: number
  readonly heads: number
  readonly kvHeads: number
  readonly headDim: number
  readonly vocabSize: number
  readonly torchDtype: string | null
  readonly chatTemplate: boolean
  readonly eosTokenIds: ReadonlyArray<number>
  readonly variants: ReadonlyArray<VariantReport>
  readonly missing: ReadonlyArray<string>
  readonly notes: ReadonlyArray<string>
  /** Where the folder came from, when fastcot converted it (`fastcot.json`): "converted by fastcot from …". */
  readonly origin: string | null
}

/** What `fastcot models convert` records in `fastcot.json`. */
const ConversionRecord = Schema.parseJson(
  Schema.Struct({ convertedBy: Schema.String, source: Schema.String, sourceSha256: Schema.String })
)

const originOf = (dir: string): string | null => {
  const file = path.join(dir, "fastcot.json")
  if (!fs.existsSync(file)) return null
  const record = Schema.decodeUnknownOption(ConversionRecord)(fs.readFileSync(file, "utf8"))
  return Option.isSome(record)
    ? `converted by fastcot from ${record.value.source} (weights sha256 ${record.value.sourceSha256.slice(0, 12)}…)`
    : `${file} is not a conversion record fastcot can read`
}

const WEIGHTS: Record<string, string> = {
  fp32: "float32",
  fp16: "float16",
  int8: "int8, dynamic activations",
  uint8: "uint8, dynamic activations",
  quantized: "8-bit, dynamic activations",
  q8: "8-bit, dynamic activations",
  q4: "4-bit blocks (MatMulNBits)",
  q4f16: "4-bit blocks, float16 scales and activations",
  bnb4: "4-bit NF4/FP4 (bitsandbytes style)"
}

const TESTED = new Set(["qwen2"])

/** What a model folder holds and whether fastcot can run it; `graphs` also opens each ONNX file. */
export const inspectModel = (
  dir: string,
  options: { readonly graphs?: boolean } = {}
): Effect.Effect<ModelReport, ModelFolderError> =>
  Effect.gen(function* () {
    const folder = yield* readModelFolder(dir)
    const c = folder.config
    const notes: Array<string> = []
    if (!TESTED.has(c.model_type))
      notes.push(
        `model_type "${c.model_type}": fastcot drives any decoder with the Optimum KV-cache signature, but only Qwen2 is tested`
      )
    const variants: Array<VariantReport> = []
    for (const v of folder.variants) {
      const base = {
        name: v.name,
        file: v.file,
        bytes: v.bytes,
        externalData: v.externalData,
        weights: WEIGHTS[v.name] ?? "unknown"
      }
      if (options.graphs !== true) {
        variants.push(base)
        continue
      }
      // Opened exactly as generation opens it (the rewritten graph), without optimising it.
      const rt = yield* Effect.promise(loadOrt)
      const graph: NonNullable<VariantReport["graph"]> = yield* openDecoder(
        rt,
        v.file,
        { graphOptimizationLevel: "disabled", logSeverityLevel: 3 },
        true,
        {
          rotaryPositions: c.max_position_embeddings ?? 32768
        }
      ).pipe(
        Effect.flatMap(({ session, signature, int8Products, f16Widened, rotaryFused, operators }) =>
          Effect.promise(() => session.release()).pipe(
            Effect.as({
              runnable: true,
              message: "runnable",
              layers: signature.layers,
              kvType: signature.kvType,
              int8Products,
              f16Widened,
              rotaryFused,
              prepared: signature.prepared,
              operators
            })
          )
        ),
        Effect.catchAll((e) =>
          Effect.succeed({
            runnable: false,
            message:
              e.reason === "unsupported-graph" ? (e.detail ?? e.message) : `cannot load: ${e.detail ?? e.message}`
          })
        )
      )
      if (graph.runnable && graph.layers !== c.num_hidden_layers)
        notes.push(`${v.name}: the graph has ${graph.layers} KV layers but config.json says ${c.num_hidden_layers}`)
      variants.push({ ...base, graph })
    }
    const eos = folder.generation.eos_token_id ?? c.eos_token_id
    return {
      dir: folder.dir,
      architecture: c.architectures?.[0] ?? c.model_type,
      modelType: c.model_type,
      parameters: estimateParameters(c) ?? null,
      contextLength: c.max_position_embeddings ?? null,
      hiddenSize: c.hidden_size,
      layers: c.num_hidden_layers,
      heads: c.num_attention_heads,
      kvHeads: folder.numKvHeads,
      headDim: folder.headDim,
      vocabSize: c.vocab_size,
      torchDtype: c.torch_dtype ?? c.dtype ?? null,
      chatTemplate: folder.chatTemplate !== undefined,
      eosTokenIds: eos === undefined || eos === null ? [] : typeof eos === "number" ? [eos] : [...eos],
      variants,
      missing: folder.missing,
      notes,
      origin: originOf(folder.dir)
    }
  })
