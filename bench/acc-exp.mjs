import * as os from "node:os"
import { DType, GraphBuilder, QWEN25_05B_SHAPE as s } from "@fastcot/core"
const rt = await import("onnxruntime-node")
const median = (a) => { const b = [...a].sort((x, y) => x - y); const m = b.length >> 1; return b.length % 2 ? b[m] : (b[m - 1] + b[m]) / 2 }
const floor = async (acc, M) => {
  const H = s.hiddenSize, I = s.intermediateSize, kv = (s.numKvHeads * H) / s.numHeads
  const g = new GraphBuilder()
  let seed = 1
  const bytes = (n) => { const a = new Uint8Array(n); for (let i = 0; i < n; i++) a[i] = (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 24; return a }
  const floats = (n, scale) => Float32Array.from({ length: n }, () => (((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5) * scale)
  let c = 0
  const product = (x, K, N) => {
    const w = `w${c++}`, blocks = K / 32
    const attrs = { K, N, bits: 4, block_size: 32 }
    if (acc !== undefined) attrs.accuracy_level = acc
    return g.op("MatMulNBits", [x, g.tensor(w, DType.uint8, [N, blocks, 16], bytes(N * blocks * 16)), g.tensor(`${w}s`, DType.float, [N * blocks], floats(N * blocks, 0.002).map((v) => Math.abs(v) + 1e-4))], attrs, "com.microsoft")
  }
  const outs = []
  for (let l = 0; l < s.numLayers; l++) for (const [K, N, x] of [[H, H, "h"], [H, kv, "h"], [H, kv, "h"], [H, H, "h"], [H, I, "h"], [H, I, "h"], [I, H, "i"]]) outs.push(product(x, K, N))
  outs.push(product("h", H, s.vocabSize))
  const sum = outs.map((o) => g.op("ReduceMax", [o], { keepdims: 0 })).reduce((a, b) => g.op("ReduceMax", [g.op("Concat", [g.op("Unsqueeze", [a, g.tensor(`ax${c++}`, DType.int64, [1], new BigInt64Array([0n]))]), g.op("Unsqueeze", [b, g.tensor(`ay${c++}`, DType.int64, [1], new BigInt64Array([0n]))])], { axis: 0 })], { keepdims: 0 }))
  g.node("Identity", [sum], {}, { outputs: ["y"] })
  const model = g.model({ inputs: [{ name: "h", type: DType.float, dims: [1, M, H] }, { name: "i", type: DType.float, dims: [1, M, I] }], outputs: [{ name: "y", type: DType.float, dims: [] }], name: "floor", producer: "bench", opset: 17 })
  const session = await rt.InferenceSession.create(model, { executionProviders: ["cpu"], graphOptimizationLevel: "all", intraOpNumThreads: 2, interOpNumThreads: 1 })
  const feeds = { h: new rt.Tensor("float32", floats(M * H, 2), [1, M, H]), i: new rt.Tensor("float32", floats(M * I, 2), [1, M, I]) }
  return { run: async () => { const t = performance.now(); await session.run(feeds); return performance.now() - t }, release: () => session.release() }
}
for (const M of [1, 64]) {
  const cs = [await floor(undefined, M), await floor(4, M)]
  const ts = [[], []]
  for (let r = 0; r < 30; r++) for (const k of r % 2 ? [1, 0] : [0, 1]) { const t = await cs[k].run(); if (r >= 4) ts[k].push(t) }
  console.log(`M=${M}: accuracy_level unset ${median(ts[0]).toFixed(1)} ms, 4 ${median(ts[1]).toFixed(1)} ms, ratio ${(median(ts[0]) / median(ts[1])).toFixed(2)}`)
  for (const x of cs) await x.release()
}
