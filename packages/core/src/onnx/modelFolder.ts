import * as fs from "node:fs"
import * as path from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { describeParseError } from "../schema/errors.js"
import { pickChatTemplate } from "../chat/chatTemplateCheck.js"
import { isCheckpointFolder } from "./safetensors.js"

/** A model folder that cannot be used, with the file (and field) at fault and what to do. */
export class ModelFolderError extends Data.TaggedError("ModelFolderError")<{
  readonly path: string
  readonly message: string
}> {}

/** The fields of config.json the local runtime reads (Hugging Face names). */
export const ModelConfig = Schema.Struct({
  model_type: Schema.String,
  architectures: Schema.optional(Schema.Array(Schema.String)),
  hidden_size: Schema.Int.pipe(Schema.positive()),
  num_hidden_layers: Schema.Int.pipe(Schema.positive()),
  num_attention_heads: Schema.Int.pipe(Schema.positive()),
  num_key_value_heads: Schema.optional(Schema.Int.pipe(Schema.positive())),
  head_dim: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.positive()))),
  intermediate_size: Schema.optional(Schema.Int.pipe(Schema.positive())),
  vocab_size: Schema.Int.pipe(Schema.positive()),
  max_position_embeddings: Schema.optional(Schema.Int.pipe(Schema.positive())),
  tie_word_embeddings: Schema.optional(Schema.Boolean),
  torch_dtype: Schema.optional(Schema.NullOr(Schema.String)),
  /** transformers 5's name for `torch_dtype`. */
  dtype: Schema.optional(Schema.NullOr(Schema.String)),
  eos_token_id: Schema.optional(Schema.NullOr(Schema.Union(Schema.Int, Schema.Array(Schema.Int))))
})
export type ModelConfig = typeof ModelConfig.Type

export const GenerationConfig = Schema.Struct({
  eos_token_id: Schema.optional(Schema.NullOr(Schema.Union(Schema.Int, Schema.Array(Schema.Int)))),
  pad_token_id: Schema.optional(Schema.NullOr(Schema.Int)),
  do_sample: Schema.optional(Schema.Boolean),
  temperature: Schema.optional(Schema.Number),
  top_p: Schema.optional(Schema.Number),
  top_k: Schema.optional(Schema.Int),
  min_p: Schema.optional(Schema.Number),
  repetition_penalty: Schema.optional(Schema.Number),
  max_new_tokens: Schema.optional(Schema.Int)
})
export type GenerationConfig = typeof GenerationConfig.Type

/** One weight file of the folder: `onnx/model.onnx` is "fp32", `onnx/model_q4.onnx` is "q4", and so on. */
export interface ModelVariant {
  readonly name: string
  readonly file: string
  /** The .onnx file plus its external data files. */
  readonly bytes: number
  readonly externalData: ReadonlyArray<string>
}

export interface ModelFolder {
  readonly dir: string
  readonly config: ModelConfig
  readonly generation: GenerationConfig
  readonly tokenizerJson: Record<string, unknown>
  readonly tokenizerConfig: Record<string, unknown>
  readonly chatTemplate: string | undefined
  readonly variants: ReadonlyArray<ModelVariant>
  /** Files a complete export has and this folder lacks (generation_config.json is optional). */
  readonly missing: ReadonlyArray<string>
  readonly headDim: number
  readonly numKvHeads: number
}

/** Variants as onnx-community names them, in the order the default is chosen. */
const DEFAULT_ORDER = ["fp32", "q4", "int8", "quantized", "uint8", "q8", "bnb4", "q4f16", "fp16"]

/**
 * Finds the model folder a path names: the folder itself, or, for a Hugging Face cache entry
 * (`models--org--name`), the snapshot that `refs/main` points to (else the newest).
 */
export const resolveModelDir = (p: string): Either.Either<string, string> => {
  const abs = path.resolve(p)
  if (!fs.existsSync(abs)) return Either.left(`${abs}: no such folder`)
  if (fs.existsSync(path.join(abs, "config.json"))) return Either.right(abs)
  const snapshots = path.join(abs, "snapshots")
  if (fs.existsSync(snapshots)) {
    const ref = path.join(abs, "refs", "main")
    if (fs.existsSync(ref)) {
      const rev = fs.readFileSync(ref, "utf8").trim()
      if (fs.existsSync(path.join(snapshots, rev, "config.json"))) return Either.right(path.join(snapshots, rev))
    }
    const revs = fs
      .readdirSync(snapshots)
      .map((r) => path.join(snapshots, r))
      .filter((r) => fs.existsSync(path.join(r, "config.json")))
      .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)
    if (revs[0] !== undefined) return Either.right(revs[0])
    return Either.left(`${abs}: a Hugging Face cache entry with no complete snapshot (no config.json under snapshots/)`)
  }
  return Either.left(
    `${abs}: not a model folder (no config.json). Point at the folder that holds config.json and onnx/`
  )
}

const readJson = (file: string): Either.Either<Record<string, unknown>, string> => {
  try {
    const value: unknown = JSON.parse(fs.readFileSync(file, "utf8"))
    if (typeof value !== "object" || value === null || Array.isArray(value))
      return Either.left(`${file}: expected a JSON object`)
    return Either.right(value as Record<string, unknown>)
  } catch (e) {
    return Either.left(`${file}: ${e instanceof Error ? e.message : String(e)}`)
  }
}

const listVariants = (dir: string): Array<ModelVariant> => {
  const onnxDir = path.join(dir, "onnx")
  const roots = [onnxDir, dir].filter((d) => fs.existsSync(d))
  const out: Array<ModelVariant> = []
  for (const root of roots) {
    const files = fs.readdirSync(root)
    for (const f of files) {
      const m = /^(?:model|decoder_model_merged)(?:_(\w+))?\.onnx$/.exec(f)
      if (m === null) continue
      const name = m[1] ?? "fp32"
      if (out.some((v) => v.name === name)) continue
      const data = files.filter((x) => x.startsWith(`${f}_data`) || x === `${f}.data`).map((x) => path.join(root, x))
      const bytes = [path.join(root, f), ...data].reduce((sum, file) => sum + fs.statSync(file).size, 0)
      out.push({ name, file: path.join(root, f), bytes, externalData: data })
    }
  }
  return out.sort((a, b) => rank(a.name) - rank(b.name))
}
const rank = (name: string) => {
  const i = DEFAULT_ORDER.indexOf(name)
  return i < 0 ? DEFAULT_ORDER.length : i
}

/** Reads and checks a model folder (no weights are loaded). */
export const readModelFolder = (p: string): Effect.Effect<ModelFolder, ModelFolderError> =>
  Effect.suspend(() => {
    const fail = (message: string, at = p) => Effect.fail(new ModelFolderError({ path: at, message }))
    const dirE = resolveModelDir(p)
    if (Either.isLeft(dirE)) return fail(dirE.left)
    const dir = dirE.right
    const configFile = path.join(dir, "config.json")
    const rawConfig = readJson(configFile)
    if (Either.isLeft(rawConfig)) return fail(rawConfig.left, configFile)
    const config = Schema.decodeUnknownEither(ModelConfig)(rawConfig.right)
    if (Either.isLeft(config)) return fail(`${configFile}: ${describeParseError(config.left)}`, configFile)
    const missing: Array<string> = []
    const optionalJson = (name: string): Record<string, unknown> => {
      const file = path.join(dir, name)
      if (!fs.existsSync(file)) {
        missing.push(name)
        return {}
      }
      const r = readJson(file)
      return Either.isRight(r) ? r.right : {}
    }
    const genRaw = optionalJson("generation_config.json")
    const generation = Schema.decodeUnknownEither(GenerationConfig)(genRaw)
    if (Either.isLeft(generation))
      return fail(`${path.join(dir, "generation_config.json")}: ${describeParseError(generation.left)}`)
    const tokenizerFile = path.join(dir, "tokenizer.json")
    if (!fs.existsSync(tokenizerFile))
      return fail(`${tokenizerFile}: missing; the local runtime needs the model's tokenizer.json`, tokenizerFile)
    const tokenizerJson = readJson(tokenizerFile)
    if (Either.isLeft(tokenizerJson)) return fail(tokenizerJson.left, tokenizerFile)
    const tokenizerConfig = optionalJson("tokenizer_config.json")
    const variants = listVariants(dir)
    if (variants.length === 0)
      missing.push(
        isCheckpointFolder(dir)
          ? `onnx/model.onnx (a Hugging Face checkpoint: \`fastcot models convert ${dir} OUT\` writes a model folder from it)`
          : "onnx/model.onnx"
      )
    const chatTemplate = pickChatTemplate(chatTemplateFile(dir), tokenizerConfig["chat_template"])
    if (chatTemplate === undefined) missing.push("chat_template (tokenizer_config.json or chat_template.jinja)")
    const c = config.right
    return Effect.succeed({
      dir,
      config: c,
      generation: generation.right,
      tokenizerJson: tokenizerJson.right,
      tokenizerConfig,
      chatTemplate,
      variants,
      missing,
      headDim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
      numKvHeads: c.num_key_value_heads ?? c.num_attention_heads
    })
  })

const chatTemplateFile = (dir: string): string | undefined => {
  const f = path.join(dir, "chat_template.jinja")
  return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined
}

/** Picks a weight file by name (`fp32`, `q4`, `int8`, …) or the default (fp32 first). */
export const pickVariant = (folder: ModelFolder, name?: string): Either.Either<ModelVariant, string> => {
  if (folder.variants.length === 0)
    return Either.left(
      `${folder.dir}: no ONNX weights (expected onnx/model.onnx or onnx/model_<variant>.onnx)` +
        (isCheckpointFolder(folder.dir)
          ? `; it is a Hugging Face checkpoint (safetensors): convert it first, \`fastcot models convert ${folder.dir} OUT --variants q4\`, and use onnx:OUT`
          : "")
    )
  if (name === undefined) return Either.right(folder.variants[0]!)
  const wanted = name === "model" ? "fp32" : name.replace(/^model_/, "")
  const v = folder.variants.find((x) => x.name === wanted)
  return v === undefined
    ? Either.left(
        `${folder.dir}: no variant "${name}"; this folder has ${folder.variants.map((x) => x.name).join(", ")}`
      )
    : Either.right(v)
}

/** Parameters implied by config.json for the Qwen2/Llama family (embeddings counted once when tied). */
export const estimateParameters = (c: ModelConfig): number | undefined => {
  if (c.intermediate_size === undefined) return undefined
  const H = c.hidden_size
  const d = c.head_dim ?? H / c.num_attention_heads
  const kv = c.num_key_value_heads ?? c.num_attention_heads
  const bias = c.model_type === "qwen2" ? (c.num_attention_heads + 2 * kv) * d : 0
  const attn = H * c.num_attention_heads * d * 2 + H * kv * d * 2 + bias
  const layer = attn + 3 * H * c.intermediate_size + 2 * H
  return c.vocab_size * H * (c.tie_word_embeddings === false ? 2 : 1) + c.num_hidden_layers * layer + H
}
