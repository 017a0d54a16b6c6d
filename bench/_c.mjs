import * as ort from "onnxruntime-node"
import { GraphBuilder, DType } from "@fastcot/core"
const L = 48, H = 2, D = 64
const g = new GraphBuilder()
const inputs = [], outputs = []
for (let l = 0; l < L; l++) { inputs.push({ name: `p${l}`, type: DType.float, dims: [1, H, "t", D] }, { name: `n${l}`, type: DType.float, dims: [1, H, 1, D] }); outputs.push({ name: `o${l}`, type: DType.float, dims: [1, H, "u", D] }); g.node("Concat", [`p${l}`, `n${l}`], { axis: 2 }, { outputs: [`o${l}`] }) }
const s = await ort.InferenceSession.create(g.model({ inputs, outputs, name: "c", producer: "x", opset: 17 }), { intraOpNumThreads: 2 })
for (const T of [1024, 3072, 1024, 3072]) for (const mode of ["fresh", "prealloc"]) {
  const f = {}
  for (let l = 0; l < L; l++) { f[`p${l}`] = new ort.Tensor("float32", new Float32Array(H * T * D).fill(1), [1, H, T, D]); f[`n${l}`] = new ort.Tensor("float32", new Float32Array(H * D).fill(2), [1, H, 1, D]) }
  const pre = {}
  for (let l = 0; l < L; l++) pre[`o${l}`] = new ort.Tensor("float32", new Float32Array(H * (T + 1) * D), [1, H, T + 1, D])
  const run = () => mode === "fresh" ? s.run(f) : s.run(f, pre)
  let out = await run()
  const t = performance.now(); for (let i = 0; i < 20; i++) out = await run()
  console.log("T", T, mode, "ms", ((performance.now() - t) / 20).toFixed(2), mode === "prealloc" ? `returned is ours: ${out.o0 === pre.o0}, same memory: ${out.o0.data.buffer === pre.o0.data.buffer}, ours filled: ${pre.o0.data[T * D]}` : "")
}
