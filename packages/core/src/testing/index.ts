/**
 * `@fastcot/core/testing`: what tests, demos and benchmarks build instead of real models and
 * servers. The scripted OpenAI-compatible server (canned replies, injected faults, each real
 * server's wire format), tiny Qwen2 ONNX models with random weights and their tokenizer, and a
 * throwaway PostgreSQL cluster on a loopback port.
 */
export * from "./scriptedServer.js"
export * from "../onnx/qwen2Builder.js"
export { writeFusedQwen2Variant } from "../onnx/qwen2Fused.js"
export * from "../onnx/tinyTokenizer.js"
export * from "./postgresCluster.js"
export * from "./tcpProxy.js"
export * from "./scriptedBatches.js"
export { buildQwen2Checkpoint, type CheckpointBuildOptions } from "../onnx/checkpointBuilder.js"
export * from "./workspaceRecords.js"
