import * as fs from "node:fs"
import * as path from "node:path"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { describeParseError } from "../schema/errors.js"
import type { Qwen2Shape } from "./qwen2Builder.js"
import { CheckpointError, isCheckpointFolder } from "./safetensors.js"

/**
 * A checkpoint's `config.json`, as `fastcot models convert` reads it: a `Qwen2ForCausalLM` as
 * transformers 4 and 5 save one. transformers 5 writes the rotary base inside `rope_parameters`
 * (`{"rope_theta": 1000000.0, "rope_type": "default"}`) where 4 wrote `rope_theta` beside the
 * other fields, and `dtype` for `torch_dtype`; both are read, and `rope_parameters` wins where
 * both are given, as transformers 5 reads them. A setting the graph cannot honour (scaled
 * rotary embeddings, sliding-window layers, a partial rotary, another head size) is refused
 * with the field named, never converted into a different model.
 */
export interface CheckpointConfig {
  readonly shape: Qwen2Shape
  readonly tiedEmbeddings: boolean
}

const fail = (message: string): never => {
  throw new CheckpointError({ message })
}

const PositiveInt = Schema.Int.pipe(Schema.positive())
const PositiveNumber = Schema.Number.pipe(Schema.positive())

/** One rotary setting: transformers 5's `rope_parameters` (or one layer type's), or 4's `rope_scaling`. */
const RopeSetting = Schema.Struct({
  rope_type: Schema.optional(Schema.String),
  type: Schema.optional(Schema.String),
  rope_theta: Schema.optional(Schema.NullOr(PositiveNumber)),
  partial_rotary_factor: Schema.optional(Schema.NullOr(PositiveNumber))
})
type RopeSetting = typeof RopeSetting.Type

/** The fields of config.json the converter reads (others are copied with the file, unread). */
const CheckpointConfigJson = Schema.Struct({
  architectures: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  hidden_size: PositiveInt,
  num_hidden_layers: PositiveInt,
  num_attention_heads: PositiveInt,
  num_key_value_heads: Schema.optional(Schema.NullOr(PositiveInt)),
  head_dim: Schema.optional(Schema.NullOr(PositiveInt)),
  intermediate_size: PositiveInt,
  vocab_size: PositiveInt,
  hidden_act: Schema.optional(Schema.String),
  rope_theta: Schema.optional(Schema.NullOr(PositiveNumber)),
  rope_scaling: Schema.optional(Schema.NullOr(RopeSetting)),
  rope_parameters: Schema.optional(
    // Keyed by layer type first: a flat setting's fields are all optional, so it would match a keyed one and drop its keys.
    Schema.NullOr(Schema.Union(Schema.Record({ key: Schema.String, value: Schema.NullOr(RopeSetting) }), RopeSetting))
  ),
  rms_norm_eps: Schema.optional(Schema.NullOr(PositiveNumber)),
  max_position_embeddings: Schema.optional(Schema.NullOr(PositiveInt)),
  tie_word_embeddings: Schema.optional(Schema.NullOr(Schema.Boolean)),
  use_sliding_window: Schema.optional(Schema.NullOr(Schema.Boolean)),
  layer_types: Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))
})
type CheckpointConfigJson = typeof CheckpointConfigJson.Type

const Architectures = Schema.Struct({ architectures: Schema.Array(Schema.Unknown) })

const LAYER_TYPES = ["full_attention", "sliding_attention"] as const
/** transformers' own default base for Qwen2 when a config gives none. */
const DEFAULT_ROPE_THETA = 10_000

/** `rope_parameters` as one setting: flat, or keyed by layer type (every layer here is full attention). */
const ropeParameters = (file: string, c: CheckpointConfigJson): { setting: RopeSetting; field: string } | undefined => {
  const p = c.rope_parameters
  if (p === undefined || p === null) return undefined
  const byLayerType = Object.keys(p).filter((k) => (LAYER_TYPES as ReadonlyArray<string>).includes(k))
  if (byLayerType.length === 0) return { setting: p as RopeSetting, field: "rope_parameters" }
  const full = (p as Record<string, RopeSetting | null>)["full_attention"]
  if (full === undefined || full === null)
    return fail(`${file}: rope_parameters has no full_attention entry (it has ${byLayerType.join(", ")})`)
  return { setting: full, field: "rope_parameters.full_attention" }
}

/** The value at a dotted path of the file's own JSON (as written, with fields the schema does not read). */
const writtenAt = (json: unknown, field: string): unknown =>
  field
    .split(".")
    .reduce<unknown>(
      (value, key) =>
        typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined,
      json
    )

/** The rotary base, from wherever this config's transformers version put it; scaled rotaries refused. */
const ropeTheta = (file: string, json: unknown, c: CheckpointConfigJson): number => {
  const refuseScaled = (field: string, s: RopeSetting) => {
    const type = s.rope_type ?? s.type ?? "default"
    if (type !== "default")
      fail(
        `${file}: ${field} ${JSON.stringify(writtenAt(json, field))}: rotary embeddings scaled by "${type}" are not converted yet (the graph would be another model)`
      )
    if (s.partial_rotary_factor !== undefined && s.partial_rotary_factor !== null && s.partial_rotary_factor !== 1)
      fail(`${file}: ${field}.partial_rotary_factor ${s.partial_rotary_factor}: only a full rotary is converted`)
  }
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) refuseScaled("rope_scaling", c.rope_scaling)
  const parameters = ropeParameters(file, c)
  if (parameters !== undefined) refuseScaled(parameters.field, parameters.setting)
  return parameters?.setting.rope_theta ?? c.rope_theta ?? DEFAULT_ROPE_THETA
}

/** Reads `config.json`: a Qwen2ForCausalLM with what the graph needs, or an error naming the file and the field. */
export const readCheckpointConfig = (dir: string): CheckpointConfig => {
  const file = path.join(dir, "config.json")
  const adapter = loraAdapter(dir)
  if (adapter !== undefined) fail(adapter)
  if (!fs.existsSync(file)) fail(missingConfig(dir))
  let json: unknown
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    return fail(`${file}: not JSON: ${(e as Error).message}`)
  }
  // Read first and on its own: another model's config is refused for what it is, not for a field.
  const architectures = Option.match(Schema.decodeUnknownOption(Architectures)(json), {
    onNone: (): ReadonlyArray<unknown> => [],
    onSome: (a) => a.architectures
  })
  if (!architectures.includes("Qwen2ForCausalLM"))
    fail(
      `${file}: architectures ${JSON.stringify(architectures)}: fastcot converts Qwen2ForCausalLM (Qwen2, Qwen2.5, Qwen2.5-Math, DistilQwen) only`
    )
  const decoded = Schema.decodeUnknownEither(CheckpointConfigJson)(json, { errors: "all" })
  if (Either.isLeft(decoded)) return fail(`${file}: ${describeParseError(decoded.left)}`)
  const c = decoded.right
  if (c.use_sliding_window === true)
    fail(
      `${file}: use_sliding_window is true: sliding-window attention is not converted (Qwen2.5 checkpoints leave it off)`
    )
  const sliding = (c.layer_types ?? []).findIndex((t) => t !== "full_attention")
  if (sliding >= 0)
    fail(
      `${file}: layer_types[${sliding}] is ${JSON.stringify(c.layer_types![sliding])}: only full attention is converted`
    )
  if (c.hidden_act !== undefined && c.hidden_act !== "silu")
    fail(`${file}: hidden_act ${JSON.stringify(c.hidden_act)}: only silu is converted`)
  if (c.hidden_size % c.num_attention_heads !== 0) fail(`${file}: hidden_size is not a multiple of num_attention_heads`)
  const headDim = c.hidden_size / c.num_attention_heads
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== headDim)
    fail(`${file}: head_dim ${c.head_dim}: Qwen2's heads are hidden_size / num_attention_heads = ${headDim} wide`)
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads
  if (c.num_attention_heads % numKvHeads !== 0)
    fail(`${file}: num_attention_heads is not a multiple of num_key_value_heads`)
  return {
    shape: {
      hiddenSize: c.hidden_size,
      numLayers: c.num_hidden_layers,
      numHeads: c.num_attention_heads,
      numKvHeads,
      intermediateSize: c.intermediate_size,
      vocabSize: c.vocab_size,
      ropeTheta: ropeTheta(file, json, c),
      rmsNormEps: c.rms_norm_eps ?? 1e-6,
      maxPositionEmbeddings: c.max_position_embeddings ?? 32768
    },
    tiedEmbeddings: c.tie_word_embeddings === true
  }
}

/** Checkpoint folders below `dir` (`checkpoint-100`, …), newest step first. */
const checkpointSubfolders = (dir: string): Array<string> =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^checkpoint-\d+/.test(e.name))
    .map((e) => e.name)
    .sort((a, b) => Number(/\d+/.exec(b)![0]) - Number(/\d+/.exec(a)![0]))

/** A LoRA adapter's folder (PEFT's `adapter_config.json`, no model weights): what to do instead. */
const loraAdapter = (dir: string): string | undefined => {
  const adapter = path.join(dir, "adapter_config.json")
  if (fs.existsSync(adapter) && !isCheckpointFolder(dir)) {
    let base = ""
    try {
      const b = (JSON.parse(fs.readFileSync(adapter, "utf8")) as { base_model_name_or_path?: unknown })
        .base_model_name_or_path
      if (typeof b === "string") base = ` over ${b}`
    } catch {
      // The advice stands without the base model's name.
    }
    return (
      `${adapter}: ${dir} holds a LoRA adapter${base}, not a whole model: merge it into its base model first ` +
      `(LLaMA-Factory: \`llamafactory-cli export\` with adapter_name_or_path and export_dir; ms-swift: ` +
      `\`swift export --adapters ${dir} --merge_lora true\`), then convert the merged folder`
    )
  }
  return undefined
}

/** Why a folder without config.json is not a checkpoint, and the checkpoints below it if it is a training run's. */
const missingConfig = (dir: string): string => {
  const subfolders = fs.existsSync(dir) ? checkpointSubfolders(dir) : []
  if (subfolders.length > 0)
    return (
      `${path.join(dir, "config.json")}: missing; ${dir} is a training run's folder: convert one of its checkpoints, ` +
      `${subfolders
        .slice(0, 3)
        .map((s) => path.join(dir, s))
        .join(", ")}${subfolders.length > 3 ? ", …" : ""} (the newest first)`
    )
  return `${path.join(dir, "config.json")}: missing (a Hugging Face checkpoint folder has one)`
}
