import * as Effect from "effect/Effect"
import { BadRequest, Cancelled, type LlmError, ServerError } from "../llm/errors.js"
import type { ModelProvider, ProviderResult } from "../llm/provider.js"
import type { ChatRequest } from "../llm/schema.js"
import { splitThink } from "../util/latex.js"
import type { OnnxProviderOptions } from "./engine.js"
import type { LocalEngines } from "./localEngines.js"
import { type GenerateRequest, type LocalModel, LocalModelError } from "./localModel.js"
import { ModelFolderError } from "./modelFolder.js"
import { ChoiceConstraint, type SamplingParams } from "./sampler.js"

/** Sampling for a chat request: the request's values, else the model's generation_config.json. */
export const samplingFor = (
  model: LocalModel,
  request: Pick<ChatRequest, "temperature" | "top_p" | "seed">
): SamplingParams => {
  const g = model.folder.generation
  const temperature = request.temperature ?? (g.do_sample === false ? 0 : (g.temperature ?? 1))
  return {
    temperature,
    topP: request.top_p ?? g.top_p ?? 1,
    topK: g.top_k ?? 0,
    minP: g.min_p ?? 0,
    repetitionPenalty: g.repetition_penalty ?? 1,
    // Without a seed, sampling is not reproducible (as with a server); with one it is, in or out of a batch.
    seed: request.seed ?? Math.floor(Math.random() * 2 ** 32)
  }
}

/**
 * A local failure as the LLM layer's error. A folder or graph that cannot be loaded will not load
 * on the next try either: like a bad request, it is not retried (only runtime failures are).
 */
const toLlmError = (id: string, e: unknown): LlmError => {
  if (e instanceof LocalModelError) {
    if (e.reason === "cancelled") return new Cancelled({ endpoint: id, message: e.message })
    if (e.reason === "runtime") return new ServerError({ endpoint: id, status: 500, message: e.message })
    return new BadRequest({ endpoint: id, status: 400, message: e.message })
  }
  if (e instanceof ModelFolderError) return new BadRequest({ endpoint: id, status: 400, message: e.message })
  return new ServerError({ endpoint: id, status: 500, message: e instanceof Error ? e.message : String(e) })
}

/** Turns a chat request into a generation request for a loaded model. */
export const toGenerateRequest = (
  model: LocalModel,
  request: ChatRequest,
  defaults: { maxNewTokens?: number | undefined },
  signal?: AbortSignal,
  onText?: (delta: string) => void
): GenerateRequest => {
  const t = model.tokenizer
  const promptIds = t.encode(t.applyChatTemplate(request.messages))
  const choice =
    request.choice !== undefined && request.choice.length > 0
      ? new ChoiceConstraint(
          request.choice.map((c) => t.encode(c)),
          t.eosIds[0] ?? t.padId
        )
      : undefined
  return {
    promptIds,
    maxNewTokens: request.max_tokens ?? model.folder.generation.max_new_tokens ?? defaults.maxNewTokens ?? 1024,
    sampling: samplingFor(model, request),
    stop: request.stop,
    choice,
    signal,
    onText
  }
}

/**
 * The local provider of the LanguageModel service: `onnx:PATH[#variant]` answers chat requests
 * like an endpoint does (cache, retries and accounting come from the service). Concurrent calls
 * are batched; a `choice` list constrains decoding to those strings. The model is loaded on the
 * first call into `engines`, which every role naming the same folder shares and whose owner
 * releases it.
 */
export const onnxProvider = (options: OnnxProviderOptions, engines: LocalEngines): ModelProvider => {
  // The file's own 4-bit, float16 or rotary arithmetic gives other answers than the default's: it
  // is told apart in records and cache keys.
  const id =
    `onnx:${options.path}${options.variant !== undefined ? `#${options.variant}` : ""}` +
    `${options.q4Compute === "as-exported" ? " (q4 as exported)" : ""}${options.f16Compute === "as-exported" ? " (f16 as exported)" : ""}` +
    `${options.fuseRotary === false ? " (rotary as exported)" : ""}`
  return {
    id,
    model: id,
    call: (request) =>
      engines.acquire(options).pipe(
        Effect.mapError((e) => toLlmError(id, e)),
        Effect.flatMap((engine) =>
          Effect.tryPromise({
            try: (signal) => engine.submit(toGenerateRequest(engine.model, request, options, signal)),
            catch: (e) => toLlmError(id, e)
          })
        ),
        Effect.map((r): ProviderResult => {
          const split = splitThink(r.text)
          return {
            text: split.think !== undefined ? split.rest : r.text,
            reasoning: split.think,
            finishReason: r.finishReason === "length" ? "length" : "stop",
            usage: { promptTokens: r.promptTokens, completionTokens: r.completionTokens },
            model: id
          }
        })
      )
  }
}
