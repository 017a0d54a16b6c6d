import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { BudgetOptions } from "../llm/budget.js"
import { type CacheMode, type LanguageModelShape, makeLanguageModel, type Price } from "../llm/LanguageModel.js"
import { LocalEngines } from "../onnx/localEngines.js"
import type { F16Compute, Q4Compute } from "../onnx/rewrite.js"
import { parseModelSpec } from "../pipeline/modelSpec.js"
import { checkLocalModel, modelFromSpec } from "../pipeline/models.js"
import type { RunStore } from "../store/RunStore.js"

/** A model to evaluate that cannot be used: a spec that does not parse, a local folder that does not load. */
export class EvalModelError extends Data.TaggedError("EvalModelError")<{ readonly message: string }> {}

/** The model an evaluation asks: an `openai:MODEL@URL` endpoint or an `onnx:DIR[#variant]` folder. */
export interface EvalModelRequest {
  readonly spec: string
  readonly apiKey?: string | undefined
  /** Requests in flight (a local model decodes this many rows together). */
  readonly concurrency: number
  readonly threads?: number | undefined
  readonly q4Compute?: Q4Compute | undefined
  readonly f16Compute?: F16Compute | undefined
  readonly packProducts?: boolean | undefined
  readonly rotary?: "fused" | "as-exported" | undefined
  readonly price?: Price | undefined
  readonly cache?: CacheMode | undefined
  readonly budget?: BudgetOptions | undefined
}

export interface EvalModelShape {
  /** The name results carry: the endpoint's model, or the folder's name with its variant. */
  readonly name: string
  readonly lm: LanguageModelShape
  /** A local model's folder (its tokenizer counts the output tokens), if the model is local. */
  readonly localPath: string | undefined
}

/** Builds the model in the current Scope; a local one is loaded on first use and released with the scope. */
export const makeEvalModel = (
  request: EvalModelRequest
): Effect.Effect<EvalModelShape, EvalModelError, RunStore | Scope.Scope> =>
  Effect.gen(function* () {
    const parsed = parseModelSpec(request.spec)
    if (Either.isLeft(parsed)) return yield* new EvalModelError({ message: parsed.left })
    const local = parsed.right.kind === "onnx" ? parsed.right : undefined
    if (local !== undefined)
      yield* checkLocalModel(local).pipe(Effect.mapError((message) => new EvalModelError({ message })))
    const engines = yield* LocalEngines.make
    const { name, provider } = modelFromSpec(parsed.right, {
      engines,
      apiKey: request.apiKey,
      threads: request.threads,
      maxBatch: request.concurrency,
      q4Compute: request.q4Compute,
      f16Compute: request.f16Compute,
      packProducts: request.packProducts,
      rotary: request.rotary
    })
    const lm = yield* makeLanguageModel(
      { model: { endpoints: [{ provider, concurrency: request.concurrency, price: request.price }] } },
      { cache: request.cache, budget: request.budget }
    )
    return { name, lm, localPath: local?.path }
  })

/** The model under evaluation, for the scope of a Layer (see `makeEvalModel`). */
export class EvalModel extends Context.Tag("@fastcot/core/EvalModel")<EvalModel, EvalModelShape>() {
  static readonly make = makeEvalModel
  static readonly layer = (request: EvalModelRequest): Layer.Layer<EvalModel, EvalModelError, RunStore> =>
    Layer.scoped(EvalModel, makeEvalModel(request))
}
