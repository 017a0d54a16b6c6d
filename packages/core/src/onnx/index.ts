/**
 * Local inference's building blocks, for tools that work below `onnx:` model specs: graph
 * editing, model folders, the tokenizer, sampling, decoding batches and engines. Exported from
 * the package as the `Onnx` namespace.
 */
export * from "./graph.js"
export * from "./modelFolder.js"
export * from "./chatTokenizer.js"
export * from "./sampler.js"
export * from "./localModel.js"
export * from "./rewrite.js"
export * from "./rotary.js"
export { float32ToHalf, floatData, halfToFloat32 } from "./half.js"
export { DecodeBatch, DecodeRow } from "./decodeBatch.js"
export * from "./engine.js"
export * from "./onnxProvider.js"
export {
  CheckpointError,
  float32ToBf16,
  openCheckpointTensors,
  readSafetensorsHeader,
  readTensorFloat32,
  type SafetensorsDtype,
  type TensorEntry,
  writeSafetensors
} from "./safetensors.js"
export { type TokenLogprob, tokenLogprob } from "./tokenLogprobs.js"
