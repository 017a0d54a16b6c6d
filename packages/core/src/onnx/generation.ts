import * as Data from "effect/Data"
import * as Schema from "effect/Schema"
import type * as ort from "onnxruntime-node"
import type { ChatTokenizer } from "./chatTokenizer.js"
import type { ModelFolder } from "./modelFolder.js"
import type { OrtModule } from "./ort.js"
import type { ChoiceConstraint, SamplingParams } from "./sampler.js"
import type { TokenLogprob } from "./tokenLogprobs.js"

/** Why a local model cannot run, or a run failed (a Schema: a bench child reports it across processes). */
export const LocalModelErrorReason = Schema.Literal(
  "unsupported-graph",
  "load",
  "prompt-too-long",
  "runtime",
  "cancelled"
)

/** A local model that cannot run, or a run that failed. */
export class LocalModelError extends Data.TaggedError("LocalModelError")<{
  readonly reason: typeof LocalModelErrorReason.Type
  readonly message: string
  /** What is wrong, without the file it is about (the message names both). */
  readonly detail?: string | undefined
}> {}

export interface GenerateRequest {
  readonly promptIds: ReadonlyArray<number>
  readonly maxNewTokens: number
  /** EOS ids are suppressed until this many tokens are written (Hugging Face's min_new_tokens). */
  readonly minNewTokens?: number | undefined
  readonly sampling: SamplingParams
  readonly stop?: ReadonlyArray<string> | undefined
  readonly choice?: ChoiceConstraint | undefined
  /** Text as it is decoded (never a partial stop string, never half a character). */
  readonly onText?: ((delta: string) => void) | undefined
  /** Report each generated token's log-probability and this many most likely ones at its step. */
  readonly logprobs?: number | undefined
  /**
   * With `logprobs`, also each prompt token's after the first (the model's distribution at its
   * position). The graph's head sees only the last position, so the prompt then runs its first
   * token as the prefill and the rest a position at a time, as decode steps batched with the
   * other requests: exact, and slower than a prefill for long prompts. `maxNewTokens` may be 0.
   */
  readonly promptLogprobs?: boolean | undefined
  readonly signal?: AbortSignal | undefined
}

export type LocalFinish = "stop" | "length" | "cancelled"

export interface GenerateResult {
  readonly ids: ReadonlyArray<number>
  readonly text: string
  readonly finishReason: LocalFinish
  readonly promptTokens: number
  readonly completionTokens: number
  /** Time to the first token (the prefill of the whole batch), ms. */
  readonly firstTokenMs: number
  /** Per generated token (EOS included), when the request asked for log-probabilities. */
  readonly logprobs?: ReadonlyArray<TokenLogprob> | undefined
  /** Per prompt token after the first, when the request asked for the prompt's (`promptLogprobs`). */
  readonly promptLogprobs?: ReadonlyArray<TokenLogprob> | undefined
  readonly totalMs: number
}

/** What the runtime learnt from the graph's inputs and outputs. */
export interface GraphSignature {
  readonly layers: number
  /**
   * The file's graph is already in the form generation runs (`fastcot.past.N.*` in,
   * `fastcot.new.N.*` and `fastcot.last_logits` out: what `fastcot models convert` writes), so it
   * is loaded as it is, with no rewrite.
   */
  readonly prepared: boolean
  readonly hasPositionIds: boolean
  readonly hasCacheBranch: boolean
  readonly kvType: "float32" | "float16"
  readonly logitsType: "float32" | "float16"
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<string>
}

/** What a decode batch reads of a loaded model (a LocalModel is one). */
export interface DecodingModel {
  readonly contextLength: number
  /** Prompts longer than this prefill in chunks of this many positions (default `PREFILL_CHUNK`). */
  readonly prefillChunk?: number | undefined
  readonly folder: Pick<ModelFolder, "headDim" | "numKvHeads">
  readonly ort: OrtModule
  readonly signature: GraphSignature
  readonly tokenizer: ChatTokenizer
  run(
    feeds: Record<string, ort.Tensor>,
    fetches?: Record<string, ort.Tensor | null>
  ): Promise<ort.InferenceSession.ReturnType>
}
