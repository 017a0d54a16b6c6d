import * as fs from "node:fs"
import { ensureDirSync } from "../util/dirs.js"
import * as path from "node:path"
import { DType, GraphBuilder, type ValueInfo } from "./graph.js"
import { float32ToHalf } from "./half.js"
import type { TensorEntry } from "./safetensors.js"
import { buildTinyTokenizer, CHATML_TEMPLATE, tokenizerConfig } from "./tinyTokenizer.js"
import { startWriterThread, type WriterThread } from "../util/writerThread.js"

/** The shape of a Qwen2-architecture model (Hugging Face config.json names in camelCase). */
export interface Qwen2Shape {
  readonly hiddenSize: number
  readonly numLayers: number
  readonly numHeads: number
  readonly numKvHeads: number
  readonly intermediateSize: number
  readonly vocabSize: number
  readonly ropeTheta: number
  readonly rmsNormEps: number
  readonly maxPositionEmbeddings: number
}

/** Qwen2.5-0.5B's shapes (for benchmarks; the weights are random). */
export const QWEN25_05B_SHAPE: Qwen2Shape = {
  hiddenSize: 896,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  intermediateSize: 4864,
  vocabSize: 151936,
  ropeTheta: 1_000_000,
  rmsNormEps: 1e-6,
  maxPositionEmbeddings: 32768
}

/** A tiny model for tests: 2 layers, 4 query heads over 2 KV heads, head_dim 16. */
export const TINY_SHAPE: Omit<Qwen2Shape, "vocabSize"> = {
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 128,
  ropeTheta: 10_000,
  rmsNormEps: 1e-6,
  maxPositionEmbeddings: 4096
}

/**
 * The weight files a builder can write, named as onnx-community exports name them:
 * fp32 `model.onnx`; `model_int8.onnx` (int8 weights, per-column scales, DynamicQuantizeMatMul);
 * `model_q4.onnx` (4-bit blocks of 32 with MatMulNBits); `model_fp16.onnx` (every float tensor in
 * float16: weights, activations, the KV cache inputs and outputs and the logits; rotary angles
 * computed in float32, as Hugging Face computes them, then cast); `model_q4f16.onnx` (the fp16
 * graph with 4-bit products whose scales are float16).
 */
export type BuildVariant = "fp32" | "int8" | "q4" | "fp16" | "q4f16"
export const variantFile = (v: BuildVariant): string => (v === "fp32" ? "model.onnx" : `model_${v}.onnx`)

/**
 * Where a model's weights come from: random ones (tests, benchmarks) or a checkpoint's. Linear
 * weights are given as ONNX's MatMul takes them, [in, out] row-major.
 */
export interface WeightSource {
  readonly linear: (name: string, K: number, N: number) => Float32Array
  /** A bias or a norm's weight (`std` and `mean` shape random ones). */
  readonly vector: (name: string, n: number, std: number, mean?: number) => Float32Array
  /** The token embeddings, [vocab, hidden]; with `into` (at least vocab * hidden long), written there when the source can. */
  readonly embedding: (name: string, vocab: number, hidden: number, into?: Float32Array) => Float32Array
  /** The output projection, [hidden, vocab]; undefined when it is the embeddings' (tied). */
  readonly lmHead: (hidden: number, vocab: number) => Float32Array | undefined
  /**
   * A linear weight as its N rows of K (`linear` transposed), when the source holds it so; with
   * `into` (at least N * K long), written at its start and that prefix returned.
   */
  readonly linearRows?: ((name: string, K: number, N: number, into?: Float32Array) => Float32Array) | undefined
  /** The output projection as [vocab, hidden] rows (written at `into`'s start when given); undefined when tied. */
  readonly lmHeadRows?: ((hidden: number, vocab: number, into?: Float32Array) => Float32Array | undefined) | undefined
  /**
   * Where a linear weight's N rows of K lie in the source's files (a checkpoint's safetensors), for
   * readers that read rows themselves (q4's helper threads); undefined when they lie nowhere.
   */
  readonly linearEntry?: ((name: string, K: number, N: number) => TensorEntry) | undefined
  /** Where the token embeddings' [vocab, hidden] rows lie, when in float files. */
  readonly embeddingEntry?: ((name: string, vocab: number, hidden: number) => TensorEntry) | undefined
  /** Where the output projection's [vocab, hidden] rows lie; undefined when tied. */
  readonly lmHeadEntry?: ((hidden: number, vocab: number) => TensorEntry | undefined) | undefined
  /** Whether the output projection is the embeddings (`lmHead` gives undefined); true when unsaid. */
  readonly tiedHead?: boolean | undefined
}

/** Deterministic random weights, seeded by tensor name (embeddings tied). */
export const randomWeights = (seed: number): WeightSource => ({
  linear: (name, K, N) => randomTensor(name, seed, K * N, 0.02),
  vector: (name, n, std, mean = 0) => randomTensor(name, seed, n, std, mean),
  embedding: (name, vocab, hidden) => randomTensor(name, seed, vocab * hidden, 0.02),
  lmHead: () => undefined
})

export interface BuildOptions {
  readonly dir: string
  readonly shape?: Partial<Qwen2Shape>
  readonly variants?: ReadonlyArray<BuildVariant>
  readonly seed?: number
  /** A tokenizer to ship instead of the tiny built-in one (e.g. a real Qwen tokenizer.json). */
  readonly tokenizer?: { readonly json: Record<string, unknown>; readonly config: Record<string, unknown> }
  /** Put weights in `<file>_data` (default: when the fp32 weights exceed 256 MB). */
  readonly externalData?: boolean
  readonly onProgress?: (message: string) => void
}

export interface BuiltModel {
  readonly dir: string
  readonly shape: Qwen2Shape
  readonly files: ReadonlyArray<string>
}

const PRODUCER = "fastcot-qwen2-builder"

/** Writes a Qwen2-architecture model folder laid out like an onnx-community export, with random weights. */
export const buildQwen2Model = (options: BuildOptions): BuiltModel => {
  const tiny = options.tokenizer === undefined ? buildTinyTokenizer() : undefined
  const vocabSize = options.shape?.vocabSize ?? tiny?.vocabSize ?? QWEN25_05B_SHAPE.vocabSize
  const shape: Qwen2Shape = { ...TINY_SHAPE, ...options.shape, vocabSize }
  if (shape.numHeads % shape.numKvHeads !== 0) throw new Error("numHeads must be a multiple of numKvHeads")
  if (shape.hiddenSize % shape.numHeads !== 0) throw new Error("hiddenSize must be a multiple of numHeads")
  const seed = options.seed ?? 1
  ensureDirSync(path.join(options.dir, "onnx"))
  const specials = tiny?.specialIds ?? specialIdsOf(options.tokenizer!.json)
  const eos = [specials["<|im_end|>"]!, specials["<|endoftext|>"]!]
  const writeJson = (name: string, value: unknown) =>
    fs.writeFileSync(path.join(options.dir, name), JSON.stringify(value, null, 2) + "\n")
  writeJson("config.json", {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    hidden_act: "silu",
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_attention_heads: shape.numHeads,
    num_hidden_layers: shape.numLayers,
    num_key_value_heads: shape.numKvHeads,
    vocab_size: shape.vocabSize,
    rope_theta: shape.ropeTheta,
    rms_norm_eps: shape.rmsNormEps,
    max_position_embeddings: shape.maxPositionEmbeddings,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    bos_token_id: specials["<|endoftext|>"],
    eos_token_id: specials["<|im_end|>"],
    use_cache: true,
    fastcot_builder: { seed, note: "random weights: the text this model writes is meaningless" }
  })
  writeJson("generation_config.json", {
    bos_token_id: specials["<|endoftext|>"],
    eos_token_id: eos,
    pad_token_id: specials["<|endoftext|>"],
    do_sample: true,
    temperature: 0.7,
    top_p: 0.8,
    top_k: 20,
    repetition_penalty: 1.05
  })
  writeJson("tokenizer.json", options.tokenizer?.json ?? tiny!.tokenizerJson)
  writeJson(
    "tokenizer_config.json",
    options.tokenizer?.config ?? tokenizerConfig(specials, CHATML_TEMPLATE, shape.maxPositionEmbeddings)
  )
  const external = options.externalData ?? fp32Bytes(shape) > 256 * 2 ** 20
  const files: Array<string> = []
  for (const variant of options.variants ?? ["fp32"]) {
    options.onProgress?.(`writing onnx/${variantFile(variant)}`)
    files.push(...writeQwen2Variant(options.dir, shape, variant, randomWeights(seed), external))
  }
  return { dir: options.dir, shape, files }
}

const specialIdsOf = (json: Record<string, unknown>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const t of (json["added_tokens"] as Array<{ id: number; content: string }> | undefined) ?? [])
    out[t.content] = t.id
  for (const need of ["<|endoftext|>", "<|im_end|>"])
    if (out[need] === undefined) throw new Error(`the tokenizer has no ${need} token`)
  return out
}

export const parameterCount = (s: Qwen2Shape): number => {
  const d = s.hiddenSize / s.numHeads
  const attn =
    s.hiddenSize * (s.numHeads * d) * 2 + s.hiddenSize * (s.numKvHeads * d) * 2 + (s.numHeads + 2 * s.numKvHeads) * d
  const mlp = 3 * s.hiddenSize * s.intermediateSize
  return s.vocabSize * s.hiddenSize + s.numLayers * (attn + mlp + 2 * s.hiddenSize) + s.hiddenSize
}
const fp32Bytes = (s: Qwen2Shape) => parameterCount(s) * 4

/** Deterministic uniform weights (xorshift128+ style), seeded by tensor name. */
export const randomTensor = (name: string, seed: number, size: number, std: number, mean = 0): Float32Array => {
  let h = 2166136261 ^ seed
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619)
  let a = h >>> 0 || 1
  let b = Math.imul(h, 2654435761) >>> 0 || 7
  const out = new Float32Array(size)
  const scale = (std * Math.sqrt(3) * 2) / 4294967296
  const half = std * Math.sqrt(3)
  for (let i = 0; i < size; i++) {
    const t = a ^ (a << 11)
    a = b
    b = (b ^ (b >>> 19) ^ (t ^ (t >>> 8))) >>> 0
    out[i] = mean + b * scale - half
  }
  return out
}

/** A row-major [rows, cols] matrix as [cols, rows]. */
export const transpose = (w: Float32Array, rows: number, cols: number): Float32Array => {
  const out = new Float32Array(w.length)
  // In tiles, so that reads and writes both stay within a few cache lines.
  const T = 32
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T)
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T)
      for (let r = r0; r < r1; r++) {
        const from = r * cols
        for (let c = c0; c < c1; c++) out[c * rows + r] = w[from + c]!
      }
    }
  }
  return out
}

/**
 * The largest int8 weight fastcot writes: 7 bits of magnitude ("reduce range", as transformers.js's
 * published int8 files are quantized). On x86 CPUs without VNNI, onnxruntime multiplies uint8
 * activations by int8 weights with VPMADDUBSW, which adds each pair of products into 16 bits and
 * saturates: with weights up to ±127 a pair reaches 2 × 255 × 127 = 64,770 > 32,767, and the
 * results change with the CPU. Within ±63 a pair stays below 32,767 on every CPU, and
 * onnxruntime's own remedy for wider weights (see the decoder's session settings) leaves them on
 * the fast kernels.
 */
export const INT8_WEIGHT_LIMIT = 63

/**
 * Symmetric int8 with one scale per output column, within ±`INT8_WEIGHT_LIMIT`; W is [K, N]
 * row-major.
 */
export const quantizeInt8 = (w: Float32Array, K: number, N: number): { q: Int8Array; scales: Float32Array } => {
  const limit = INT8_WEIGHT_LIMIT
  const scales = new Float32Array(N)
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) scales[n] = Math.max(scales[n]!, Math.abs(w[k * N + n]!))
  for (let n = 0; n < N; n++) scales[n] = scales[n]! / limit || 1
  const q = new Int8Array(K * N)
  for (let k = 0; k < K; k++)
    for (let n = 0; n < N; n++) q[k * N + n] = Math.max(-limit, Math.min(limit, Math.round(w[k * N + n]! / scales[n]!)))
  return { q, scales }
}

/** MatMulNBits' layout: per output column, blocks of 32 along K, two 4-bit values per byte (low first), zero point 8. */
export const quantizeQ4 = (
  w: Float32Array,
  K: number,
  N: number,
  block = 32
): { packed: Uint8Array; scales: Float32Array } => quantizeQ4Rows(transpose(w, K, N), K, N, block)

/**
 * `quantizeQ4` of a weight given as its N rows of K (a checkpoint's own [out, in] layout): each
 * output's blocks are read in order, with no transposed copy.
 */
export const quantizeQ4Rows = (
  rows: Float32Array,
  K: number,
  N: number,
  block = 32
): { packed: Uint8Array; scales: Float32Array } => {
  const blocks = Math.ceil(K / block)
  const packed = new Uint8Array(N * blocks * (block >> 1))
  const scales = new Float32Array(N * blocks)
  quantizeQ4RowRange(rows, K, block, 0, N, packed, scales)
  return { packed, scales }
}

/**
 * Quantizes rows `from` to `to` (exclusive) of `rows` (N rows of K) into their places in `packed`
 * and `scales` (sized for all N rows, as `quantizeQ4Rows` returns them); other places are left as
 * they are. It names nothing outside itself, so helper threads run it from its own source
 * (`startQ4Threads`).
 */
export function quantizeQ4RowRange(
  rows: Float32Array,
  K: number,
  block: number,
  from: number,
  to: number,
  packed: Uint8Array,
  scales: Float32Array
): void {
  // A value's 4-bit code at `scale` around the zero point 8 is `round(v / scale) + 8`, held to 15.
  // Within a block |v| <= 7 * scale, so `v / scale + 8.5` is positive and truncating it rounds half
  // up as `Math.round` does. Written without branches on the values (Math.abs, Math.max, Math.min),
  // the loop runs 2.6x faster on weights of random sign than with them (mispredicted branches were
  // most of its time).
  const blocks = Math.ceil(K / block)
  const half = block >> 1
  for (let n = from; n < to; n++) {
    const row = n * K
    for (let b = 0; b < blocks; b++) {
      const first = row + b * block
      const end = row + Math.min(K, (b + 1) * block)
      let max = 0
      for (let k = first; k < end; k++) max = Math.max(max, Math.abs(rows[k]!))
      const scale = max / 7 || 1
      scales[n * blocks + b] = scale
      let at = (n * blocks + b) * half
      if (end - first === block)
        for (let k = first; k < end; k += 2) {
          const lo = Math.min(15, (rows[k]! / scale + 8.5) | 0)
          const hi = Math.min(15, (rows[k + 1]! / scale + 8.5) | 0)
          packed[at++] = lo | (hi << 4)
        }
      // Past K a block is padded with the zero point, 8.
      else
        for (let k = first; k < first + block; k += 2) {
          const lo = k < end ? Math.min(15, (rows[k]! / scale + 8.5) | 0) : 8
          const hi = k + 1 < end ? Math.min(15, (rows[k + 1]! / scale + 8.5) | 0) : 8
          packed[at++] = lo | (hi << 4)
        }
    }
  }
}

/**
 * Writes one `onnx/` variant file: `build` adds the graph to the builder it is given (weights of
 * 1 KB or more go to `<file>_data`, 64-byte aligned, when `external`) and returns the model's
 * bytes. Returns the paths written.
 */
export const writeVariantFile = (
  dir: string,
  variant: BuildVariant,
  external: boolean,
  build: (g: GraphBuilder) => Uint8Array
): Array<string> => {
  const file = variantFile(variant)
  const modelPath = path.join(dir, "onnx", file)
  const dataName = `${file}_data`
  const dataPath = path.join(dir, "onnx", dataName)
  let fd: number | undefined
  // The external data is written by a thread of its own while the graph is built.
  let writer: WriterThread | undefined
  let offset = 0
  const g = new GraphBuilder(
    external
      ? {
          location: dataName,
          minBytes: 1024,
          write: (pieces) => {
            fd ??= fs.openSync(dataPath, "w")
            writer ??= startWriterThread(fd)
            const at = offset
            for (const bytes of pieces) {
              writer.write(bytes)
              offset += bytes.byteLength
            }
            const pad = (64 - (offset % 64)) % 64
            if (pad > 0) {
              writer.write(new Uint8Array(pad))
              offset += pad
            }
            return at
          }
        }
      : undefined
  )
  try {
    const model = build(g)
    writer?.finish()
    fs.writeFileSync(modelPath, model)
    return fd === undefined ? [modelPath] : [modelPath, dataPath]
  } catch (e) {
    // The thread's writes end before the file is closed; the first failure is the one reported.
    try {
      writer?.finish()
    } catch {
      // already failing
    }
    throw e
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

/** Writes one variant's `onnx/` file (and its external data) of a Qwen2 model with these weights. */
export const writeQwen2Variant = (
  dir: string,
  s: Qwen2Shape,
  variant: BuildVariant,
  weights: WeightSource,
  external: boolean,
  producer = PRODUCER
): Array<string> => {
  return writeVariantFile(dir, variant, external, (g) => {
    const H = s.hiddenSize
    const NH = s.numHeads
    const KV = s.numKvHeads
    const D = H / NH
    const f32 = DType.float
    const i64 = DType.int64
    /** The variant's float type: the type of every float tensor but the rotary angles. */
    const ft = variant === "fp16" || variant === "q4f16" ? DType.float16 : f32
    const inFt = (values: Float32Array): Float32Array | Uint16Array =>
      ft === DType.float16 ? float32ToHalf(values) : values

    /** x [.., K] @ W [K, N] (+ bias), in the variant's arithmetic. */
    const linear = (x: string, name: string, K: number, N: number, bias: boolean, weight?: Float32Array): string => {
      const w = weight ?? weights.linear(name, K, N)
      let y: string
      if (variant === "fp32" || variant === "fp16") y = g.op("MatMul", [x, g.tensor(name, ft, [K, N], inFt(w))])
      else if (variant === "int8") {
        const { q, scales } = quantizeInt8(w, K, N)
        y = g.op(
          "DynamicQuantizeMatMul",
          [x, g.tensor(name, DType.int8, [K, N], q), g.tensor(`${name}_scale`, f32, [N], scales)],
          {},
          "com.microsoft"
        )
      } else {
        const { packed, scales } = quantizeQ4(w, K, N)
        const blocks = Math.ceil(K / 32)
        y = g.op(
          "MatMulNBits",
          [
            x,
            g.tensor(`${name}_Q4`, DType.uint8, [N, blocks, 16], packed),
            g.tensor(`${name}_scales`, ft, [N * blocks], inFt(scales))
          ],
          // As the common quantization scripts write it by default: no accuracy_level (the
          // runtime computes in float32 unless told otherwise; see Q4Compute).
          { K, N, bits: 4, block_size: 32 },
          "com.microsoft"
        )
      }
      if (!bias) return y
      const b = name.replace(/\.weight$/, ".bias")
      return g.op("Add", [y, g.tensor(b, ft, [N], inFt(weights.vector(b, N, 0.02)))])
    }
    const rmsNorm = (x: string, name: string): string => {
      const sq = g.op("Pow", [x, g.const([2], ft)])
      const mean = g.op("ReduceMean", [sq], { axes: [-1], keepdims: 1 })
      const denom = g.op("Sqrt", [g.op("Add", [mean, g.const([s.rmsNormEps], ft)])])
      return g.op("Mul", [g.op("Div", [x, denom]), g.tensor(name, ft, [H], inFt(weights.vector(name, H, 0.1, 1)))])
    }

    // Shared: sizes, the attention bias (causal + padding) and the rotary tables.
    const S = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const([1], i64, true)], { axis: 0 })
    const T = g.op("Gather", [g.op("Shape", ["attention_mask"]), g.const([1], i64, true)], { axis: 0 })
    const P = g.op("Sub", [T, S])
    const qPos = g.op("Range", [P, T, g.const([1], i64, true)])
    const kPos = g.op("Range", [g.const([0], i64, true), T, g.const([1], i64, true)])
    const causal = g.op("LessOrEqual", [kPos, g.op("Unsqueeze", [qPos, g.const([1], i64)])])
    const padding = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], { to: DType.bool }), g.const([1, 2], i64)])
    const allowed = g.op("And", [causal, padding])
    // The most negative float16 where float16 (-1e9 would be -Infinity there).
    const maskBias = g.op("Where", [allowed, g.const([0], ft), g.const([ft === DType.float16 ? -65504 : -1e9], ft)])
    const invFreq = Float32Array.from({ length: D / 2 }, (_, i) => 1 / Math.pow(s.ropeTheta, (2 * i) / D))
    const freqs = g.op("Mul", [
      g.op("Unsqueeze", [g.op("Cast", ["position_ids"], { to: f32 }), g.const([2], i64)]),
      g.tensor("rotary_inv_freq", f32, [D / 2], invFreq)
    ])
    const emb = g.op("Concat", [freqs, freqs], { axis: -1 })
    const inFtGraph = (x: string) => (ft === DType.float16 ? g.op("Cast", [x], { to: ft }) : x)
    const cos = g.op("Unsqueeze", [inFtGraph(g.op("Cos", [emb])), g.const([1], i64)])
    const sin = g.op("Unsqueeze", [inFtGraph(g.op("Sin", [emb])), g.const([1], i64)])
    // rotate_half as tracing exporters write it: halves cut by Slices at `x.shape[-1] // 2`,
    // computed from the tensor's shape.
    const lastAxis = g.const([-1], i64, false)
    const rope = (x: string): string => {
      const headSize = g.op("Gather", [g.op("Shape", [x]), g.const([3], i64, true)], { axis: 0 })
      const half = g.op("Unsqueeze", [g.op("Div", [headSize, g.const([2], i64, true)]), g.const([0], i64, false)])
      const x1 = g.op("Slice", [x, g.const([0], i64, false), half, lastAxis])
      const x2 = g.op("Slice", [x, half, g.const([Number.MAX_SAFE_INTEGER], i64, false), lastAxis])
      const rotated = g.op("Concat", [g.op("Neg", [x2]), x1], { axis: -1 })
      return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rotated, sin])])
    }

    const embedName = "model.embed_tokens.weight"
    const embed = weights.embedding(embedName, s.vocabSize, H)
    let h = g.op("Gather", [g.tensor(embedName, ft, [s.vocabSize, H], inFt(embed)), "input_ids"], { axis: 0 })
    const scale = g.const([1 / Math.sqrt(D)], ft)
    for (let l = 0; l < s.numLayers; l++) {
      const p = `model.layers.${l}`
      const x = rmsNorm(h, `${p}.input_layernorm.weight`)
      const heads = (t: string, n: number) =>
        g.op("Transpose", [g.op("Reshape", [t, g.const([0, 0, n, D], i64, false)])], { perm: [0, 2, 1, 3] })
      const q = rope(heads(linear(x, `${p}.self_attn.q_proj.weight`, H, NH * D, true), NH))
      const k = rope(heads(linear(x, `${p}.self_attn.k_proj.weight`, H, KV * D, true), KV))
      const v = heads(linear(x, `${p}.self_attn.v_proj.weight`, H, KV * D, true), KV)
      const presentK = g.node(
        "Concat",
        [`past_key_values.${l}.key`, k],
        { axis: 2 },
        { outputs: [`present.${l}.key`] }
      )[0]!
      const presentV = g.node(
        "Concat",
        [`past_key_values.${l}.value`, v],
        { axis: 2 },
        { outputs: [`present.${l}.value`] }
      )[0]!
      // Grouped-query attention without repeating K/V: the G query heads of one KV head are laid end to end.
      const qg = g.op("Reshape", [g.op("Mul", [q, scale]), g.const([0, KV, -1, D], i64, false)])
      const scores = g.op("Reshape", [
        g.op("MatMul", [qg, g.op("Transpose", [presentK], { perm: [0, 1, 3, 2] })]),
        g.const([0, NH, -1, 0], i64, false)
      ])
      const probs = g.op("Softmax", [g.op("Add", [scores, maskBias])], { axis: -1 })
      const ctx = g.op("MatMul", [g.op("Reshape", [probs, g.const([0, KV, -1, 0], i64, false)]), presentV])
      const merged = g.op("Reshape", [
        g.op("Transpose", [g.op("Reshape", [ctx, g.const([0, NH, -1, D], i64, false)])], { perm: [0, 2, 1, 3] }),
        g.const([0, 0, H], i64, false)
      ])
      h = g.op("Add", [h, linear(merged, `${p}.self_attn.o_proj.weight`, NH * D, H, false)])
      const y = rmsNorm(h, `${p}.post_attention_layernorm.weight`)
      const gate = linear(y, `${p}.mlp.gate_proj.weight`, H, s.intermediateSize, false)
      const up = linear(y, `${p}.mlp.up_proj.weight`, H, s.intermediateSize, false)
      const act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up])
      h = g.op("Add", [h, linear(act, `${p}.mlp.down_proj.weight`, s.intermediateSize, H, false)])
    }
    const last = rmsNorm(h, "model.norm.weight")
    g.node(
      "Identity",
      [
        linear(
          last,
          "lm_head.weight",
          H,
          s.vocabSize,
          false,
          weights.lmHead(H, s.vocabSize) ?? transpose(embed, s.vocabSize, H)
        )
      ],
      {},
      { outputs: ["logits"] }
    )

    const inputs: Array<ValueInfo> = [
      { name: "input_ids", type: i64, dims: ["batch_size", "sequence_length"] },
      { name: "attention_mask", type: i64, dims: ["batch_size", "total_sequence_length"] },
      { name: "position_ids", type: i64, dims: ["batch_size", "sequence_length"] }
    ]
    const outputs: Array<ValueInfo> = [
      { name: "logits", type: ft, dims: ["batch_size", "sequence_length", s.vocabSize] }
    ]
    for (let l = 0; l < s.numLayers; l++) {
      for (const kind of ["key", "value"]) {
        inputs.push({
          name: `past_key_values.${l}.${kind}`,
          type: ft,
          dims: ["batch_size", KV, "past_sequence_length", D]
        })
        outputs.push({ name: `present.${l}.${kind}`, type: ft, dims: ["batch_size", KV, "total_sequence_length", D] })
      }
    }
    return g.model({ inputs, outputs, name: "qwen2", producer, opset: 17 })
  })
}
