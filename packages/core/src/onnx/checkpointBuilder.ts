import * as fs from "node:fs"
import * as path from "node:path"
import { ensureDirSync } from "../util/dirs.js"
import { type Qwen2Shape, randomTensor, TINY_SHAPE, transpose } from "./qwen2Builder.js"
import { type SafetensorsDtype, writeSafetensors } from "./safetensors.js"
import { buildTinyTokenizer, CHATML_TEMPLATE, tokenizerConfig } from "./tinyTokenizer.js"

/**
 * A random-weight Qwen2ForCausalLM checkpoint in the Hugging Face layout, as LLaMA-Factory and
 * ms-swift write one after training: `config.json`, `generation_config.json`, the tokenizer, and
 * `model.safetensors` or shards with `model.safetensors.index.json`, in F32, F16 or BF16, with tied
 * or untied embeddings. The weights are the project builder's for the same seed (linear ones
 * stored [out, in] as PyTorch keeps them), so a converted checkpoint and a built model agree.
 */
export interface CheckpointBuildOptions {
  readonly dir: string
  readonly shape?: Partial<Qwen2Shape>
  readonly seed?: number
  readonly dtype?: SafetensorsDtype
  /** Shards to write (1: a single `model.safetensors`). */
  readonly shards?: number
  readonly tiedEmbeddings?: boolean
}

export const buildQwen2Checkpoint = (
  options: CheckpointBuildOptions
): { readonly dir: string; readonly shape: Qwen2Shape } => {
  const tiny = buildTinyTokenizer()
  const vocabSize = options.shape?.vocabSize ?? tiny.vocabSize
  const s: Qwen2Shape = { ...TINY_SHAPE, ...options.shape, vocabSize }
  const seed = options.seed ?? 1
  const tied = options.tiedEmbeddings ?? true
  const dtype = options.dtype ?? "BF16"
  ensureDirSync(options.dir)
  const writeJson = (name: string, value: unknown) =>
    fs.writeFileSync(path.join(options.dir, name), JSON.stringify(value, null, 2) + "\n")
  const specials = tiny.specialIds
  writeJson("config.json", {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    hidden_act: "silu",
    hidden_size: s.hiddenSize,
    intermediate_size: s.intermediateSize,
    num_attention_heads: s.numHeads,
    num_hidden_layers: s.numLayers,
    num_key_value_heads: s.numKvHeads,
    vocab_size: s.vocabSize,
    rope_theta: s.ropeTheta,
    rms_norm_eps: s.rmsNormEps,
    max_position_embeddings: s.maxPositionEmbeddings,
    tie_word_embeddings: tied,
    use_sliding_window: false,
    sliding_window: 4096,
    torch_dtype: dtype === "BF16" ? "bfloat16" : dtype === "F16" ? "float16" : "float32",
    bos_token_id: specials["<|endoftext|>"],
    eos_token_id: specials["<|im_end|>"],
    use_cache: true
  })
  writeJson("generation_config.json", {
    bos_token_id: specials["<|endoftext|>"],
    eos_token_id: [specials["<|im_end|>"], specials["<|endoftext|>"]],
    do_sample: true,
    temperature: 0.7,
    top_p: 0.8
  })
  writeJson("tokenizer.json", tiny.tokenizerJson)
  writeJson("tokenizer_config.json", tokenizerConfig(specials, CHATML_TEMPLATE, s.maxPositionEmbeddings))

  const H = s.hiddenSize
  const D = H / s.numHeads
  // Each tensor's values are made as it is written (a 7B checkpoint does not fit in memory).
  const tensors: Array<{ name: string; shape: Array<number>; values: () => Float32Array }> = []
  const linear = (name: string, K: number, N: number) =>
    tensors.push({ name, shape: [N, K], values: () => transpose(randomTensor(name, seed, K * N, 0.02), K, N) })
  const vector = (name: string, n: number, std: number, mean = 0) =>
    tensors.push({ name, shape: [n], values: () => randomTensor(name, seed, n, std, mean) })
  tensors.push({
    name: "model.embed_tokens.weight",
    shape: [s.vocabSize, H],
    values: () => randomTensor("model.embed_tokens.weight", seed, s.vocabSize * H, 0.02)
  })
  for (let l = 0; l < s.numLayers; l++) {
    const p = `model.layers.${l}`
    vector(`${p}.input_layernorm.weight`, H, 0.1, 1)
    for (const [proj, out] of [
      ["q_proj", s.numHeads * D],
      ["k_proj", s.numKvHeads * D],
      ["v_proj", s.numKvHeads * D]
    ] as const) {
      linear(`${p}.self_attn.${proj}.weight`, H, out)
      vector(`${p}.self_attn.${proj}.bias`, out, 0.02)
    }
    linear(`${p}.self_attn.o_proj.weight`, s.numHeads * D, H)
    vector(`${p}.post_attention_layernorm.weight`, H, 0.1, 1)
    linear(`${p}.mlp.gate_proj.weight`, H, s.intermediateSize)
    linear(`${p}.mlp.up_proj.weight`, H, s.intermediateSize)
    linear(`${p}.mlp.down_proj.weight`, s.intermediateSize, H)
  }
  vector("model.norm.weight", H, 0.1, 1)
  if (!tied)
    tensors.push({
      name: "lm_head.weight",
      shape: [s.vocabSize, H],
      values: () => randomTensor("lm_head.weight", seed, s.vocabSize * H, 0.02)
    })

  const shards = Math.max(1, options.shards ?? 1)
  if (shards === 1) {
    writeSafetensors(path.join(options.dir, "model.safetensors"), tensors, dtype)
    return { dir: options.dir, shape: s }
  }
  const per = Math.ceil(tensors.length / shards)
  const weightMap: Record<string, string> = {}
  for (let i = 0; i < shards; i++) {
    const name = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`
    const part = tensors.slice(i * per, (i + 1) * per)
    writeSafetensors(path.join(options.dir, name), part, dtype)
    for (const t of part) weightMap[t.name] = name
  }
  writeJson("model.safetensors.index.json", { metadata: { total_size: 0 }, weight_map: weightMap })
  return { dir: options.dir, shape: s }
}
