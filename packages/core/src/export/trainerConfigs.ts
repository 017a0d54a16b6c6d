import * as Either from "effect/Either"
import { foldName } from "../util/nearestName.js"

export const Trainers = ["llamafactory", "swift"] as const
export type Trainer = (typeof Trainers)[number]

/** The arguments both ms-swift versions take, besides the tuner's name. */
const SWIFT_ARGUMENTS = [
  "template",
  "dataset",
  "val_dataset",
  "split_dataset_ratio",
  "torch_dtype",
  "num_train_epochs",
  "per_device_train_batch_size",
  "per_device_eval_batch_size",
  "gradient_accumulation_steps",
  "learning_rate",
  "lr_scheduler_type",
  "warmup_ratio",
  "max_length",
  "truncation_strategy",
  "save_steps",
  "eval_steps",
  "logging_steps",
  "deepspeed",
  "output_dir",
  "rlhf_type",
  "beta",
  "dataset_num_proc",
  "gradient_checkpointing"
] as const

/**
 * The trainer versions fastcot writes configs for, each with the arguments it accepts among those
 * fastcot writes, written down from the trainer's documentation and argument classes: ms-swift 3.x
 * names the tuner `train_type`, 4.x `tuner_type` (the old name was removed in 4.1, and ms-swift
 * refuses unknown arguments, `remaining_argv`); LLaMA-Factory 0.9's YAML keys.
 */
export const TRAINER_VERSIONS = {
  "swift@3": { trainer: "swift", accepted: ["model", "train_type", ...SWIFT_ARGUMENTS] },
  "swift@4": { trainer: "swift", accepted: ["model", "tuner_type", ...SWIFT_ARGUMENTS] },
  "llamafactory@0.9": {
    trainer: "llamafactory",
    accepted: [
      "model_name_or_path",
      "trust_remote_code",
      "stage",
      "do_train",
      "finetuning_type",
      "deepspeed",
      "pref_beta",
      "pref_loss",
      "dataset",
      "eval_dataset",
      "dataset_dir",
      "template",
      "enable_thinking",
      "cutoff_len",
      "overwrite_cache",
      "preprocessing_num_workers",
      "output_dir",
      "logging_steps",
      "save_steps",
      "plot_loss",
      "overwrite_output_dir",
      "per_device_train_batch_size",
      "per_device_eval_batch_size",
      "gradient_accumulation_steps",
      "learning_rate",
      "num_train_epochs",
      "lr_scheduler_type",
      "warmup_ratio",
      "bf16",
      "ddp_timeout",
      "eval_strategy",
      "eval_steps"
    ]
  }
} as const satisfies Record<string, { readonly trainer: Trainer; readonly accepted: ReadonlyArray<string> }>
export type TrainerVersion = keyof typeof TRAINER_VERSIONS

/** The version a bare trainer name means: the current release. */
export const CURRENT_VERSION: Record<Trainer, TrainerVersion> = { swift: "swift@4", llamafactory: "llamafactory@0.9" }

/** A trainer as people write its name: `ms-swift` (its package), `LLaMA-Factory` (its repository), any case. */
const trainerName = (text: string): Trainer | undefined => {
  const plain = foldName(text)
  return plain === "swift" || plain === "msswift" ? "swift" : plain === "llamafactory" ? "llamafactory" : undefined
}

/**
 * `swift`, `swift@4`, `swift@3.12`, `llamafactory@0.9.3` (or `ms-swift@3`, `LLaMA-Factory`) as a
 * version fastcot writes for; the error lists them.
 */
export const parseTrainer = (text: string): Either.Either<TrainerVersion, string> => {
  const [given, version] = text.trim().split("@") as [string, string | undefined]
  const name = trainerName(given)
  if (name === undefined)
    return Either.left(`unknown trainer \`${given}\`; fastcot writes for ${Object.keys(TRAINER_VERSIONS).join(", ")}`)
  if (version === undefined || version === "") return Either.right(CURRENT_VERSION[name])
  const major =
    name === "swift" ? `${name}@${version.split(".")[0]}` : `${name}@${version.split(".").slice(0, 2).join(".")}`
  return major in TRAINER_VERSIONS
    ? Either.right(major as TrainerVersion)
    : Either.left(`no config for ${name}@${version}; fastcot writes for ${Object.keys(TRAINER_VERSIONS).join(", ")}`)
}

/** The chat templates a base model trains with, in each trainer's names, and whether its template adds empty thinking. */
export interface TemplateChoice {
  readonly llamafactory: "qwen" | "qwen3" | "qwen3_nothink" | "deepseekr1"
  /** ms-swift picks a model's template itself; a name here overrides it. */
  readonly swift?: "qwen2_5" | "qwen2_5_math" | "qwen3_thinking" | "qwen3_nothinking" | "deepseek_r1" | undefined
  /** The template wraps reasoning in `<think>` (a reasoning model): a turn without it gets an empty one. */
  readonly reasoning: boolean
  readonly why: string
}

/**
 * The chat template for a base model: Qwen2 and Qwen2.5 (and -Math) the `qwen` ChatML template;
 * Qwen3 hybrid and Instruct models `qwen3_nothink` (fast-thinking data has no `<think>` block to
 * train), Qwen3 Thinking models `qwen3`; DeepSeek-R1-Distill models `deepseekr1`.
 */
export const chatTemplateFor = (baseModel: string): TemplateChoice => {
  const name = baseModel.split("/").pop()!.toLowerCase()
  if (/deepseek-r1|r1-distill/.test(name))
    return { llamafactory: "deepseekr1", swift: "deepseek_r1", reasoning: true, why: "a DeepSeek-R1 distilled model" }
  if (/qwen3/.test(name) && /thinking/.test(name))
    return { llamafactory: "qwen3", swift: "qwen3_thinking", reasoning: true, why: "a Qwen3 thinking model" }
  if (/qwen3/.test(name))
    return {
      llamafactory: "qwen3_nothink",
      swift: "qwen3_nothinking",
      reasoning: false,
      why: "Qwen3 without thinking: fast-thinking traces are the answer itself"
    }
  if (/qwen2\.5-math/.test(name))
    return { llamafactory: "qwen", swift: "qwen2_5_math", reasoning: false, why: "Qwen2.5-Math (ChatML)" }
  return {
    llamafactory: "qwen",
    swift: /qwen2\.5/.test(name) ? "qwen2_5" : undefined,
    reasoning: false,
    why: "Qwen2 / Qwen2.5 (ChatML)"
  }
}

export interface TrainerConfigInput {
  readonly version: TrainerVersion
  /** File names of the splits, in the folder the configs are written to. */
  readonly trainFile: string
  readonly validationFile?: string | undefined
  readonly baseModel: string
  /** Preference pairs train with DPO; everything else with SFT. */
  readonly stage: "sft" | "dpo"
  /** Tokens per example the trainer keeps: longer ones are cut (LLaMA-Factory) or dropped (ms-swift). */
  readonly cutoffLen: number
}

/** DeepSpeed ZeRO-3, as the trainers' own examples configure it ("auto" lets them fill sizes in). */
export const deepspeedZero3 = {
  train_batch_size: "auto",
  train_micro_batch_size_per_gpu: "auto",
  gradient_accumulation_steps: "auto",
  gradient_clipping: "auto",
  zero_allow_untested_optimizer: true,
  bf16: { enabled: "auto" },
  fp16: {
    enabled: "auto",
    loss_scale: 0,
    loss_scale_window: 1000,
    initial_scale_power: 16,
    hysteresis: 2,
    min_loss_scale: 1
  },
  zero_optimization: {
    stage: 3,
    overlap_comm: false,
    contiguous_gradients: true,
    sub_group_size: 1e9,
    reduce_bucket_size: "auto",
    stage3_prefetch_bucket_size: "auto",
    stage3_param_persistence_threshold: "auto",
    stage3_max_live_parameters: 1e9,
    stage3_max_reuse_distance: 1e9,
    stage3_gather_16bit_weights_on_model_save: true
  }
}

/**
 * A number as every YAML version reads it as a number: PyYAML (YAML 1.1, LLaMA-Factory up to
 * 0.9.3) takes `5e-7` for a string; `5.0e-07` style (a point, a signed exponent) is a float in 1.1
 * and 1.2 alike.
 */
export const yamlNumber = (n: number): string => {
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n)
  if (n !== 0 && (Math.abs(n) < 1e-3 || Math.abs(n) >= 1e15)) {
    const [mantissa, exponent] = n.toExponential().split("e") as [string, string]
    const m = mantissa.includes(".") ? mantissa : `${mantissa}.0`
    const e = Number(exponent)
    return `${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`
  }
  const s = String(n)
  return s.includes(".") || s.includes("e") ? s : `${s}.0`
}

/** A flat mapping as YAML: strings quoted where YAML would read them otherwise, numbers by `yamlNumber`. */
const flatYaml = (config: Readonly<Record<string, string | number | boolean>>): string =>
  Object.entries(config)
    .map(
      ([k, v]) =>
        `${k}: ${typeof v === "number" ? yamlNumber(v) : typeof v === "boolean" ? String(v) : /^[\w./@-]+$/.test(v) && !/^(true|false|null|yes|no|on|off|~|[-+]?\.?\d.*)$/i.test(v) ? v : JSON.stringify(v)}`
    )
    .join("\n") + "\n"

const shortName = (model: string) => model.split("/").pop()!.toLowerCase()
const shellWord = (s: string) => (/^[\w./@:=+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`)

/**
 * The files to write beside the exported data, by name: a ready-to-run config and launch script
 * for the trainer version. Every path in them is relative to their own folder, and the scripts
 * change to it first: they run from anywhere, and the folder can be moved to a cluster whole.
 */
export const trainerFiles = (c: TrainerConfigInput): Record<string, string> => {
  const name = shortName(c.baseModel)
  const template = chatTemplateFor(c.baseModel)
  const files: Record<string, string> = { "ds_z3_config.json": JSON.stringify(deepspeedZero3, null, 2) + "\n" }
  if (TRAINER_VERSIONS[c.version].trainer === "llamafactory") {
    files[`llamafactory_${c.stage}.yaml`] =
      `# LLaMA-Factory (${c.version}) ${c.stage.toUpperCase()} of ${c.baseModel} on fastcot data.\n` +
      `# Template ${template.llamafactory}: ${template.why}. cutoff_len covers the longest example (prompt and answer).\n` +
      `# Paths are relative to this folder: run train_llamafactory.sh, which changes to it first.\n` +
      flatYaml(llamaFactoryConfig(c, template, name))
    files["train_llamafactory.sh"] = `#!/usr/bin/env bash
# One node, all its GPUs:
#   bash train_llamafactory.sh
# Several nodes (run on each, NODE_RANK 0..NNODES-1, MASTER_ADDR = node 0's address):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 bash train_llamafactory.sh
set -euo pipefail
cd "$(dirname "$0")"
FORCE_TORCHRUN=1 NNODES="\${NNODES:-1}" NODE_RANK="\${NODE_RANK:-0}" MASTER_ADDR="\${MASTER_ADDR:-127.0.0.1}" MASTER_PORT="\${MASTER_PORT:-29500}" \\
  llamafactory-cli train llamafactory_${c.stage}.yaml
`
  } else {
    const args = swiftArguments(c, template, name)
    files["train_swift.sh"] = `#!/usr/bin/env bash
# ms-swift (${c.version}) ${c.stage === "dpo" ? "DPO" : "SFT"} of ${c.baseModel} on fastcot data (DeepSpeed ZeRO-3).
# Template: ${template.swift ?? "the model's own"}. max_length covers the longest example (prompt and answer).
# One node:     NPROC_PER_NODE=8 bash train_swift.sh
# Several nodes (on each): NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NPROC_PER_NODE=8 bash train_swift.sh
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "\${NPROC_PER_NODE:-}" ]; then
  NPROC_PER_NODE=1
  if command -v nvidia-smi >/dev/null 2>&1; then
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
    if [ "\${gpus:-0}" -gt 0 ]; then NPROC_PER_NODE=$gpus; fi
  fi
fi
NPROC_PER_NODE="$NPROC_PER_NODE" NNODES="\${NNODES:-1}" NODE_RANK="\${NODE_RANK:-0}" \\
MASTER_ADDR="\${MASTER_ADDR:-127.0.0.1}" MASTER_PORT="\${MASTER_PORT:-29500}" \\
${[c.stage === "dpo" ? "swift rlhf" : "swift sft", ...args.map(([k, v]) => `--${k} ${shellWord(String(v))}`)].join(" \\\n  ")}
`
  }
  return files
}

/** LLaMA-Factory's YAML keys and values. */
export const llamaFactoryConfig = (
  c: TrainerConfigInput,
  template: TemplateChoice,
  name: string
): Record<string, string | number | boolean> => ({
  model_name_or_path: c.baseModel,
  trust_remote_code: true,
  stage: c.stage,
  do_train: true,
  finetuning_type: "full",
  deepspeed: "ds_z3_config.json",
  ...(c.stage === "dpo" ? { pref_beta: 0.1, pref_loss: "sigmoid" } : {}),
  dataset: "fastcot_train",
  dataset_dir: ".",
  template: template.llamafactory,
  cutoff_len: c.cutoffLen,
  overwrite_cache: true,
  preprocessing_num_workers: 16,
  output_dir: `saves/${name}/full/${c.stage}-fastcot`,
  logging_steps: 10,
  save_steps: 500,
  plot_loss: true,
  overwrite_output_dir: true,
  per_device_train_batch_size: 1,
  gradient_accumulation_steps: 8,
  learning_rate: c.stage === "dpo" ? 5e-7 : 1e-5,
  num_train_epochs: c.stage === "dpo" ? 1 : 3,
  lr_scheduler_type: "cosine",
  warmup_ratio: 0.1,
  bf16: true,
  ddp_timeout: 180000000,
  ...(c.validationFile !== undefined
    ? { eval_dataset: "fastcot_validation", per_device_eval_batch_size: 1, eval_strategy: "steps", eval_steps: 500 }
    : {})
})

/** ms-swift's command-line arguments, name and value, in the order written. */
export const swiftArguments = (
  c: TrainerConfigInput,
  template: TemplateChoice,
  name: string
): Array<[string, string | number]> => {
  const dpo = c.stage === "dpo"
  return [
    ...(dpo
      ? ([
          ["rlhf_type", "dpo"],
          ["beta", 0.1]
        ] as Array<[string, string | number]>)
      : []),
    ["model", c.baseModel],
    [c.version === "swift@3" ? "train_type" : "tuner_type", "full"],
    ...(template.swift !== undefined ? ([["template", template.swift]] as Array<[string, string]>) : []),
    ["dataset", c.trainFile],
    ...(c.validationFile !== undefined
      ? ([["val_dataset", c.validationFile]] as Array<[string, string]>)
      : ([["split_dataset_ratio", 0]] as Array<[string, number]>)),
    ["torch_dtype", "bfloat16"],
    ["num_train_epochs", dpo ? 1 : 3],
    ["per_device_train_batch_size", 1],
    ["gradient_accumulation_steps", 8],
    ["learning_rate", yamlNumber(dpo ? 5e-7 : 1e-5)],
    ["lr_scheduler_type", "cosine"],
    ["warmup_ratio", 0.1],
    ["max_length", c.cutoffLen],
    // An example over max_length is dropped rather than cut (the export warned about any).
    ["truncation_strategy", "delete"],
    ["save_steps", 500],
    ["logging_steps", 10],
    ["deepspeed", "ds_z3_config.json"],
    ["output_dir", `output/${name}-${c.stage}-fastcot`]
  ]
}
