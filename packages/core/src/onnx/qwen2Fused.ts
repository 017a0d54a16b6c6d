import { DType, type ValueInfo } from "./graph.js"
import {
  type BuildVariant,
  quantizeInt8,
  type Qwen2Shape,
  transpose,
  type WeightSource,
  writeVariantFile
} from "./qwen2Builder.js"
import { startQ4Threads } from "./quantizeThreads.js"
import { isFloatDtype, readTensorRowsInPieces, type TensorEntry } from "./safetensors.js"
import { LAST_LOGITS, newOutput, pastInput } from "./rewrite.js"

/**
 * The decoder graph that `fastcot models convert` writes: the same Qwen2 computation as the
 * exported layout (see `writeQwen2Variant`), built from onnxruntime's fused CPU operators, and
 * already in the form the local engine runs, so it is loaded with no rewrite:
 *
 * - `SimplifiedLayerNormalization` / `SkipSimplifiedLayerNormalization` for each RMS norm with the
 *   residual add before it;
 * - one product for the query, key and value projections (their weights side by side, their biases
 *   in the product), one for the gate and up projections; q4 products are `MatMulNBits` in blocks
 *   of 32 at `accuracy_level` 4 (integer kernels), int8 ones `DynamicQuantizeMatMul`;
 * - `RotaryEmbedding` on the queries and keys over tables written into the file;
 * - attention that reads the cache in place: the scores over the cache and over the step's new
 *   positions are two products (`FusedMatMul`, the scale folded in), so the cache is never
 *   concatenated with the new positions (the exported layout copies it twice a layer each step).
 *
 * Inputs and outputs are those of the rewritten exported graph (see `rewriteDecoder`):
 * `input_ids`, `attention_mask` `[batch, past + seq]` and `position_ids` (int64), per layer the
 * cache `fastcot.past.N.key/value` `[batch, kv_heads, past, head_dim]`; out, the last position's
 * logits `fastcot.last_logits` `[batch, 1, vocab]` and the step's new keys (after rotary) and
 * values `fastcot.new.N.key/value` `[batch, kv_heads, seq, head_dim]`.
 *
 * `GroupQueryAttention` was measured and not used: onnxruntime-node copies every output back to
 * JavaScript, pre-allocated ones too, so the operator's cache shared between past and present
 * cannot be shared from Node, and unshared it copies the cache each step (0.86x of the exported
 * layout at a 1,024-token context, docs/benchmarks.md).
 */

/** The variants written in the fused layout; others keep the exported one. */
export type FusedVariant = Extract<BuildVariant, "fp32" | "int8" | "q4">
export const isFusedVariant = (v: BuildVariant): v is FusedVariant => v === "fp32" || v === "int8" || v === "q4"

/** Gives an array of `count` values to write into, which the caller may hold until it next asks. */
type Scratch = (count: number) => Float32Array

/**
 * A weight matrix as a product takes it, made when asked: `[K, N]` (MatMul's layout, for fp32 and
 * int8) or its N rows of K (a checkpoint's own layout, which 4-bit quantization reads in order, so
 * q4 makes no transposed copy). `rows` writes into `scratch` when given and the source can.
 */
interface Weight {
  readonly kn: () => Float32Array
  readonly rows: (scratch?: Scratch) => Float32Array
  /** Where its rows lie in the checkpoint's files, in order, when the source says. */
  readonly entries?: () => ReadonlyArray<TensorEntry> | undefined
}

/** Weights with the same K packed along N (one product for several projections). */
const packed = (parts: ReadonlyArray<Weight>, widths: ReadonlyArray<number>, K: number): Weight => ({
  entries: () => {
    const each = parts.map((p) => p.entries?.())
    return each.every((e) => e !== undefined) ? each.flat() : undefined
  },
  kn: () =>
    sideBySide(
      parts.map((p) => p.kn()),
      widths,
      K
    ),
  rows: (scratch) => {
    const total = K * widths.reduce((a, b) => a + b, 0)
    const out = scratch?.(total) ?? new Float32Array(total)
    let at = 0
    for (const p of parts) {
      const from = at
      const r = p.rows((count) => out.subarray(from, from + count))
      // A part its source wrote in place is not copied again.
      if (r.buffer !== out.buffer || r.byteOffset !== out.byteOffset + from * 4) out.set(r, from)
      at += r.length
    }
    return out
  }
})

/** The most values the embeddings are streamed through at once (32 MB in float32). */
const STREAM_VALUES = 8 * 2 ** 20

/** Float32 pieces as their bytes. */
function* asBytes(pieces: Iterable<Float32Array>): Generator<Uint8Array> {
  for (const p of pieces) yield new Uint8Array(p.buffer, p.byteOffset, p.byteLength)
}

/** [K, N_i] row-major matrices side by side: [K, sum N_i]. */
const sideBySide = (mats: ReadonlyArray<Float32Array>, widths: ReadonlyArray<number>, K: number): Float32Array => {
  const N = widths.reduce((a, b) => a + b, 0)
  const out = new Float32Array(K * N)
  for (let k = 0; k < K; k++) {
    let at = k * N
    for (const [i, m] of mats.entries()) {
      const w = widths[i]!
      out.set(m.subarray(k * w, (k + 1) * w), at)
      at += w
    }
  }
  return out
}

/** Rotary tables `[positions, head_dim / 2]`, as Hugging Face computes them (float32 angles). */
const rotaryCache = (
  positions: number,
  headDim: number,
  theta: number
): { readonly cos: Float32Array; readonly sin: Float32Array } => {
  const half = headDim / 2
  const cos = new Float32Array(positions * half)
  const sin = new Float32Array(positions * half)
  for (let i = 0; i < half; i++) {
    const invFreq = Math.fround(1 / Math.pow(theta, (2 * i) / headDim))
    for (let p = 0; p < positions; p++) {
      const angle = Math.fround(p * invFreq)
      cos[p * half + i] = Math.cos(angle)
      sin[p * half + i] = Math.sin(angle)
    }
  }
  return { cos, sin }
}

/** Writes one variant's `onnx/` file (and its external data) in the fused layout. */
export const writeFusedQwen2Variant = (
  dir: string,
  s: Qwen2Shape,
  variant: FusedVariant,
  weights: WeightSource,
  external: boolean,
  producer: string,
  quantizeHelpers?: number
): Array<string> => {
  // q4's reading and quantizing are shared with helper threads (docs/benchmarks.md).
  const q4 = variant === "q4" ? startQ4Threads(quantizeHelpers) : undefined
  try {
    return writeVariantFile(dir, variant, external, (g) => {
      const H = s.hiddenSize
      const NH = s.numHeads
      const KV = s.numKvHeads
      const D = H / NH
      const I = s.intermediateSize
      const f32 = DType.float
      const i64 = DType.int64
      const ms = "com.microsoft"

      // One shared array, grown to the largest, that every q4 weight's rows are read into and
      // quantized from (a fresh array for each would cost a page fault per 4 KiB, docs/benchmarks.md).
      const scratch: Scratch | undefined = q4?.scratch
      // Sized up front for the largest layer weight (gate and up together, or the down projection),
      // before any is touched: an array grown later would keep the smaller one alive beside it.
      q4?.reserve(H, Math.max(2 * I, NH * D + 2 * KV * D))
      q4?.reserve(I, H)

      /** x [.., K] @ W [K, N] (+ bias), in the variant's arithmetic; `out` names the result. */
      const product = (
        x: string,
        name: string,
        K: number,
        N: number,
        weight: Weight,
        bias?: Float32Array,
        out?: string
      ) => {
        const outputs = out === undefined ? {} : { outputs: [out] }
        const b = bias === undefined ? [] : [g.tensor(`${name}.bias`, f32, [N], bias)]
        if (variant === "fp32") {
          const w = g.tensor(name, f32, [K, N], weight.kn())
          if (b.length === 0) return g.node("MatMul", [x, w], {}, outputs)[0]!
          return g.node("Add", [g.op("MatMul", [x, w]), b[0]!], {}, outputs)[0]!
        }
        if (variant === "int8") {
          const { q, scales } = quantizeInt8(weight.kn(), K, N)
          return g.node(
            "DynamicQuantizeMatMul",
            [x, g.tensor(name, DType.int8, [K, N], q), g.tensor(`${name}_scale`, f32, [N], scales), "", ...b],
            {},
            { domain: ms, ...outputs }
          )[0]!
        }
        // Read by each thread for its own rows where the weight lies in files; written out by
        // `g.tensor` before the next weight reuses the arrays.
        const entries = weight.entries?.()
        const { packed, scales } =
          (entries === undefined ? undefined : q4!.quantizeFromFiles(entries, K, N)) ??
          q4!.quantize(weight.rows(scratch), K, N)
        const blocks = Math.ceil(K / 32)
        return g.node(
          "MatMulNBits",
          [
            x,
            g.tensor(`${name}_Q4`, DType.uint8, [N, blocks, 16], packed),
            g.tensor(`${name}_scales`, f32, [N * blocks], scales),
            ...(b.length === 0 ? [] : ["", "", b[0]!])
          ],
          { K, N, bits: 4, block_size: 32, accuracy_level: 4 },
          { domain: ms, ...outputs }
        )[0]!
      }
      const gamma = (name: string) => g.tensor(name, f32, [H], weights.vector(name, H, 0.1, 1))
      /** RMS norm of `x + skip` (the residual stream's next value is the second output). */
      const skipNorm = (x: string, skip: string, name: string): [string, string] => {
        const [normed, , , sum] = g.node(
          "SkipSimplifiedLayerNormalization",
          [x, skip, gamma(name)],
          { epsilon: s.rmsNormEps },
          { domain: ms, outputs: 4 }
        )
        return [normed!, sum!]
      }

      const { cos, sin } = rotaryCache(s.maxPositionEmbeddings, D, s.ropeTheta)
      const cosCache = g.tensor("rotary.cos", f32, [s.maxPositionEmbeddings, D / 2], cos)
      const sinCache = g.tensor("rotary.sin", f32, [s.maxPositionEmbeddings, D / 2], sin)

      // The attention bias: each row's mask (its left padding, the cache's unused positions) and
      // causality among the new positions, [batch, 1, seq, past + seq], repeated for the G query
      // heads of a KV head as the scores lay them out ([batch, kv_heads, G * seq, past + seq]).
      const S = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const([1], i64, true)], { axis: 0 })
      const T = g.op("Gather", [g.op("Shape", ["attention_mask"]), g.const([1], i64, true)], { axis: 0 })
      const past = g.op("Sub", [T, S])
      const qPos = g.op("Range", [past, T, g.const([1], i64, true)])
      const kPos = g.op("Range", [g.const([0], i64, true), T, g.const([1], i64, true)])
      const causal = g.op("LessOrEqual", [kPos, g.op("Unsqueeze", [qPos, g.const([1], i64)])])
      const padding = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], { to: DType.bool }), g.const([1, 2], i64)])
      const G = NH / KV
      const bias = g.op("Tile", [
        g.op("Where", [g.op("And", [causal, padding]), g.const([0], f32), g.const([-1e9], f32)]),
        g.const([1, 1, G, 1], i64, false)
      ])
      const axis0 = g.const([0], i64, false)
      const pastAndNew = g.op("Concat", [g.op("Unsqueeze", [past, axis0]), g.op("Unsqueeze", [S, axis0])], { axis: 0 })

      const linear = (name: string, K: number, N: number): Weight => ({
        entries: () => {
          const e = weights.linearEntry?.(name, K, N)
          return e === undefined ? undefined : [e]
        },
        kn: () => weights.linear(name, K, N),
        rows: (scratch) =>
          weights.linearRows?.(name, K, N, scratch?.(N * K)) ?? transpose(weights.linear(name, K, N), K, N)
      })
      const embedName = "model.embed_tokens.weight"
      const V = s.vocabSize
      const tied = weights.tiedHead !== false
      const embedEntry = weights.embeddingEntry?.(embedName, V, H)
      // The embeddings (7B's are 2.2 GB in float32) are streamed from the file into the graph's data
      // through one array when nothing later needs them whole: the head is untied, or it is q4 and
      // read again from the file, a chunk at a time, by every thread. Otherwise they are kept for a
      // tied head.
      const streamEmbed = embedEntry !== undefined && (!tied || (q4 !== undefined && isFloatDtype(embedEntry.dtype)))
      let embed: Float32Array | undefined
      let table: string
      if (streamEmbed) {
        const count = Math.min(V * H, STREAM_VALUES)
        const buffer = q4?.scratch(count) ?? new Float32Array(count)
        table = g.tensorInPieces(embedName, f32, [V, H], V * H * 4, asBytes(readTensorRowsInPieces(embedEntry, buffer)))
      } else {
        embed = weights.embedding(embedName, V, H)
        table = g.tensor(embedName, f32, [V, H], embed)
        if (!tied) embed = undefined
      }
      let residual = g.op("Gather", [table, "input_ids"], { axis: 0 })
      let pending: string | undefined
      const qkvWidths = [NH * D, KV * D, KV * D]
      const toHeads = (x: string, n: number) =>
        g.op("Transpose", [g.op("Reshape", [x, g.const([0, 0, n, D], i64, false)])], { perm: [0, 2, 1, 3] })
      const rotary = (x: string, out?: string) =>
        g.node(
          "RotaryEmbedding",
          [x, "position_ids", cosCache, sinCache],
          { interleaved: 0 },
          {
            domain: ms,
            ...(out === undefined ? {} : { outputs: [out] })
          }
        )[0]!
      for (let l = 0; l < s.numLayers; l++) {
        const p = `model.layers.${l}`
        let x: string
        if (pending === undefined)
          x = g.op("SimplifiedLayerNormalization", [residual, gamma(`${p}.input_layernorm.weight`)], {
            axis: -1,
            epsilon: s.rmsNormEps,
            stash_type: 1
          })
        else [x, residual] = skipNorm(pending, residual, `${p}.input_layernorm.weight`)
        const proj = ["q_proj", "k_proj", "v_proj"].map((n) => `${p}.self_attn.${n}`)
        const qkv = product(
          x,
          `${p}.self_attn.qkv_proj.weight`,
          H,
          NH * D + 2 * KV * D,
          packed(
            proj.map((n, i) => linear(`${n}.weight`, H, qkvWidths[i]!)),
            qkvWidths,
            H
          ),
          Float32Array.from(proj.flatMap((n, i) => [...weights.vector(`${n}.bias`, qkvWidths[i]!, 0.02)]))
        )
        const [q, k, v] = g.node("Split", [qkv, g.const(qkvWidths, i64, false)], { axis: -1 }, { outputs: 3 })
        // Heads first ([batch, heads, seq, head_dim]); the new keys and values are outputs as they are.
        const newKey = rotary(toHeads(k!, KV), newOutput(l, "key"))
        const newValue = g.node(
          "Transpose",
          [g.op("Reshape", [v!, g.const([0, 0, KV, D], i64, false)])],
          { perm: [0, 2, 1, 3] },
          {
            outputs: [newOutput(l, "value")]
          }
        )[0]!
        // The G query heads that share a KV head, end to end: one product per KV head over the cache
        // read in place, one over the new positions; the cache is never copied.
        const grouped = g.op("Reshape", [rotary(toHeads(q!, NH)), g.const([0, KV, -1, D], i64, false)])
        const scaled = { alpha: 1 / Math.sqrt(D), transA: 0, transB: 1 }
        const scores = g.op(
          "Concat",
          [
            g.op("FusedMatMul", [grouped, pastInput(l, "key")], scaled, ms),
            g.op("FusedMatMul", [grouped, newKey], scaled, ms)
          ],
          { axis: -1 }
        )
        const probs = g.op("Softmax", [g.op("Add", [scores, bias])], { axis: -1 })
        const [onPast, onNew] = g.node("Split", [probs, pastAndNew], { axis: -1 }, { outputs: 2 })
        const context = g.op("Add", [
          g.op("MatMul", [onPast!, pastInput(l, "value")]),
          g.op("MatMul", [onNew!, newValue])
        ])
        const merged = g.op("Reshape", [
          g.op("Transpose", [g.op("Reshape", [context, g.const([0, NH, -1, D], i64, false)])], { perm: [0, 2, 1, 3] }),
          g.const([0, 0, H], i64, false)
        ])
        const o = product(
          merged,
          `${p}.self_attn.o_proj.weight`,
          NH * D,
          H,
          linear(`${p}.self_attn.o_proj.weight`, NH * D, H)
        )
        const [y, afterAttention] = skipNorm(o, residual, `${p}.post_attention_layernorm.weight`)
        residual = afterAttention
        const gateUp = product(
          y,
          `${p}.mlp.gate_up_proj.weight`,
          H,
          2 * I,
          packed([linear(`${p}.mlp.gate_proj.weight`, H, I), linear(`${p}.mlp.up_proj.weight`, H, I)], [I, I], H)
        )
        const [gate, up] = g.node("Split", [gateUp, g.const([I, I], i64, false)], { axis: -1 }, { outputs: 2 })
        const act = g.op("Mul", [g.op("Mul", [gate!, g.op("Sigmoid", [gate!])]), up!])
        pending = product(act, `${p}.mlp.down_proj.weight`, I, H, linear(`${p}.mlp.down_proj.weight`, I, H))
      }
      const [normed] = skipNorm(pending!, residual, "model.norm.weight")
      // The head sees the last position only.
      const last = g.op("Slice", [
        normed,
        g.const([-1], i64, false),
        g.const([Number.MAX_SAFE_INTEGER], i64, false),
        g.const([1], i64, false)
      ])
      product(
        last,
        "lm_head.weight",
        H,
        s.vocabSize,
        {
          kn: () => weights.lmHead(H, s.vocabSize) ?? transpose(embed!, s.vocabSize, H),
          entries: () => {
            const e = embed !== undefined ? undefined : tied ? embedEntry : weights.lmHeadEntry?.(H, V)
            return e === undefined ? undefined : [e]
          },
          // Tied: the embeddings are the head's rows as they are.
          rows: (scratch) =>
            embed ??
            (tied
              ? weights.embedding(embedName, V, H, scratch?.(V * H))
              : (weights.lmHeadRows?.(H, V, scratch?.(V * H)) ?? transpose(weights.lmHead(H, V)!, H, V)))
        },
        undefined,
        LAST_LOGITS
      )

      const inputs: Array<ValueInfo> = [
        { name: "input_ids", type: i64, dims: ["batch_size", "sequence_length"] },
        { name: "attention_mask", type: i64, dims: ["batch_size", "total_sequence_length"] },
        { name: "position_ids", type: i64, dims: ["batch_size", "sequence_length"] }
      ]
      const outputs: Array<ValueInfo> = [{ name: LAST_LOGITS, type: f32, dims: ["batch_size", 1, s.vocabSize] }]
      for (let l = 0; l < s.numLayers; l++) {
        for (const kind of ["key", "value"] as const) {
          inputs.push({ name: pastInput(l, kind), type: f32, dims: ["batch_size", KV, "past_sequence_length", D] })
          outputs.push({ name: newOutput(l, kind), type: f32, dims: ["batch_size", KV, "sequence_length", D] })
        }
      }
      return g.model({ inputs, outputs, name: "qwen2-fused", producer, opset: 17 })
    })
  } finally {
    q4?.close()
  }
}
