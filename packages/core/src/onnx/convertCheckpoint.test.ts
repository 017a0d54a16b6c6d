import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { checkpointReferenceLogits } from "../test-support/qwen2Reference.js"
import { emptyPreparedCache, fullLogits, runPrepared } from "../test-support/onnxRuns.js"
import { buildQwen2Checkpoint } from "./checkpointBuilder.js"
import { convertCheckpoint } from "./convertCheckpoint.js"
import { inspectModel } from "./inspect.js"
import { LocalEngine } from "./engine.js"
import { LocalModel } from "./localModel.js"
import { GREEDY } from "./sampler.js"
import { buildQwen2Model } from "./qwen2Builder.js"
import { float32ToBf16, readSafetensorsHeader, readTensorFloat32, writeSafetensors } from "./safetensors.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fastcot-convert-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** Logits at every position of one sequence, from an empty cache, through the file's own graph. */
const logitsOf = async (dir: string, ids: ReadonlyArray<number>, variant?: string): Promise<Float32Array> => {
  const m = await Effect.runPromise(LocalModel.load(dir, { variant, threads: 1, graph: "as-exported" }))
  try {
    return await fullLogits(m, ids)
  } finally {
    await m.release()
  }
}

const PROMPT = Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 200)
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!))
  return worst
}
const argmaxRows = (logits: ArrayLike<number>, V: number) =>
  Array.from({ length: logits.length / V }, (_, r) => {
    let best = 0
    for (let j = 1; j < V; j++) if (logits[r * V + j]! > logits[r * V + best]!) best = j
    return best
  })

/** Greedy rows that match token for token, their log-probabilities within `tolerance`. */
const expectSameGeneration = (
  got: ReadonlyArray<{
    readonly ids: ReadonlyArray<number>
    readonly logprobs?: ReadonlyArray<{ readonly logprob: number }>
  }>,
  want: typeof got,
  tolerance: number,
  label: string
) => {
  for (const [i, r] of got.entries()) {
    expect(r.ids, `${label} row ${i}`).toEqual(want[i]!.ids)
    const diff = Math.max(...r.logprobs!.map((lp, t) => Math.abs(lp.logprob - want[i]!.logprobs![t]!.logprob)))
    expect(diff, `${label} row ${i}`).toBeLessThan(tolerance)
  }
}

describe("fastcot models convert: a Hugging Face Qwen2 checkpoint to an ONNX folder (tiny random checkpoints)", () => {
  it("fp32, tied, one file: logits equal the reference forward pass of the checkpoint, and the built model of the same weights", async () => {
    const src = path.join(tmp, "fp32-tied")
    const out = path.join(tmp, "fp32-tied-onnx")
    const { shape } = buildQwen2Checkpoint({ dir: src, seed: 5, dtype: "F32" })
    const progress: Array<string> = []
    convertCheckpoint({ source: src, out, variants: ["fp32"], onProgress: (m) => progress.push(m) })
    expect(progress[0]).toBe("writing onnx/model.onnx")
    // Then by the weights' bytes, every 5 % or more, ending at every tensor read.
    const percents = progress.slice(1).map((m) => Number(/: (\d+) % of the weights/.exec(m)?.[1]))
    expect(percents.length).toBeGreaterThan(3)
    expect(percents.every((p, i) => i === 0 || p >= percents[i - 1]! + 5 || p === 100)).toBe(true)
    const files = fs.readdirSync(src).filter((f) => f.endsWith(".safetensors"))
    const tensors = files.flatMap((f) => readSafetensorsHeader(path.join(src, f)))
    expect(progress.at(-1)).toContain(`100 % of the weights`)
    expect(progress.at(-1)).toContain(`${tensors.length} tensors)`)
    const V = shape.vocabSize
    const converted = await logitsOf(out, PROMPT)
    const reference = checkpointReferenceLogits(src, PROMPT)
    for (let t = 0; t < PROMPT.length; t++)
      expect(maxDiff(converted.subarray(t * V, (t + 1) * V), reference[t]!)).toBeLessThan(1e-4)
    // The project's builder, given the same seed, writes the same weights: the same logits.
    const built = path.join(tmp, "built")
    buildQwen2Model({ dir: built, seed: 5 })
    expect(maxDiff(await logitsOf(built, PROMPT), converted)).toBeLessThan(1e-6)
    const record = JSON.parse(fs.readFileSync(path.join(out, "fastcot.json"), "utf8"))
    expect(record).toMatchObject({ convertedBy: "fastcot models convert", variants: ["fp32"], tiedEmbeddings: true })
    expect(record.sourceSha256).toMatch(/^[0-9a-f]{64}$/)
    const report = await Effect.runPromise(inspectModel(out, { graphs: true }))
    expect(report.origin).toBe(
      `converted by fastcot from ${path.resolve(src)} (weights sha256 ${record.sourceSha256.slice(0, 12)}…)`
    )
    expect(report.variants.map((v) => [v.name, v.graph?.runnable])).toEqual([["fp32", true]])
    expect((await Effect.runPromise(inspectModel(built))).origin).toBeNull()
    for (const f of ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"])
      expect(fs.existsSync(path.join(out, f))).toBe(true)
  })

  it("decodes 32 cached steps after a 64-token prompt with the reference's logits at every step", async () => {
    const src = path.join(tmp, "cached")
    const out = path.join(tmp, "cached-onnx")
    buildQwen2Checkpoint({ dir: src, seed: 11, dtype: "BF16", tiedEmbeddings: false })
    convertCheckpoint({ source: src, out })
    const m = await Effect.runPromise(LocalModel.load(out, { threads: 1 }))
    try {
      expect(m.signature.prepared).toBe(true)
      const ids = [...PROMPT]
      let result = await runPrepared(m, ids, emptyPreparedCache(m))
      const stepLogits: Array<Float32Array> = []
      for (let step = 0; step < 32; step++) {
        stepLogits.push(result.logits)
        const next = argmaxRows(result.logits, result.logits.length)[0]!
        ids.push(next)
        result = await runPrepared(m, [next], result.cache)
      }
      // The reference recomputes the whole sequence without a cache.
      const reference = checkpointReferenceLogits(src, ids.slice(0, PROMPT.length + 31))
      for (let step = 0; step < 32; step++)
        expect(maxDiff(stepLogits[step]!, reference[PROMPT.length - 1 + step]!), `step ${step}`).toBeLessThan(1e-4)
    } finally {
      await m.release()
    }
  })

  it("the fused layout: onnxruntime's fused operators, the exported layout's logits and greedy tokens, in a batch and under continuous batching", async () => {
    const src = path.join(tmp, "layouts")
    buildQwen2Checkpoint({ dir: src, seed: 21, dtype: "BF16", tiedEmbeddings: false })
    const fusedDir = path.join(tmp, "layouts-fused")
    const exportedDir = path.join(tmp, "layouts-exported")
    // The fused folder's weights go to external data (written by the writer thread), q4's quantized
    // with two helper threads; the exported folder's are inline and quantized on this thread.
    convertCheckpoint({
      source: src,
      out: fusedDir,
      variants: ["fp32", "int8", "q4"],
      externalData: true,
      quantizeHelpers: 2
    })
    expect(fs.existsSync(path.join(fusedDir, "onnx", "model_q4.onnx_data"))).toBe(true)
    convertCheckpoint({
      source: src,
      out: exportedDir,
      variants: ["fp32", "int8", "q4"],
      layout: "exported",
      externalData: false,
      quantizeHelpers: 0
    })
    expect(JSON.parse(fs.readFileSync(path.join(fusedDir, "fastcot.json"), "utf8")).layouts).toEqual({
      fp32: "fused",
      int8: "fused",
      q4: "fused"
    })
    const report = await Effect.runPromise(inspectModel(fusedDir, { graphs: true }))
    const q4 = report.variants.find((v) => v.name === "q4")!.graph!
    expect(q4).toMatchObject({ runnable: true, prepared: true })
    // Per layer: two norms, the packed QKV, o, gate-up and down products, two rotaries, two attention products.
    expect(q4.operators).toBe(
      "MatMulNBits ×9, FusedMatMul ×4, RotaryEmbedding ×4, SkipSimplifiedLayerNormalization ×4, SimplifiedLayerNormalization ×1"
    )
    const exported = (await Effect.runPromise(inspectModel(exportedDir, { graphs: true }))).variants
    expect(exported.every((v) => v.graph?.prepared === false)).toBe(true)
    // The same requests, batched (left padding, rows of different lengths), through both layouts.
    for (const variant of ["fp32", "int8", "q4"]) {
      const [f, e] = await Promise.all(
        [fusedDir, exportedDir].map((dir) => Effect.runPromise(LocalModel.load(dir, { variant, threads: 1 })))
      )
      try {
        const requests = [PROMPT.slice(0, 40), PROMPT.slice(10, 64), PROMPT.slice(5, 12)].map((promptIds) => ({
          promptIds,
          maxNewTokens: 24,
          sampling: GREEDY,
          logprobs: 1
        }))
        const [fr, er] = [await f!.generate(requests), await e!.generate(requests)]
        expectSameGeneration(fr, er, variant === "fp32" ? 1e-4 : 0.02, variant)
        // Two rows at a time: the third joins the running batch when a slot frees.
        const engine = new LocalEngine(f!, 2)
        const streamed = await Promise.all(
          requests.map((r) => engine.submit({ ...r, maxNewTokens: 8 + (r.promptIds.length % 9) }))
        )
        const alone = await Promise.all(
          requests.map((r) => e!.generate([{ ...r, maxNewTokens: 8 + (r.promptIds.length % 9) }]))
        )
        expect(streamed.map((r) => r.ids)).toEqual(alone.map(([r]) => r!.ids))
      } finally {
        await Promise.all([f!.release(), e!.release()])
      }
    }
  })

  it("a long prompt prefills in chunks over the cache: the same tokens and log-probabilities as in one run, in both layouts", async () => {
    const src = path.join(tmp, "chunked")
    buildQwen2Checkpoint({ dir: src, seed: 23, dtype: "F32" })
    for (const layout of ["fused", "exported"] as const) {
      const out = path.join(tmp, `chunked-${layout}`)
      convertCheckpoint({ source: src, out, layout })
      const [whole, chunked] = await Promise.all(
        [undefined, 16].map((prefillChunk) => Effect.runPromise(LocalModel.load(out, { threads: 1, prefillChunk })))
      )
      try {
        // Rows of 64, 50 and 7 tokens, left-padded: chunk boundaries fall inside the padding too.
        const requests = [PROMPT, PROMPT.slice(14), PROMPT.slice(3, 10)].map((promptIds) => ({
          promptIds,
          maxNewTokens: 12,
          sampling: GREEDY,
          logprobs: 1
        }))
        const [a, b] = [await whole!.generate(requests), await chunked!.generate(requests)]
        for (const [i, r] of b.entries()) {
          expect(r.ids, `${layout} row ${i}`).toEqual(a[i]!.ids)
          for (const [t, lp] of r.logprobs!.entries())
            expect(Math.abs(lp.logprob - a[i]!.logprobs![t]!.logprob), `${layout} row ${i} token ${t}`).toBeLessThan(
              1e-4
            )
        }
      } finally {
        await Promise.all([whole!.release(), chunked!.release()])
      }
    }
  })

  it("tied q4: embeddings streamed into the graph and the head quantized from the file (BF16 and F16), the exported layout's tokens", async () => {
    for (const dtype of ["BF16", "F16"] as const) {
      const src = path.join(tmp, `tied-q4-${dtype}`)
      buildQwen2Checkpoint({ dir: src, seed: 5, dtype, shards: 2, tiedEmbeddings: true })
      const fusedDir = path.join(tmp, `tied-q4-${dtype}-fused`)
      const exportedDir = path.join(tmp, `tied-q4-${dtype}-exported`)
      convertCheckpoint({ source: src, out: fusedDir, variants: ["q4"], externalData: true, quantizeHelpers: 1 })
      convertCheckpoint({ source: src, out: exportedDir, variants: ["q4"], layout: "exported" })
      const [f, e] = await Promise.all(
        [fusedDir, exportedDir].map((dir) => Effect.runPromise(LocalModel.load(dir, { variant: "q4", threads: 1 })))
      )
      try {
        const requests = [PROMPT.slice(0, 40), PROMPT.slice(7, 30)].map((promptIds) => ({
          promptIds,
          maxNewTokens: 16,
          sampling: GREEDY,
          logprobs: 1
        }))
        expectSameGeneration(await f!.generate(requests), await e!.generate(requests), 0.02, `q4 ${dtype}`)
      } finally {
        await Promise.all([f!.release(), e!.release()])
      }
    }
  })

  it("bf16, untied, sharded: converts, and its logits equal the reference on the bf16 weights", async () => {
    const src = path.join(tmp, "bf16-untied")
    const out = path.join(tmp, "bf16-untied-onnx")
    const { shape } = buildQwen2Checkpoint({ dir: src, seed: 9, dtype: "BF16", shards: 3, tiedEmbeddings: false })
    expect(fs.readdirSync(src).filter((f) => f.endsWith(".safetensors"))).toHaveLength(3)
    expect(readSafetensorsHeader(path.join(src, "model-00001-of-00003.safetensors"))[0]!.dtype).toBe("BF16")
    convertCheckpoint({ source: src, out, variants: ["fp32", "int8", "q4"] })
    const V = shape.vocabSize
    const fp32 = await logitsOf(out, PROMPT)
    const reference = checkpointReferenceLogits(src, PROMPT)
    for (let t = 0; t < PROMPT.length; t++)
      expect(maxDiff(fp32.subarray(t * V, (t + 1) * V), reference[t]!)).toBeLessThan(1e-4)
    // Quantized variants, measured on these random weights (logits within ±0.68): int8 (weights
    // within ±63, see INT8_WEIGHT_LIMIT) moves a logit by 0.0098 at most and keeps every greedy
    // token but at near ties, where float32's top two are closer than 0.01 (1 of 64 here, 0.0005
    // apart); q4 by 0.08, keeping 50 of 64 (random weights give near-flat logits, where a small
    // shift swaps the top two).
    const greedy = argmaxRows(fp32, V)
    const margins = Array.from({ length: PROMPT.length }, (_, t) => {
      const [first, second] = [...fp32.subarray(t * V, (t + 1) * V)].sort((a, b) => b - a)
      return first! - second!
    })
    for (const [variant, tolerance, agreement, nearTie] of [
      ["int8", 0.02, 1, 0.01],
      ["q4", 0.12, 0.7, 0]
    ] as const) {
      const q = await logitsOf(out, PROMPT, variant)
      expect(maxDiff(q, fp32), variant).toBeLessThan(tolerance)
      const tokens = argmaxRows(q, V)
      const decided = margins.flatMap((margin, t) => (margin >= nearTie ? [t] : []))
      const same = decided.filter((t) => tokens[t] === greedy[t]).length
      expect(same / decided.length, variant).toBeGreaterThanOrEqual(agreement)
    }
  })

  it("reads F32, F16 and BF16 tensors back as written (bfloat16 rounded to nearest even, as PyTorch rounds)", () => {
    expect([...float32ToBf16(Float32Array.from([1, -2.5, Math.PI, 1.00390625, 1.01171875]))]).toEqual([
      0x3f80, 0xc020, 0x4049, 0x3f80, 0x3f82
    ])
    const values = Float32Array.from([0.5, -1.25, 3, 1024, -0.0078125])
    for (const dtype of ["F32", "F16", "BF16"] as const) {
      const file = path.join(tmp, `t-${dtype}.safetensors`)
      writeSafetensors(file, [{ name: "w", shape: [5], values }], dtype)
      const [entry] = readSafetensorsHeader(file)
      expect(entry).toMatchObject({ name: "w", dtype, shape: [5] })
      expect([...readTensorFloat32(entry!)]).toEqual([...values])
      // Into an array the caller keeps: written at its start, in place, the rest untouched.
      const kept = new Float32Array(8).fill(7)
      const read = readTensorFloat32(entry!, kept.subarray(1))
      expect(read.buffer).toBe(kept.buffer)
      expect([...kept]).toEqual([7, ...values, 7, 7])
      expect(() => readTensorFloat32(entry!, new Float32Array(4))).toThrow(/w has 5 values, the array given holds 4/)
    }
  })

  it("names the file and the tensor when a shard is broken or a tensor is missing, and the architecture it refuses", () => {
    const src = path.join(tmp, "broken")
    buildQwen2Checkpoint({ dir: src, seed: 2, dtype: "F16", shards: 2 })
    const shard = path.join(src, "model-00002-of-00002.safetensors")
    const bytes = fs.readFileSync(shard)
    fs.writeFileSync(shard, bytes.subarray(0, bytes.length - 100))
    expect(() => convertCheckpoint({ source: src, out: path.join(tmp, "broken-onnx") })).toThrow(
      /model-00002-of-00002\.safetensors: tensor .+: its data .* runs past the end of the file/
    )
    // Nothing is left behind: no folder, no staged one beside it.
    expect(fs.existsSync(path.join(tmp, "broken-onnx"))).toBe(false)
    expect(fs.readdirSync(tmp).filter((f) => f.includes("broken-onnx"))).toEqual([])
    // A folder that was there keeps what it held, byte for byte.
    const kept = path.join(tmp, "kept-onnx")
    fs.mkdirSync(path.join(kept, "onnx"), { recursive: true })
    fs.writeFileSync(path.join(kept, "onnx", "model.onnx"), "an earlier model")
    fs.writeFileSync(path.join(kept, "notes.txt"), "mine")
    expect(() => convertCheckpoint({ source: src, out: kept, variants: ["fp32", "q4"] })).toThrow(/runs past the end/)
    expect(fs.readdirSync(kept).sort()).toEqual(["notes.txt", "onnx"])
    expect(fs.readdirSync(path.join(kept, "onnx"))).toEqual(["model.onnx"])
    expect(fs.readFileSync(path.join(kept, "onnx", "model.onnx"), "utf8")).toBe("an earlier model")
    expect(fs.readdirSync(tmp).filter((f) => f.includes("kept-onnx"))).toEqual(["kept-onnx"])

    const missing = path.join(tmp, "missing")
    buildQwen2Checkpoint({ dir: missing, seed: 2, dtype: "F32" })
    const index = JSON.parse(fs.readFileSync(path.join(missing, "config.json"), "utf8"))
    // One layer more than the file holds: its first tensor is missing.
    fs.writeFileSync(path.join(missing, "config.json"), JSON.stringify({ ...index, num_hidden_layers: 3 }))
    expect(() => convertCheckpoint({ source: missing, out: path.join(tmp, "missing-onnx") })).toThrow(
      /tensor model\.layers\.2\.input_layernorm\.weight is missing from the checkpoint/
    )

    const llama = path.join(tmp, "llama")
    buildQwen2Checkpoint({ dir: llama, seed: 2, dtype: "F32" })
    fs.writeFileSync(
      path.join(llama, "config.json"),
      JSON.stringify({ ...index, architectures: ["LlamaForCausalLM"], model_type: "llama" })
    )
    expect(() => convertCheckpoint({ source: llama, out: path.join(tmp, "llama-onnx") })).toThrow(
      /config\.json: architectures \["LlamaForCausalLM"\]: fastcot converts Qwen2ForCausalLM/
    )
  })
})
