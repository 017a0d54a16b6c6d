/**
 * @fastcot/core: what other tools embed. Grouped as the recipe runs; low-level local inference
 * lives under the `Onnx` namespace, the math grader's parts under `MathGrader`, and test
 * builders (the scripted server, tiny models) in `@fastcot/core/testing`.
 */

// Records, and the store that keeps them
export * from "./schema/index.js"
export * from "./store/RunStore.js"
export * from "./store/errors.js"
export { describeHolder } from "./store/runLock.js"
export * from "./store/SqliteRunStore.js"
export * from "./store/workspace.js"

// The recipe: its pipeline file, events and prompts
export * from "./recipe/config.js"
export * from "./recipe/events.js"
export * from "./recipe/prompts.js"
export * from "./recipe/defaultPipeline.js"

// 1. Import
export * from "./import/readers.js"
export * from "./import/layout.js"
export * from "./import/codeTests.js"
export * from "./import/reasoningText.js"
export * from "./import/datasetLayouts.js"
export * from "./import/datasetFolder.js"
export * from "./import/importFile.js"

// 2. Collect
export * from "./collect/filterProblems.js"
export * from "./collect/teacherSampling.js"

// 3. Verify
export * from "./verify/Verifier.js"
export * from "./verify/choiceAnswer.js"
export * from "./verify/math/gradeMath.js"
export * as MathGrader from "./verify/math/index.js"

// 4. Align
export * from "./align/prompts.js"
export * from "./align/stages.js"

// 5. Export
export * from "./export/exportDataset.js"
export * from "./export/trainerConfigs.js"
export * from "./chat/chatTemplateCheck.js"

// Running it: the pipeline, and the use-case layer every front-end calls
export * from "./pipeline/modelSpec.js"
export * from "./pipeline/models.js"
export * from "./pipeline/runPipeline.js"
export * from "./pipeline/progressState.js"
export * from "./session/RunSession.js"
export * from "./session/EvalModel.js"
export * from "./session/languageModelLayer.js"

// Models: the LanguageModel service, OpenAI-compatible endpoints, local ONNX models
export * from "./llm/schema.js"
export * from "./llm/errors.js"
export * from "./llm/provider.js"
export * from "./llm/openai.js"
export * from "./llm/LanguageModel.js"
export * from "./llm/budget.js"
export * from "./tokens/TokenCounter.js"
export type { LoadOptions } from "./onnx/localModel.js"
export type { F16Compute, Q4Compute } from "./onnx/rewrite.js"
export type { OnnxProviderOptions } from "./onnx/engine.js"
export * from "./onnx/localEngines.js"
export * from "./onnx/serve.js"
export * from "./onnx/inspect.js"
export * from "./onnx/modelBench.js"
export * as Onnx from "./onnx/index.js"

// Small helpers the other packages share
export * from "./util/hash.js"
export * from "./util/latex.js"
export * from "./util/choices.js"
export * from "./util/lengthStats.js"
export * from "./util/net.js"
export * from "./util/concurrent.js"
export * from "./util/dirs.js"
