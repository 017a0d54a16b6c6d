import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { buildQwen2Checkpoint } from "./checkpointBuilder.js"
import { readCheckpointConfig } from "./checkpointConfig.js"
import { convertCheckpoint } from "./convertCheckpoint.js"
import { inspectModel } from "./inspect.js"
import { pickVariant, readModelFolder } from "./modelFolder.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fastcot-ckpt-config-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

type Json = Record<string, unknown>
const readJson = (file: string): Json => JSON.parse(fs.readFileSync(file, "utf8")) as Json

/** A tiny checkpoint with Qwen2.5's rotary base (1e6, not transformers' default 1e4), its config rewritten by `edit`. */
const checkpoint = (name: string, edit: (config: Json) => Json = (c) => c): string => {
  const dir = path.join(tmp, name)
  buildQwen2Checkpoint({ dir, seed: 3, dtype: "BF16", shape: { ropeTheta: 1_000_000 } })
  const file = path.join(dir, "config.json")
  fs.writeFileSync(file, JSON.stringify(edit(readJson(file)), null, 2))
  return dir
}

/** The config.json transformers 5 saves for the same model: the base inside rope_parameters, `dtype`, layer_types. */
const asTransformers5 = (c: Json): Json => {
  const { rope_theta, torch_dtype, ...rest } = c
  return {
    ...rest,
    dtype: torch_dtype,
    rope_parameters: { rope_theta, rope_type: "default" },
    layer_types: Array.from({ length: c["num_hidden_layers"] as number }, () => "full_attention"),
    max_window_layers: 28,
    transformers_version: "5.0.0"
  }
}

const graphBytes = (dir: string) => fs.readFileSync(path.join(dir, "onnx", "model.onnx"))

describe("a checkpoint's config.json, as transformers 4 and 5 save it", () => {
  it("transformers 5's rope_parameters give the same graph as transformers 4's rope_theta, and not the default base's", async () => {
    const v4 = checkpoint("v4")
    const v5 = checkpoint("v5", asTransformers5)
    expect(readJson(path.join(v5, "config.json"))["rope_theta"]).toBeUndefined()
    expect(readCheckpointConfig(v5).shape.ropeTheta).toBe(1_000_000)
    convertCheckpoint({ source: v4, out: path.join(tmp, "v4-onnx") })
    convertCheckpoint({ source: v5, out: path.join(tmp, "v5-onnx") })
    expect(graphBytes(path.join(tmp, "v5-onnx")).equals(graphBytes(path.join(tmp, "v4-onnx")))).toBe(true)
    // The base is in the graph: the default one would write another model.
    const tenThousand = checkpoint("default-base", (c) => ({ ...c, rope_theta: 10_000 }))
    convertCheckpoint({ source: tenThousand, out: path.join(tmp, "default-onnx") })
    expect(graphBytes(path.join(tmp, "default-onnx")).equals(graphBytes(path.join(tmp, "v4-onnx")))).toBe(false)
    // `dtype` is transformers 5's torch_dtype.
    const report = await Effect.runPromise(inspectModel(path.join(tmp, "v5-onnx")))
    expect(report.torchDtype).toBe("bfloat16")
  })

  it("reads the base from rope_parameters keyed by layer type, or beside a null rope_theta; rope_parameters wins", () => {
    const nested = checkpoint("nested", (c) => ({
      ...asTransformers5(c),
      rope_parameters: { full_attention: { rope_theta: 500_000, rope_type: "default" } }
    }))
    expect(readCheckpointConfig(nested).shape.ropeTheta).toBe(500_000)
    const nullTop = checkpoint("null-top", (c) => ({ ...c, rope_theta: null, rope_parameters: { rope_theta: 2e6 } }))
    expect(readCheckpointConfig(nullTop).shape.ropeTheta).toBe(2e6)
    const both = checkpoint("both", (c) => ({ ...c, rope_theta: 3e6, rope_parameters: { rope_theta: 4e6 } }))
    expect(readCheckpointConfig(both).shape.ropeTheta).toBe(4e6)
    const none = checkpoint("none", ({ rope_theta: _, ...c }) => c)
    expect(readCheckpointConfig(none).shape.ropeTheta).toBe(10_000)
    const defaultScaling = checkpoint("default-scaling", (c) => ({ ...c, rope_scaling: { rope_type: "default" } }))
    expect(readCheckpointConfig(defaultScaling).shape.ropeTheta).toBe(1_000_000)
  })

  it("refuses what the graph cannot honour, naming the file and the field", () => {
    const refused = (name: string, edit: (c: Json) => Json, message: RegExp) =>
      expect(() => readCheckpointConfig(checkpoint(name, edit)), name).toThrow(message)
    const yarn = { rope_type: "yarn", factor: 4, original_max_position_embeddings: 32768 }
    refused(
      "yarn-v5",
      (c) => ({ ...asTransformers5(c), rope_parameters: { rope_theta: 1e6, ...yarn } }),
      /yarn-v5\/config\.json: rope_parameters \{"rope_theta":1000000,"rope_type":"yarn","factor":4,"original_max_position_embeddings":32768\}: rotary embeddings scaled by "yarn" are not converted yet/
    )
    refused(
      "yarn-v4",
      (c) => ({ ...c, rope_scaling: { type: "yarn", factor: 4 } }),
      /yarn-v4\/config\.json: rope_scaling \{"type":"yarn","factor":4\}: rotary embeddings scaled by "yarn"/
    )
    refused(
      "nested-yarn",
      (c) => ({ ...c, rope_parameters: { full_attention: { rope_theta: 1e6, ...yarn } } }),
      /rope_parameters\.full_attention \{"rope_theta":1000000,"rope_type":"yarn","factor":4,.*scaled by "yarn"/
    )
    refused(
      "partial",
      (c) => ({ ...c, rope_parameters: { rope_theta: 1e6, partial_rotary_factor: 0.5 } }),
      /rope_parameters\.partial_rotary_factor 0\.5: only a full rotary is converted/
    )
    refused(
      "sliding-layers",
      (c) => ({ ...asTransformers5(c), layer_types: ["full_attention", "sliding_attention"] }),
      /sliding-layers\/config\.json: layer_types\[1\] is "sliding_attention": only full attention is converted/
    )
    refused("head-dim", (c) => ({ ...c, head_dim: 32 }), /head_dim 32: Qwen2's heads are .* = 16 wide/)
    refused(
      "bad-field",
      (c) => ({ ...c, hidden_size: "64" }),
      /bad-field\/config\.json: field `hidden_size`: Expected .*number.*, actual "64"/
    )
    refused("no-layers", ({ num_hidden_layers: _, ...c }) => c, /field `num_hidden_layers`: is missing/)
  })

  it("says what a LoRA adapter, a training run's folder and pickled weights are, and what to convert instead", () => {
    const lora = path.join(tmp, "lora")
    fs.mkdirSync(lora)
    fs.writeFileSync(
      path.join(lora, "adapter_config.json"),
      JSON.stringify({ peft_type: "LORA", base_model_name_or_path: "Qwen/Qwen2.5-7B-Instruct", r: 8 })
    )
    fs.writeFileSync(path.join(lora, "adapter_model.safetensors"), "")
    expect(() => readCheckpointConfig(lora)).toThrow(
      /lora\/adapter_config\.json: .* holds a LoRA adapter over Qwen\/Qwen2\.5-7B-Instruct, not a whole model: merge it .*swift export --adapters .* --merge_lora true/
    )

    const run = path.join(tmp, "run")
    for (const step of [200, 1000, 100]) buildQwen2Checkpoint({ dir: path.join(run, `checkpoint-${step}`), seed: 3 })
    expect(() => readCheckpointConfig(run)).toThrow(
      new RegExp(
        `run/config\\.json: missing; .* is a training run's folder: convert one of its checkpoints, ` +
          `${path.join(run, "checkpoint-1000")}, ${path.join(run, "checkpoint-200")}, ${path.join(run, "checkpoint-100")} \\(the newest first\\)`
      )
    )
    expect(() => readCheckpointConfig(path.join(tmp, "nothing-here"))).toThrow(/nothing-here\/config\.json: missing/)

    const pickled = checkpoint("pickled")
    for (const f of fs.readdirSync(pickled)) if (f.includes("safetensors")) fs.rmSync(path.join(pickled, f))
    fs.writeFileSync(path.join(pickled, "pytorch_model.bin"), "")
    expect(() => convertCheckpoint({ source: pickled, out: path.join(tmp, "pickled-onnx") })).toThrow(
      /pickled\/pytorch_model\.bin: the weights are PyTorch pickles, which fastcot does not read .*save the model as safetensors/
    )
  })

  it("a checkpoint given where a model folder is expected says to convert it first", async () => {
    const dir = checkpoint("unconverted")
    const folder = await Effect.runPromise(readModelFolder(dir))
    expect(folder.missing[0]).toBe(
      `onnx/model.onnx (a Hugging Face checkpoint: \`fastcot models convert ${dir} OUT\` writes a model folder from it)`
    )
    expect(pickVariant(folder)).toMatchObject({
      left: expect.stringMatching(
        /no ONNX weights .*; it is a Hugging Face checkpoint \(safetensors\): convert it first/
      )
    })
  })
})
