import * as ort from "onnxruntime-node"
import { floatData } from "../onnx/half.js"
import type { LocalModel } from "../onnx/localModel.js"
import { LAST_LOGITS, newOutput, pastInput } from "../onnx/rewrite.js"

/** An int64 tensor of these values and dims. */
export const int64 = (xs: ReadonlyArray<number>, dims: ReadonlyArray<number>) =>
  new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), dims)

/** The integers a, a+1, …, b-1. */
export const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i)

/**
 * Logits at every position of one sequence, recomputed without a cache. A prepared graph gives
 * the last position's only, so each prefix of the sequence runs from an empty cache.
 */
export const fullLogits = async (m: LocalModel, ids: ReadonlyArray<number>): Promise<Float32Array> => {
  const n = ids.length
  if (m.signature.prepared) {
    const rows: Array<Float32Array> = []
    for (let t = 1; t <= n; t++) rows.push((await runPrepared(m, ids.slice(0, t), emptyPreparedCache(m))).logits)
    const all = new Float32Array(rows.reduce((a, r) => a + r.length, 0))
    rows.forEach((r, i) => all.set(r, i * r.length))
    return all
  }
  const out = await m.run({
    input_ids: int64(ids, [1, n]),
    attention_mask: int64(
      ids.map(() => 1),
      [1, n]
    ),
    position_ids: int64(range(0, n), [1, n]),
    ...m.emptyPast(1)
  })
  return floatData(out["logits"]!)
}

/** One sequence's cache for a prepared graph: per layer the key and value, `[1, kv_heads, n, head_dim]`. */
export interface PreparedCache {
  readonly length: number
  readonly tensors: ReadonlyArray<Float32Array>
}

export const emptyPreparedCache = (m: LocalModel): PreparedCache => ({
  length: 0,
  tensors: Array.from({ length: 2 * m.signature.layers }, () => new Float32Array(0))
})

/**
 * Runs `tokens` after `cache` through a prepared graph (see `GraphSignature.prepared`): the last
 * position's logits, and the cache with the new positions appended.
 */
export const runPrepared = async (
  m: LocalModel,
  tokens: ReadonlyArray<number>,
  cache: PreparedCache
): Promise<{ readonly logits: Float32Array; readonly cache: PreparedCache }> => {
  const [H, D, S, P] = [m.folder.numKvHeads, m.folder.headDim, tokens.length, cache.length]
  const feeds: Record<string, ort.Tensor> = {
    input_ids: int64(tokens, [1, S]),
    attention_mask: int64(
      range(0, P + S).map(() => 1),
      [1, P + S]
    ),
    position_ids: int64(range(P, P + S), [1, S])
  }
  for (let l = 0; l < m.signature.layers; l++)
    for (const [k, kind] of (["key", "value"] as const).entries())
      feeds[pastInput(l, kind)] = new ort.Tensor("float32", cache.tensors[2 * l + k]!, [1, H, P, D])
  const out = await m.run(feeds)
  const tensors = cache.tensors.map((old, t) => {
    const added = out[newOutput(t >> 1, t % 2 === 0 ? "key" : "value")]!.data as Float32Array
    const grown = new Float32Array(H * (P + S) * D)
    for (let h = 0; h < H; h++) {
      grown.set(old.subarray(h * P * D, (h + 1) * P * D), h * (P + S) * D)
      grown.set(added.subarray(h * S * D, (h + 1) * S * D), (h * (P + S) + P) * D)
    }
    return grown
  })
  return { logits: floatData(out[LAST_LOGITS]!), cache: { length: P + S, tensors } }
}
