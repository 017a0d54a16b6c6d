import { Args, Command, Options } from "@effect/cli"
import { benchModel, convertCheckpoint, inspectModel, type ModelBenchRow, type ModelReport } from "@fastcot/core"
import { buildQwen2Model, type BuildVariant, QWEN25_05B_SHAPE } from "@fastcot/core/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { usage } from "../failure.js"
import { jsonOption, stderr, stdout, listOption, choiceOption } from "../shared.js"

const gb = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`
const count = (n: number) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e3).toFixed(1)}K`

/** What the runtime changes in a runnable graph, and the flag that keeps the file's own arithmetic. */
const graphNotes = (g: NonNullable<ModelReport["variants"][number]["graph"]>): string =>
  [
    ...((g.f16Widened ?? 0) > 0 ? ["float16 computed in float32, --f16-compute as-exported keeps float16"] : []),
    ...((g.int8Products ?? 0) > 0
      ? [`${g.int8Products} 4-bit products on integer kernels, --q4-compute as-exported keeps the file's float32`]
      : []),
    ...(g.prepared === true ? [`written by fastcot models convert, fused: ${g.operators}`] : []),
    ...((g.rotaryFused ?? 0) > 0
      ? [`${g.rotaryFused} rotary embeddings fused, --rotary as-exported keeps the file's nodes`]
      : [])
  ]
    .map((n) => `; ${n}`)
    .join("")

export const formatModelReport = (r: ModelReport): string =>
  [
    `model ${r.dir}`,
    `  architecture     ${r.architecture} (${r.modelType})`,
    `  parameters       ${r.parameters === null ? "unknown" : `~${count(r.parameters)}`}`,
    `  shape            hidden ${r.hiddenSize}, ${r.layers} layers, ${r.heads} heads over ${r.kvHeads} KV heads of ${r.headDim}, vocab ${r.vocabSize}`,
    `  context length   ${r.contextLength ?? "unknown"}`,
    `  trained dtype    ${r.torchDtype ?? "unknown"}`,
    ...(r.origin === null ? [] : [`  origin           ${r.origin}`]),
    `  chat template    ${r.chatTemplate ? "yes" : "no (prompts are sent as plain text)"}`,
    `  EOS ids          ${r.eosTokenIds.join(", ") || "none"}`,
    "  variants",
    ...(r.variants.length === 0 ? ["    none"] : []),
    ...r.variants.map(
      (v) =>
        `    ${v.name.padEnd(9)} ${gb(v.bytes).padStart(10)}  ${v.weights}${v.externalData.length > 0 ? `, external data in ${v.externalData.length} file(s)` : ""}` +
        (v.graph === undefined
          ? ""
          : v.graph.runnable
            ? `, runnable (${v.graph.layers} layers, ${v.graph.kvType} cache${graphNotes(v.graph)})`
            : `, NOT runnable: ${v.graph.message}`)
    ),
    ...(r.missing.length > 0 ? ["  missing", ...r.missing.map((m) => `    ${m}`)] : ["  missing          nothing"]),
    ...r.notes.map((n) => `  note: ${n}`)
  ].join("\n")

const dir = Args.directory({ name: "DIR", exists: "either" }).pipe(
  Args.withDescription(
    "A model folder (config.json, tokenizer.json, onnx/), or a Hugging Face cache entry (models--org--name)."
  )
)
const quick = Options.boolean("quick").pipe(
  Options.withDescription("Do not open the ONNX files (faster on big models; graphs go unchecked).")
)

const inspect = Command.make("inspect", { dir, json: jsonOption, quick }, (args) =>
  Effect.gen(function* () {
    const report = yield* inspectModel(args.dir, { graphs: !args.quick }).pipe(Effect.mapError((e) => usage(e.message)))
    yield* stdout(args.json ? JSON.stringify(report, null, 2) : formatModelReport(report))
  })
).pipe(
  Command.withDescription(
    "Architecture, parameters, weight variants and their types, context length, chat template, what is missing and whether each graph can run.\n" +
      "Examples:\n  fastcot models inspect ./models/Qwen2.5-0.5B-Instruct\n  fastcot models inspect ~/.cache/huggingface/hub/models--onnx-community--Qwen2.5-0.5B-Instruct --json"
  )
)

const out = Args.directory({ name: "DIR", exists: "either" }).pipe(
  Args.withDescription("Where to write the model folder.")
)
const shape = choiceOption("shape", ["tiny", "qwen2.5-0.5b"]).pipe(
  Options.withDefault("tiny"),
  Options.withDescription(
    "tiny: 2 layers, for tests and the demo; qwen2.5-0.5b: Qwen2.5-0.5B's shapes (about 2.5 GB in fp32)."
  )
)
const BUILD_VARIANTS = ["fp32", "int8", "q4", "fp16", "q4f16"]
const variants = listOption("variants", `Weight files to write (default fp32): ${BUILD_VARIANTS.join(", ")}.`)
const seed = Options.integer("seed").pipe(
  Options.withDefault(1),
  Options.withDescription("Seed of the random weights.")
)

/** The variants asked for (default fp32), or a usage error naming the unknown ones. */
const variantsOf = (asked: ReadonlyArray<string>) => {
  const vs = asked.length > 0 ? asked : ["fp32"]
  const bad = vs.filter((v) => !BUILD_VARIANTS.includes(v))
  return bad.length > 0
    ? Effect.fail(usage(`--variants: unknown ${bad.join(", ")}; known: ${BUILD_VARIANTS.join(", ")}`))
    : Effect.succeed(vs as Array<BuildVariant>)
}

const build = Command.make("build", { out, shape, variants, seed }, (args) =>
  Effect.gen(function* () {
    const vs = yield* variantsOf(args.variants)
    const built = yield* Effect.try({
      try: () =>
        buildQwen2Model({
          dir: args.out,
          variants: vs,
          seed: args.seed,
          ...(args.shape === "tiny" ? {} : { shape: QWEN25_05B_SHAPE }),
          onProgress: (m) => process.stderr.write(`${m}\n`)
        }),
      catch: (e) => usage(e instanceof Error ? e.message : String(e))
    })
    yield* stderr(
      "random weights: the text this model writes is meaningless; it exists to exercise the real code paths"
    )
    yield* stdout(built.files.join("\n"))
  })
).pipe(
  Command.withDescription(
    "Write a Qwen2-architecture ONNX model folder with random weights (onnx-community layout), for tests, demos and benchmarks.\n" +
      "Examples:\n  fastcot models build ./tiny-model\n  fastcot models build ./qwen-shape --shape qwen2.5-0.5b --variants fp32,int8,q4"
  )
)

const checkpoint = Args.directory({ name: "checkpoint", exists: "yes" }).pipe(
  Args.withDescription("A Hugging Face checkpoint folder: config.json, model.safetensors or its shards, the tokenizer.")
)

const layout = choiceOption("layout", ["fused", "exported"] as const).pipe(
  Options.withDefault("fused" as const),
  Options.withDescription(
    "fused (default): onnxruntime's fused operators for fp32, int8 and q4, loaded as written; exported: the onnx-community export's layout, for comparisons."
  )
)

const convertThreads = Options.integer("threads").pipe(
  Options.optional,
  Options.withDescription(
    "Threads that read and quantize q4's weights, this one included (default: one a core, at most 4)."
  )
)

const convert = Command.make("convert", { checkpoint, out, variants, layout, threads: convertThreads }, (args) =>
  Effect.gen(function* () {
    const vs = yield* variantsOf(args.variants)
    const threads = Option.getOrUndefined(args.threads)
    if (threads !== undefined && threads < 1) return yield* Effect.fail(usage(`--threads: ${threads}: at least 1`))
    const converted = yield* Effect.try({
      try: () =>
        convertCheckpoint({
          source: args.checkpoint,
          out: args.out,
          variants: vs,
          layout: args.layout,
          ...(threads === undefined ? {} : { quantizeHelpers: threads - 1 }),
          onProgress: (m) => process.stderr.write(`${m}\n`)
        }),
      // A checkpoint that cannot be read is bad input: the message names the file and the tensor.
      catch: (e) => usage(e instanceof Error ? e.message : String(e))
    })
    yield* stdout(converted.files.join("\n"))
  })
).pipe(
  Command.withDescription(
    "Convert a Hugging Face Qwen2 checkpoint (what LLaMA-Factory or ms-swift writes after training) into an ONNX model folder the local engine runs, without Python.\n" +
      "Examples:\n  fastcot models convert ./saves/qwen2.5-7b-sft ./qwen-sft-onnx --variants fp32,q4\n  fastcot models convert ./saves/qwen2.5-7b-sft ./qwen-sft-onnx --variants q4 --threads 2\n  fastcot eval --model onnx:./qwen-sft-onnx#q4 --bench math500"
  )
)

export const formatBenchRows = (rows: ReadonlyArray<ModelBenchRow>): string => {
  const head = ["variant", "load", "RSS", "TTFT", "prefill tok/s", "decode tok/s", "batch tok/s"]
  const body = rows.map((r) => [
    `${r.variant}${(r.f16Widened ?? 0) > 0 ? " (in float32)" : ""}${r.q4Compute !== undefined ? ` (${r.q4Compute === "int8" && r.int8Products === 0 ? "as the file says" : r.q4Compute})` : ""}${(r.packedProducts ?? 0) > 0 ? " packed" : ""}${r.rotary === "as-exported" ? " rotary as exported" : ""}`,
    `${r.loadSeconds.toFixed(1)} s`,
    r.residentMiB === undefined ? "-" : `${r.residentMiB.toFixed(0)} MiB`,
    `${r.ttftMs.toFixed(0)} ms`,
    r.prefillTokensPerSecond.toFixed(0),
    r.decodeTokensPerSecond.toFixed(1),
    r.batchTokensPerSecond === undefined ? "-" : r.batchTokensPerSecond.toFixed(1)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  const first = rows[0]
  return [
    ...(first === undefined
      ? []
      : [
          `${first.promptTokens}-token prompt, ${first.newTokens} new tokens, greedy, ${first.threads} threads; medians of the timed rounds; each variant in a process of its own (RSS: its resident memory after the runs)`
        ]),
    line(head),
    ...body.map(line)
  ].join("\n")
}

const benchVariants = listOption("variants", "Variants to time (default: every one in the folder).")
const prompt = Options.integer("prompt").pipe(
  Options.withDefault(128),
  Options.withDescription("Prompt length in tokens.")
)
const newTokens = Options.integer("new").pipe(
  Options.withDefault(32),
  Options.withDescription("New tokens per generation.")
)
const batch = Options.integer("batch").pipe(
  Options.withDefault(4),
  Options.withDescription("Prompts decoded together for the batched column (0: skip it).")
)
const rounds = Options.integer("rounds").pipe(
  Options.withDefault(3),
  Options.withDescription("Timed rounds after a warm-up (the median is shown).")
)
const benchThreads = Options.integer("threads").pipe(
  Options.optional,
  Options.withDescription("Intra-op threads (default: every core).")
)
const benchQ4 = choiceOption("q4-compute", ["int8", "as-exported", "both"]).pipe(
  Options.withDefault("int8" as const),
  Options.withDescription("q4 variants: time them on integer kernels, with the file's own arithmetic, or both.")
)

const benchPack = choiceOption("pack-products", ["off", "on", "both"]).pipe(
  Options.withDefault("off" as const),
  Options.withDescription(
    "Pack the products that read one input into one (query/key/value, gate/up): time without, with, or both."
  )
)

const benchF16 = choiceOption("f16-compute", ["auto", "float32", "as-exported", "both"]).pipe(
  Options.withDefault("auto" as const),
  Options.withDescription(
    "float16 variants (fp16, q4f16): time them computed in float32, with float16 arithmetic, both, or as auto picks."
  )
)

const benchRotary = choiceOption("rotary", ["fused", "as-exported", "both"]).pipe(
  Options.withDefault("fused" as const),
  Options.withDescription("Rotary embeddings: time them fused into one node each, with the file's own nodes, or both.")
)

const bench = Command.make(
  "bench",
  {
    dir,
    variants: benchVariants,
    prompt,
    newTokens,
    batch,
    rounds,
    threads: benchThreads,
    q4Compute: benchQ4,
    packProducts: benchPack,
    f16Compute: benchF16,
    rotary: benchRotary,
    json: jsonOption
  },
  (args) =>
    Effect.gen(function* () {
      if (args.prompt < 1 || args.newTokens < 2 || args.batch < 0 || args.rounds < 1)
        return yield* usage("--prompt must be at least 1, --new at least 2, --rounds at least 1 and --batch at least 0")
      const rows = yield* benchModel(args.dir, {
        variants: args.variants.length > 0 ? args.variants : undefined,
        promptTokens: args.prompt,
        newTokens: args.newTokens,
        batch: args.batch,
        rounds: args.rounds,
        threads: Option.getOrUndefined(args.threads),
        q4Compute: args.q4Compute,
        packProducts: args.packProducts === "both" ? "both" : args.packProducts === "on",
        f16Compute: args.f16Compute,
        rotary: args.rotary,
        isolate: true,
        onProgress: (line) => process.stderr.write(`${line}\n`)
      }).pipe(Effect.mapError((e) => usage(e.message)))
      yield* stdout(args.json ? JSON.stringify(rows, null, 2) : formatBenchRows(rows))
    })
).pipe(
  Command.withDescription(
    "Time a local model on this machine, variant by variant (each in a process of its own), as generation runs it: load time, resident memory, time to first token, prefill, decode and batched tokens/s.\n" +
      "Examples:\n  fastcot models bench ./models/Qwen2.5-0.5B-Instruct\n  fastcot models bench ./models/Qwen2.5-0.5B-Instruct --variants q4 --q4-compute both --prompt 512\n  fastcot models bench ./models/Qwen2.5-0.5B-Instruct --variants int8 --pack-products both --threads 16\n  fastcot models bench ./models/Qwen2.5-0.5B-Instruct --variants int8 --rotary both"
  )
)

export const modelsCommand = Command.make("models").pipe(
  Command.withDescription("Local model folders: inspect them, time them, convert a checkpoint, or build small ones."),
  Command.withSubcommands([inspect, bench, build, convert])
)
