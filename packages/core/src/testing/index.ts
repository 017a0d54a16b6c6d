/**
 * `@fastcot/core/testing`: what tests, demos and benchmarks build instead of real models and
 * servers. The scripted OpenAI-compatible server (canned replies, injected faults, each real
 * server's wire format) and tiny Qwen2 ONNX models with random weights and their tokenizer.
 */
export * from "./scriptedServer.js"
export * from "../onnx/qwen2Builder.js"
export * from "../onnx/tinyTokenizer.js"
