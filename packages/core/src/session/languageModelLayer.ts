import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { LanguageModel, makeLanguageModel } from "../llm/LanguageModel.js"
import { LocalEngines } from "../onnx/localEngines.js"
import { buildRoles, type Role } from "../pipeline/models.js"
import type { PipelineConfig } from "../recipe/config.js"
import type { RunStore } from "../store/RunStore.js"

/** A pipeline's model roles that cannot be built: a spec that does not parse, a missing key variable. */
export class RoleModelsError extends Data.TaggedError("RoleModelsError")<{ readonly message: string }> {}

/**
 * The LanguageModel over a pipeline file's roles, as a scoped Layer: local models load on first use
 * and are released by the layer's finalizer. For embedders and tools that call models without
 * running the recipe (`RunSession` builds its own, with the budget and the run lock).
 */
export const languageModelLayer = (
  config: PipelineConfig,
  options: {
    readonly env?: Readonly<Record<string, string | undefined>> | undefined
    /** Only these roles (default: every role the file names). */
    readonly roles?: ReadonlyArray<Role> | undefined
    readonly onWarning?: ((message: string) => void) | undefined
    /** The service's own options: cache mode, pause gate, budget. */
    readonly service?: Parameters<typeof makeLanguageModel>[1]
  } = {}
): Layer.Layer<LanguageModel, RoleModelsError, RunStore> =>
  Layer.scoped(
    LanguageModel,
    Effect.gen(function* () {
      const engines = yield* LocalEngines.make
      const roles = buildRoles(config, options.env ?? process.env, options.roles, options.onWarning, engines)
      if (Either.isLeft(roles)) return yield* new RoleModelsError({ message: roles.left })
      return yield* makeLanguageModel(roles.right, options.service)
    })
  )
