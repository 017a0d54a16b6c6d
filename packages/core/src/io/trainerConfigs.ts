import { stringify } from "yaml"

export const Trainers = ["llamafactory", "swift"] as const
export type Trainer = (typeof Trainers)[number]

export interface TrainerConfigInput {
  readonly trainer: Trainer
  /** Directory the files are written to (and the dataset lives in). */
  readonly dir: string
  readonly trainFile: string
  readonly validationFile?: string | undefined
  readonly baseModel: string
  /** Preference pairs train with DPO; everything else with SFT. */
  readonly stage: "sft" | "dpo"
}

/** DeepSpeed ZeRO-3, as the trainers' own examples configure it ("auto" lets them fill sizes in). */
export const deepspeedZero3 = {
  train_batch_size: "auto",
  train_micro_batch_size_per_gpu: "auto",
  gradient_accumulation_steps: "auto",
  gradient_clipping: "auto",
  zero_allow_untested_optimizer: true,
  bf16: { enabled: "auto" },
  fp16: { enabled: "auto", loss_scale: 0, loss_scale_window: 1000, initial_scale_power: 16, hysteresis: 2, min_loss_scale: 1 },
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

const shortName = (model: string) => model.split("/").pop()!.toLowerCase()

/** The files to write for a trainer, by name: a ready-to-run config and launch script. */
export const trainerFiles = (c: TrainerConfigInput): Record<string, string> => {
  const name = shortName(c.baseModel)
  const files: Record<string, string> = { "ds_z3_config.json": JSON.stringify(deepspeedZero3, null, 2) + "\n" }
  if (c.trainer === "llamafactory") {
    const config: Record<string, unknown> = {
      model_name_or_path: c.baseModel,
      trust_remote_code: true,
      stage: c.stage,
      do_train: true,
      finetuning_type: "full",
      deepspeed: `${c.dir}/ds_z3_config.json`,
      ...(c.stage === "dpo" ? { pref_beta: 0.1, pref_loss: "sigmoid" } : {}),
      dataset: "fastcot_train",
      dataset_dir: c.dir,
      template: "qwen",
      cutoff_len: 4096,
      overwrite_cache: true,
      preprocessing_num_workers: 16,
      output_dir: `saves/${name}/full/${c.stage}-fastcot`,
      logging_steps: 10,
      save_steps: 500,
      plot_loss: true,
      overwrite_output_dir: true,
      per_device_train_batch_size: 1,
      gradient_accumulation_steps: 8,
      learning_rate: c.stage === "dpo" ? 5.0e-7 : 1.0e-5,
      num_train_epochs: c.stage === "dpo" ? 1.0 : 3.0,
      lr_scheduler_type: "cosine",
      warmup_ratio: 0.1,
      bf16: true,
      ddp_timeout: 180000000,
      ...(c.validationFile !== undefined ? { eval_dataset: "fastcot_validation", per_device_eval_batch_size: 1, eval_strategy: "steps", eval_steps: 500 } : {})
    }
    files[`llamafactory_${c.stage}.yaml`] =
      `# LLaMA-Factory ${c.stage.toUpperCase()} of ${c.baseModel} on fastcot data (Qwen2.5 template, DeepSpeed ZeRO-3).\n` + stringify(config)
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
    const rlhf = c.stage === "dpo"
    const args = [
      rlhf ? "swift rlhf --rlhf_type dpo" : "swift sft",
      `--model ${c.baseModel}`,
      "--train_type full",
      `--dataset ${c.trainFile}`,
      ...(c.validationFile !== undefined ? [`--val_dataset ${c.validationFile}`] : ["--split_dataset_ratio 0"]),
      "--torch_dtype bfloat16",
      `--num_train_epochs ${rlhf ? 1 : 3}`,
      "--per_device_train_batch_size 1",
      "--gradient_accumulation_steps 8",
      `--learning_rate ${rlhf ? "5e-7" : "1e-5"}`,
      "--lr_scheduler_type cosine",
      "--warmup_ratio 0.1",
      "--max_length 4096",
      "--save_steps 500",
      "--logging_steps 10",
      `--deepspeed ${c.dir}/ds_z3_config.json`,
      `--output_dir output/${name}-${c.stage}-fastcot`
    ]
    files[`train_swift.sh`] = `#!/usr/bin/env bash
# ms-swift ${rlhf ? "DPO" : "SFT"} of ${c.baseModel} on fastcot data (Qwen2.5 template from the model, DeepSpeed ZeRO-3).
# One node:     NPROC_PER_NODE=8 bash train_swift.sh
# Several nodes (on each): NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NPROC_PER_NODE=8 bash train_swift.sh
set -euo pipefail
cd "$(dirname "$0")"
NPROC_PER_NODE="\${NPROC_PER_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l || echo 1)}" NNODES="\${NNODES:-1}" NODE_RANK="\${NODE_RANK:-0}" \\
MASTER_ADDR="\${MASTER_ADDR:-127.0.0.1}" MASTER_PORT="\${MASTER_PORT:-29500}" \\
${args.join(" \\\n  ")}
`
  }
  return files
}
