/**
 * @fastcot/core: what other tools embed. Every name is listed here on purpose, grouped as the
 * recipe runs; `api/public-api.txt` records the surface and a test fails when it changes without
 * that file changing too. Low-level local inference lives under the `Onnx` namespace, the math
 * grader's parts under `MathGrader`, and test builders (the scripted server, tiny models) in
 * `@fastcot/core/testing`.
 */

// Records
export {
  AlpacaRecord,
  CallRecord,
  CallRole,
  ChatMessage,
  ChatRole,
  describeParseError,
  describeReason,
  Domain,
  DropCode,
  DropReason,
  Fate,
  fateDetail,
  Item,
  ItemId,
  KeptAs,
  makeItem,
  makeRound,
  OpenAiRecord,
  PreferenceRecord,
  Problem,
  ProblemId,
  Review,
  ReviewDecision,
  Round,
  RoundAction,
  ShareGptRecord,
  SftSample,
  Split,
  Stage,
  TestCase,
  TokenCounts,
  Trace,
  TraceOrigin,
  Verdict,
  VerdictLevel,
  Verification,
  VerificationFailure
} from "./schema/index.js"

// The store that keeps them
export {
  type BatchJobRecord,
  type CacheEntry,
  type CallClaim,
  type ClaimedPage,
  type ImportBatch,
  type ImportProgress,
  type ImportReject,
  type ItemFilter,
  type ProblemFlag,
  RunStore,
  type RunStoreShape,
  type SpendEntry,
  type SpendTotals,
  type StoreStatus,
  type WorkerView,
  workspaceSpending
} from "./store/RunStore.js"
export { type ItemOrder, type ItemSortKey, type ItemSortValue, itemSortValue } from "./store/itemOrder.js"
export { type RunLockHolder, StoreError, WorkspaceBusy } from "./store/errors.js"
export { describeHolder } from "./store/runLock.js"
export { type BatchSummary, summarizeBatchJobs } from "./store/batchSummary.js"
export { openSqliteStore, SqliteRunStoreLive, type SqliteStoreOptions } from "./store/SqliteRunStore.js"
export { PgRunStoreLive, type PgStoreOptions } from "./store/PgRunStore.js"
export { displayStoreUrl, isPostgresUrl } from "./store/storeUrl.js"
export { runStoreLayer } from "./store/runStoreLayer.js"
export { DEFAULT_WORKSPACE, workspacePaths } from "./store/workspace.js"

// The recipe: its pipeline file, events and prompts
export {
  AlignSettings,
  BudgetSettings,
  CollectSettings,
  EndpointSettings,
  FilterSettingsSchema,
  parsePipeline,
  PipelineConfig,
  RoleSettings,
  Sampling
} from "./recipe/config.js"
export { ItemEvent, LogEvent, PipelineDone, RunEvent, StageDone, StageProgress, VerdictEvent } from "./recipe/events.js"
export { DEFAULT_SYSTEM_PROMPT, MATH_INSTRUCTION, problemPrompt, TEACHER_PROMPT_VERSION } from "./recipe/prompts.js"
export { DEFAULT_PIPELINE_FILE, defaultPipelineText } from "./recipe/defaultPipeline.js"

// 1. Import
export {
  formatFromPath,
  type InputFormat,
  type RawRow,
  type ReadPosition,
  readRows,
  type RowBatch,
  START
} from "./import/readers.js"
export { type FieldMap, parseFieldMap } from "./import/layout.js"
export { decodeLcbTests, unpickleString } from "./import/codeTests.js"
export { type SplitReply, splitReasoning } from "./import/reasoningText.js"
export {
  DATASET_LAYOUTS,
  type DatasetLayout,
  detectLayout,
  LAYOUT_NAMES,
  type LayoutName
} from "./import/datasetLayouts.js"
export { type DatasetFiles, datasetFiles, type DatasetFolderOptions } from "./import/datasetFolder.js"
export {
  type DryRunReport,
  dryRunImport,
  ImportError,
  importFile,
  type ImportOptions,
  type ImportedByThisRun,
  type ImportProgressEvent,
  type ImportReport
} from "./import/importFile.js"

// 2. Collect
export { type FilterReport, type FilterSettings, filterProblems } from "./collect/filterProblems.js"
export { sampleTeacher, type StageOptions, type StageReport } from "./collect/teacherSampling.js"

// 3. Verify
export { BasicVerifierLive, basicVerifier, statedAnswer, Verifier, type VerifierShape } from "./verify/Verifier.js"
export { extractLetter, officialGpqaLetter, officialMmluProLetter } from "./verify/choiceAnswer.js"
export {
  gradeMath,
  MATH_GRADER_VERSION,
  type MathGrade,
  type MathGradeOptions,
  type MathVerdict
} from "./verify/math/gradeMath.js"
export * as MathGrader from "./verify/math/index.js"

// 4. Align
export {
  type AlignPrompt,
  loadPrompt,
  type ParsedVerdict,
  parseVerdict,
  type VersionedPrompt
} from "./align/prompts.js"
export {
  alignStage,
  type ItemStageOptions,
  type ItemStageReport,
  longToShortStage,
  verifyStage
} from "./align/stages.js"

// 5. Export
export {
  type ExportError,
  exportDataset,
  type ExportFormat,
  ExportFormats,
  type ExportOptions,
  type ExportReport,
  type ReviewReport
} from "./export/exportDataset.js"
export { REJECT_REASONS, type ReviewAction, reviewItem, ReviewRefused } from "./review/reviewItem.js"
export {
  llamaFactoryConfig,
  parseTrainer,
  swiftArguments,
  type Trainer,
  TRAINER_VERSIONS,
  type TrainerConfigInput,
  trainerFiles,
  Trainers,
  type TrainerVersion
} from "./export/trainerConfigs.js"
export { type ChatTemplate, ChatTemplateError, loadChatTemplate, templateLoss } from "./chat/chatTemplateCheck.js"

// Running it: the pipeline, and the use-case layer every front-end calls
export { type ModelSpec, parseModelSpec } from "./pipeline/modelSpec.js"
export {
  applyOverrides,
  buildRoles,
  checkLocalModel,
  type ModelOverrides,
  type Role,
  ROLES
} from "./pipeline/models.js"
export {
  type PipelineOptions,
  type PipelineReport,
  runPipeline,
  type StageName,
  STAGES
} from "./pipeline/runPipeline.js"
export {
  applyEvent,
  applyStats,
  bar,
  type DashboardState,
  formatDuration,
  histograms,
  initialState,
  type LogLine,
  median,
  stageFigures,
  type StageRow
} from "./pipeline/progressState.js"
export {
  type RunRequest,
  RunSession,
  type RunSessionShape,
  RunSetupError,
  type StopReason
} from "./session/RunSession.js"
export { EvalModel, EvalModelError, type EvalModelRequest, type EvalModelShape } from "./session/EvalModel.js"
export { languageModelLayer, RoleModelsError } from "./session/languageModelLayer.js"

// Models: the LanguageModel service, OpenAI-compatible endpoints, local ONNX models
export { ChatRequest, Completion, FinishReason, Message, Usage } from "./llm/schema.js"
export {
  BadRequest,
  BadResponse,
  BudgetExhausted,
  Cancelled,
  ConnectionError,
  describeLlmError,
  isLlmError,
  isRetryable,
  type LlmError,
  LlmErrorTypeId,
  QuotaExhausted,
  RateLimited,
  ServerError,
  StreamFailed,
  Timeout
} from "./llm/errors.js"
export type { ApiReply, BatchWire, CallContext, ModelProvider, ProviderResult, RateLimitState } from "./llm/provider.js"
export type { AdaptiveBounds } from "./llm/adaptiveWindow.js"
export { type BatchSettings, type BatchStats, defaultBatchSettings } from "./llm/batch/batchSettings.js"
export { type GuidedDecoding, type OpenAiEndpointConfig, openAiProvider } from "./llm/openai.js"
export {
  type CacheMode,
  type CallOptions,
  type EndpointConfig,
  type EndpointStats,
  LanguageModel,
  type LanguageModelShape,
  makeLanguageModel,
  type Price,
  type RoleConfig
} from "./llm/LanguageModel.js"
export { Budget, type BudgetLimits, type BudgetOptions, type BudgetState, describeSpent } from "./llm/budget.js"
export {
  QwenTokenCounterLive,
  qwenPieceCounter,
  TokenCounter,
  type TokenCounterShape,
  TokenizerError,
  tokenizerFileCounter,
  TokenizerFileCounterLive
} from "./tokens/TokenCounter.js"
export type { LoadOptions } from "./onnx/localModel.js"
export type { F16Compute, Q4Compute } from "./onnx/rewrite.js"
export type { OnnxProviderOptions } from "./onnx/engine.js"
export { LocalEngines } from "./onnx/localEngines.js"
export { type LocalServer, type ServeOptions, serveLocalModel } from "./onnx/serve.js"
export { inspectModel, type ModelReport, type VariantReport } from "./onnx/inspect.js"
export { benchModel, type ModelBenchOptions, ModelBenchRow } from "./onnx/modelBench.js"
export { type CheckpointConfig, readCheckpointConfig } from "./onnx/checkpointConfig.js"
export { convertCheckpoint, type ConvertedModel, type ConvertOptions } from "./onnx/convertCheckpoint.js"
export { CheckpointError } from "./onnx/safetensors.js"
export * as Onnx from "./onnx/index.js"

// Small helpers the other packages share
export { canonicalJson, sha256Hex } from "./util/hash.js"
export { foldName } from "./util/nearestName.js"
export { lastBoxed } from "./util/latex.js"
export { LETTERS, letteredChoices, seededShuffle } from "./util/choices.js"
export { type LengthStats, lengthStats } from "./util/lengthStats.js"
export { isLoopbackHost } from "./util/net.js"
export { bearerToken, makeAccessToken, sameToken } from "./util/accessToken.js"
export { drainConcurrently } from "./util/concurrent.js"
export { ensureDir, ensureDirSync } from "./util/dirs.js"
