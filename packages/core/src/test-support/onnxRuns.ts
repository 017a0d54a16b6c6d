import * as ort from "onnxruntime-node"
import { floatData } from "../onnx/half.js"
import type { LocalModel } from "../onnx/localModel.js"

/** An int64 tensor of these values and dims. */
export const int64 = (xs: ReadonlyArray<number>, dims: ReadonlyArray<number>) =>
  new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), dims)

/** The integers a, a+1, …, b-1. */
export const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i)

/** Logits at every position of one sequence, recomputed without a cache. */
export const fullLogits = async (m: LocalModel, ids: ReadonlyArray<number>): Promise<Float32Array> => {
  const n = ids.length
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
