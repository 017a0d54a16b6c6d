import * as Effect from "effect/Effect"
import { BadRequest, Cancelled, type LlmError, ServerError } from "../llm/errors.js"
import type { ModelProvider, ProviderResult } from "../llm/provider.js"
import type { ChatRequest } from "../llm/schema.js"
import { splitThink } from "../util/latex.js"
import {
  type GenerateRequest,
  type GenerateResult,
  type LoadOptions,
  LocalModel,
  LocalModelError
} from "./localModel.js"
import { DecodeBatch, type DecodeRow } from "./decodeBatch.js"
import { ModelFolderError } from "./modelFolder.js"
import { ChoiceConstraint, type SamplingParams } from "./sampler.js"

interface Pending {
  readonly request: GenerateRequest
  readonly resolve: (r: GenerateResult) => void
  readonly reject: (e: unknown) => void
  readonly at: number
}

/**
 * Serves many concurrent callers from one local model with continuous batching: up to
 * `maxBatch` rows decode together; a row that finishes is answered at once, and a waiting
 * request takes its place at the next step (prefilled, then joined to the running batch),
 * instead of every row waiting for the longest one.
 */
export class LocalEngine {
  private readonly queue: Array<Pending> = []
  private running = false
  constructor(
    readonly model: LocalModel,
    readonly maxBatch = 8
  ) {}

  submit(request: GenerateRequest): Promise<GenerateResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject, at: performance.now() })
      if (!this.running) void this.pump()
    })
  }

  get pending(): number {
    return this.queue.length
  }

  /** Requests that may start now: cancelled and impossible ones are answered here, one by one. */
  private admit(room: number): Array<Pending> {
    const out: Array<Pending> = []
    while (out.length < room && this.queue.length > 0) {
      const p = this.queue.shift()!
      const refused =
        p.request.signal?.aborted === true
          ? new LocalModelError({ reason: "cancelled", message: "cancelled before it started" })
          : DecodeBatch.refuse(this.model, p.request)
      if (refused !== undefined) p.reject(refused)
      else out.push(p)
    }
    return out
  }

  private async pump(): Promise<void> {
    this.running = true
    const owners = new Map<DecodeRow, Pending>()
    const answer = (batch: DecodeBatch) => {
      for (const row of batch.rows) {
        const p = owners.get(row)
        if (p === undefined || row.finish === undefined) continue
        owners.delete(row)
        if (row.finish === "cancelled") p.reject(new LocalModelError({ reason: "cancelled", message: "cancelled" }))
        else p.resolve(row.result())
      }
    }
    let batch: DecodeBatch | undefined
    try {
      while (this.queue.length > 0 || (batch !== undefined && batch.active > 0)) {
        const incoming = this.admit(this.maxBatch - (batch?.active ?? 0))
        if (incoming.length > 0) {
          try {
            const fresh = await DecodeBatch.prefill(
              this.model,
              incoming.map((p) => p.request),
              incoming.map((p) => p.at)
            )
            fresh.rows.forEach((row, i) => owners.set(row, incoming[i]!))
            answer(fresh)
            batch = batch === undefined ? fresh : DecodeBatch.join([batch, fresh])
          } catch (e) {
            for (const p of incoming) p.reject(e)
          }
        } else if (batch !== undefined && 2 * batch.active <= batch.rows.length) {
          // Half the rows are done: stop feeding them.
          batch = DecodeBatch.join([batch])
        }
        if (batch === undefined || batch.active === 0) continue
        try {
          await batch.step()
          answer(batch)
        } catch (e) {
          for (const row of batch.rows) {
            owners.get(row)?.reject(e)
            owners.delete(row)
          }
          batch = undefined
        }
      }
    } finally {
      this.running = false
    }
  }
}

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

export interface OnnxProviderOptions extends LoadOptions {
  readonly path: string
  readonly maxBatch?: number | undefined
  /** Default new-token budget when a request sets none. */
  readonly maxNewTokens?: number | undefined
}

const engines = new Map<string, Promise<LocalEngine>>()

/** One engine per model folder, variant, thread count, q4, float16 and rotary arithmetic and packing, shared by every role that names it. */
export const localEngine = (options: OnnxProviderOptions): Promise<LocalEngine> => {
  // Keyed by what the load does: no q4Compute is the default, int8; no f16Compute, auto; no fuseRotary, fused.
  const key =
    `${options.path}#${options.variant ?? ""}#${options.threads ?? ""}#${options.q4Compute ?? "int8"}#${options.f16Compute ?? "auto"}` +
    `#${options.packProducts === true ? "packed" : ""}#${options.fuseRotary === false ? "rotary-as-exported" : ""}`
  let e = engines.get(key)
  if (e === undefined) {
    e = Effect.runPromise(Effect.either(LocalModel.load(options.path, options))).then((r) => {
      if (r._tag === "Left") throw r.left
      return new LocalEngine(r.right, options.maxBatch ?? 8)
    })
    e.catch(() => engines.delete(key))
    engines.set(key, e)
  }
  return e
}

/** Releases every engine's session (end of a run, or a test). */
export const releaseLocalEngines = async (): Promise<void> => {
  const all = [...engines.values()]
  engines.clear()
  for (const e of all) await e.then((x) => x.model.release()).catch(() => undefined)
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
 * are batched; a `choice` list constrains decoding to those strings.
 */
export const onnxProvider = (options: OnnxProviderOptions): ModelProvider => {
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
      Effect.tryPromise({
        try: async (signal): Promise<ProviderResult> => {
          const engine = await localEngine(options)
          const r = await engine.submit(toGenerateRequest(engine.model, request, options, signal))
          const split = splitThink(r.text)
          return {
            text: split.think !== undefined ? split.rest : r.text,
            reasoning: split.think,
            finishReason: r.finishReason === "length" ? "length" : "stop",
            usage: { promptTokens: r.promptTokens, completionTokens: r.completionTokens },
            model: id
          }
        },
        catch: (e) => toLlmError(id, e)
      })
  }
}
