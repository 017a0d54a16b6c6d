import * as fs from "node:fs"
import * as path from "node:path"
import { ensureDirSync } from "../util/dirs.js"
import { stageFolder } from "../util/stagedFolder.js"
import {
  type BuildVariant,
  type Qwen2Shape,
  transpose,
  variantFile,
  type WeightSource,
  writeQwen2Variant
} from "./qwen2Builder.js"
import { type ChecksumThread, startChecksumThread } from "./checksumThread.js"
import { isFusedVariant, writeFusedQwen2Variant } from "./qwen2Fused.js"
import { type CheckpointConfig, readCheckpointConfig } from "./checkpointConfig.js"
import { CheckpointError, openCheckpointTensors, readTensorFloat32, type TensorEntry } from "./safetensors.js"

/**
 * `fastcot models convert`: a Hugging Face checkpoint of `Qwen2ForCausalLM` (Qwen2, Qwen2.5,
 * Qwen2.5-Math, DistilQwen: what LLaMA-Factory and ms-swift write after fine-tuning) turned into
 * an ONNX model folder that the local engine runs, with no Python. fp32, int8 and q4 are written
 * in the fused layout (see `writeFusedQwen2Variant`), fp16 and q4f16 (and every variant with
 * `layout: "exported"`) in the layout of the project's builder (an onnx-community export's, opset
 * 17); weights are read one tensor at a time from single or sharded safetensors in BF16, F16 or F32.
 */

const fail = (message: string): never => {
  throw new CheckpointError({ message })
}

/** The checkpoint's weights, as the graph takes them; a missing or misshapen tensor names itself. */
export const checkpointWeights = (
  dir: string,
  config: CheckpointConfig,
  onTensor: (entry: TensorEntry) => void = () => {}
): WeightSource => {
  const tensors = openCheckpointTensors(dir)
  const entry = (name: string, shape: ReadonlyArray<number>): TensorEntry => {
    const e = tensors.get(name)
    if (e === undefined) return fail(`${dir}: tensor ${name} is missing from the checkpoint`)
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))
      fail(`${e.file}: tensor ${name} has shape [${e.shape.join(", ")}], the config says [${shape.join(", ")}]`)
    onTensor(e)
    return e
  }
  const tied = config.tiedEmbeddings && !tensors.has("lm_head.weight")
  return {
    // Hugging Face keeps a linear layer's weight as [out, in]; MatMul takes [in, out].
    linear: (name, K, N) => transpose(readTensorFloat32(entry(name, [N, K])), N, K),
    vector: (name, n) => readTensorFloat32(entry(name, [n])),
    embedding: (name, vocab, hidden, into) => readTensorFloat32(entry(name, [vocab, hidden]), into),
    lmHead: (hidden, vocab) =>
      tied ? undefined : transpose(readTensorFloat32(entry("lm_head.weight", [vocab, hidden])), vocab, hidden),
    linearRows: (name, K, N, into) => readTensorFloat32(entry(name, [N, K]), into),
    linearEntry: (name, K, N) => entry(name, [N, K]),
    embeddingEntry: (name, vocab, hidden) => entry(name, [vocab, hidden]),
    lmHeadEntry: (hidden, vocab) => (tied ? undefined : entry("lm_head.weight", [vocab, hidden])),
    lmHeadRows: (hidden, vocab, into) =>
      tied ? undefined : readTensorFloat32(entry("lm_head.weight", [vocab, hidden]), into),
    tiedHead: tied
  }
}

/** Files copied from the checkpoint as they are: tokenizer, chat template, generation settings. */
const COPIED = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "chat_template.jinja",
  "chat_template.json"
]

export interface ConvertOptions {
  readonly source: string
  readonly out: string
  readonly variants?: ReadonlyArray<BuildVariant>
  /** Weights in `<file>_data` (default: when the fp32 weights exceed 256 MB; past 2 GB they must be). */
  readonly externalData?: boolean
  /** `fused` (default): onnxruntime's fused operators where the variant has them; `exported`: the exported layout. */
  readonly layout?: "fused" | "exported"
  readonly onProgress?: (message: string) => void
  /** Helper threads that share q4's quantizing (default: one fewer than the cores, at most 3; 0: none). */
  readonly quantizeHelpers?: number
}

export interface ConvertedModel {
  readonly dir: string
  readonly shape: Qwen2Shape
  readonly files: ReadonlyArray<string>
}

/** The checkpoint's weight files, in name order, as its recorded SHA-256 covers them. */
const weightFiles = (dir: string): Array<{ name: string; path: string }> =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".safetensors") || f === "model.safetensors.index.json")
    .sort()
    .map((name) => ({ name, path: path.join(dir, name) }))

/**
 * Converts a checkpoint folder into an ONNX model folder (`onnx/model*.onnx` and the copied
 * files). The folder is written beside `out` and moved into place once complete: a conversion
 * that fails (a broken shard, a full disk, a process killed) leaves `out` as it was, and the next
 * conversion to `out` removes what a killed one left.
 */
export const convertCheckpoint = (options: ConvertOptions): ConvertedModel => {
  const config = readCheckpointConfig(options.source)
  const staged = stageFolder(options.out)
  // Worked out beside the conversion, on a thread of its own.
  const checksum = startChecksumThread(weightFiles(options.source))
  try {
    const converted = writeConversion({ ...options, out: staged.path }, config, checksum)
    staged.publish()
    return { dir: options.out, shape: converted.shape, files: converted.files.map(staged.published) }
  } catch (e) {
    checksum.stop()
    staged.discard()
    throw e
  }
}

/** Writes the model folder into `options.out` (a staged folder). */
const writeConversion = (
  options: ConvertOptions,
  config: CheckpointConfig,
  checksum: ChecksumThread
): ConvertedModel => {
  const progress = options.onProgress ?? (() => {})
  ensureDirSync(path.join(options.out, "onnx"))
  for (const name of COPIED) {
    const from = path.join(options.source, name)
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(options.out, name))
  }
  if (!fs.existsSync(path.join(options.out, "tokenizer.json")))
    progress(`warning: ${options.source} has no tokenizer.json: copy one in before running the model`)
  const s = config.shape
  const fp32Bytes =
    4 *
    (s.vocabSize * s.hiddenSize * (config.tiedEmbeddings ? 1 : 2) +
      s.numLayers * (4 * s.hiddenSize * s.hiddenSize + 3 * s.hiddenSize * s.intermediateSize))
  const external = options.externalData ?? fp32Bytes > 256 * 2 ** 20
  const files: Array<string> = []
  const variants = options.variants ?? ["fp32"]
  const layouts: Record<string, "fused" | "exported"> = {}
  const total = [...openCheckpointTensors(options.source).values()].reduce((a, e) => a + e.end - e.begin, 0)
  for (const variant of variants) {
    progress(`writing onnx/${variantFile(variant)}`)
    // Progress by the checkpoint's bytes, each tensor counted once, every 5 %.
    const seen = new Set<string>()
    let done = 0
    let shown = 0
    const weights = checkpointWeights(options.source, config, (entry) => {
      if (seen.has(entry.name)) return
      seen.add(entry.name)
      done += entry.end - entry.begin
      const percent = Math.floor((100 * done) / Math.max(1, total))
      if (percent >= shown + 5 || done === total) {
        shown = percent
        progress(
          `onnx/${variantFile(variant)}: ${percent} % of the weights (${(done / 1e9).toFixed(2)} of ${(total / 1e9).toFixed(2)} GB, ${seen.size} tensors)`
        )
      }
    })
    const fused = options.layout !== "exported" && isFusedVariant(variant)
    layouts[variant] = fused ? "fused" : "exported"
    files.push(
      ...(fused
        ? writeFusedQwen2Variant(options.out, s, variant, weights, external, "fastcot-convert", options.quantizeHelpers)
        : writeQwen2Variant(options.out, s, variant, weights, external, "fastcot-convert"))
    )
  }
  fs.writeFileSync(
    path.join(options.out, "fastcot.json"),
    JSON.stringify(
      {
        convertedBy: "fastcot models convert",
        source: path.resolve(options.source),
        sourceSha256: checksum.digest(),
        variants,
        layouts,
        tiedEmbeddings: config.tiedEmbeddings
      },
      null,
      2
    ) + "\n"
  )
  return { dir: options.out, shape: s, files }
}
