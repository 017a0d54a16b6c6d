import * as fs from "node:fs"
import * as path from "node:path"
import onnxProto from "onnx-proto"
import { readSafetensorsHeader, readTensorFloat32, type TensorEntry } from "../onnx/safetensors.js"

/**
 * An independent, plain-TypeScript forward pass of a Qwen2 model (fp32 weights), written from
 * the architecture's definition and not from the builder's graph: it reads the initializers out
 * of the .onnx file (inline or external data) and computes logits for a whole sequence in float64.
 */
export const referenceLogits = (modelDir: string, ids: ReadonlyArray<number>): Array<Float64Array> => {
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, "config.json"), "utf8")) as ReferenceConfig
  const file = path.join(modelDir, "onnx", "model.onnx")
  const model = onnxProto.onnx.ModelProto.decode(fs.readFileSync(file))
  const weights = new Map<string, Float32Array>()
  for (const t of model.graph!.initializer!) {
    if (t.dataType !== 1) continue
    let bytes: Uint8Array
    if (t.dataLocation === 1) {
      const kv = Object.fromEntries(t.externalData!.map((e) => [e.key!, e.value!]))
      const fd = fs.openSync(path.join(path.dirname(file), kv["location"]!), "r")
      bytes = new Uint8Array(Number(kv["length"]))
      fs.readSync(fd, bytes, 0, bytes.length, Number(kv["offset"]))
      fs.closeSync(fd)
    } else bytes = t.rawData!
    const copy = new Uint8Array(bytes)
    weights.set(t.name!, new Float32Array(copy.buffer, 0, copy.byteLength / 4))
  }
  const W = (name: string) => {
    const w = weights.get(name)
    if (w === undefined) throw new Error(`no initializer ${name}`)
    return w
  }
  return forward(config, W, ids)
}

interface ReferenceConfig {
  hidden_size: number
  num_hidden_layers: number
  num_attention_heads: number
  num_key_value_heads: number
  intermediate_size: number
  vocab_size: number
  rope_theta: number
  rms_norm_eps: number
}

/**
 * The same forward pass over a Hugging Face checkpoint folder (safetensors, any float dtype):
 * linear weights are kept [out, in] there, and taken here as [in, out]; a tied head is the
 * embeddings'.
 */
export const checkpointReferenceLogits = (checkpointDir: string, ids: ReadonlyArray<number>): Array<Float64Array> => {
  const config = JSON.parse(fs.readFileSync(path.join(checkpointDir, "config.json"), "utf8")) as ReferenceConfig
  const tensors = new Map<string, TensorEntry>()
  for (const f of fs.readdirSync(checkpointDir).filter((x) => x.endsWith(".safetensors")))
    for (const e of readSafetensorsHeader(path.join(checkpointDir, f))) tensors.set(e.name, e)
  const T = (rows: number, cols: number, w: Float32Array) => {
    const out = new Float32Array(w.length)
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!
    return out
  }
  const W = (name: string): Float32Array => {
    const source = name === "lm_head.weight" && !tensors.has(name) ? "model.embed_tokens.weight" : name
    const e = tensors.get(source)
    if (e === undefined) throw new Error(`no tensor ${source}`)
    const w = readTensorFloat32(e)
    return e.shape.length === 2 && source !== "model.embed_tokens.weight"
      ? T(e.shape[0]!, e.shape[1]!, w)
      : source !== name
        ? T(config.vocab_size, config.hidden_size, w)
        : w
  }
  return forward(config, W, ids)
}

const forward = (config: ReferenceConfig, W: (name: string) => Float32Array, ids: ReadonlyArray<number>) => {
  const H = config.hidden_size
  const NH = config.num_attention_heads
  const KV = config.num_key_value_heads
  const D = H / NH
  const I = config.intermediate_size
  const V = config.vocab_size
  const n = ids.length
  const matmul = (x: Array<Float64Array>, w: Float32Array, K: number, N: number, bias?: Float32Array) =>
    x.map((row) => {
      const out = new Float64Array(N)
      for (let k = 0; k < K; k++) {
        const v = row[k]!
        const off = k * N
        for (let j = 0; j < N; j++) out[j]! += v * w[off + j]!
      }
      if (bias) for (let j = 0; j < N; j++) out[j]! += bias[j]!
      return out
    })
  const rms = (x: Array<Float64Array>, w: Float32Array) =>
    x.map((row) => {
      let ss = 0
      for (const v of row) ss += v * v
      const r = 1 / Math.sqrt(ss / row.length + config.rms_norm_eps)
      return row.map((v, i) => v * r * w[i]!)
    })
  const rope = (vec: Float64Array, head: number, p: number) => {
    const base = head * D
    const out = vec.slice(base, base + D)
    for (let i = 0; i < D / 2; i++) {
      const theta = p * (1 / Math.pow(config.rope_theta, (2 * i) / D))
      const c = Math.cos(theta)
      const s = Math.sin(theta)
      const a = vec[base + i]!
      const b = vec[base + i + D / 2]!
      out[i] = a * c - b * s
      out[i + D / 2] = b * c + a * s
    }
    return out
  }
  const embed = W("model.embed_tokens.weight")
  let h = ids.map((id) => Float64Array.from(embed.subarray(id * H, (id + 1) * H)))
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}`
    const x = rms(h, W(`${p}.input_layernorm.weight`))
    const q = matmul(x, W(`${p}.self_attn.q_proj.weight`), H, NH * D, W(`${p}.self_attn.q_proj.bias`))
    const k = matmul(x, W(`${p}.self_attn.k_proj.weight`), H, KV * D, W(`${p}.self_attn.k_proj.bias`))
    const v = matmul(x, W(`${p}.self_attn.v_proj.weight`), H, KV * D, W(`${p}.self_attn.v_proj.bias`))
    const ctx = ids.map(() => new Float64Array(NH * D))
    for (let head = 0; head < NH; head++) {
      const kvHead = Math.floor(head / (NH / KV))
      for (let t = 0; t < n; t++) {
        const qv = rope(q[t]!, head, t)
        const scores: Array<number> = []
        for (let s = 0; s <= t; s++) {
          const kv = rope(k[s]!, kvHead, s)
          let dot = 0
          for (let i = 0; i < D; i++) dot += qv[i]! * kv[i]!
          scores.push(dot / Math.sqrt(D))
        }
        const max = Math.max(...scores)
        const e = scores.map((s) => Math.exp(s - max))
        const sum = e.reduce((a, b) => a + b, 0)
        for (let s = 0; s <= t; s++)
          for (let i = 0; i < D; i++) ctx[t]![head * D + i]! += (e[s]! / sum) * v[s]![kvHead * D + i]!
      }
    }
    const o = matmul(ctx, W(`${p}.self_attn.o_proj.weight`), NH * D, H)
    h = h.map((row, t) => row.map((val, i) => val + o[t]![i]!))
    const y = rms(h, W(`${p}.post_attention_layernorm.weight`))
    const gate = matmul(y, W(`${p}.mlp.gate_proj.weight`), H, I)
    const up = matmul(y, W(`${p}.mlp.up_proj.weight`), H, I)
    const act = gate.map((g, t) => g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[t]![i]!))
    const down = matmul(act, W(`${p}.mlp.down_proj.weight`), I, H)
    h = h.map((row, t) => row.map((val, i) => val + down[t]![i]!))
  }
  return matmul(rms(h, W("model.norm.weight")), W("lm_head.weight"), H, V)
}
