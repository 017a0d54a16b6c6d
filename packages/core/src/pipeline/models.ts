import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { pickVariant, readModelFolder } from "../onnx/modelFolder.js"
import type { RoleConfig } from "../llm/LanguageModel.js"
import { openAiProvider } from "../llm/openai.js"
import { onnxProvider } from "../onnx/onnxProvider.js"
import { LocalEngines } from "../onnx/localEngines.js"
import type { F16Compute, Q4Compute } from "../onnx/rewrite.js"
import { isLoopbackHost } from "../util/net.js"
import type { ModelProvider } from "../llm/provider.js"
import { basename } from "node:path"
import type { ModelSpec } from "./modelSpec.js"
import { EndpointSettings, type PipelineConfig, type RoleSettings } from "../recipe/config.js"
import { parseModelSpec } from "./modelSpec.js"

export const ROLES = ["teacher", "rewriter", "judge"] as const
export type Role = (typeof ROLES)[number]

export interface ModelOverrides {
  readonly teacher?: string | undefined
  readonly rewriter?: string | undefined
  readonly judge?: string | undefined
  /** The environment variable for keys of overriding specs (default OPENAI_API_KEY). */
  readonly apiKeyEnv?: string | undefined
  /** Replaces every endpoint's concurrency. */
  readonly concurrency?: number | undefined
  /** Roles whose endpoints go to the provider's batch API (`--batch teacher,judge`). */
  readonly batch?: ReadonlyArray<Role> | undefined
}

/** The pipeline's models with the command line's overrides applied. */
export const applyOverrides = (config: PipelineConfig, overrides: ModelOverrides): PipelineConfig => {
  const models: Record<string, RoleSettings | undefined> = { ...config.models }
  for (const role of ROLES) {
    const spec = overrides[role]
    const current = models[role]
    if (spec !== undefined) {
      const endpoint: EndpointSettings = {
        // A role the file does not name: an endpoint of the file format's defaults.
        ...(current?.endpoints[0] ?? Schema.decodeUnknownSync(EndpointSettings)({ model: spec })),
        model: spec,
        apiKeyEnv: overrides.apiKeyEnv,
        // What belonged to the replaced endpoint's server does not carry over to another one.
        price: undefined,
        adaptive: undefined,
        requestsPerMinute: undefined,
        tokensPerMinute: undefined,
        extraBody: undefined,
        maxTokensField: undefined,
        maxOutputTokens: undefined
      }
      models[role] = {
        sampling: current?.sampling ?? {},
        maxAttempts: current?.maxAttempts ?? 6,
        endpoints: [endpoint]
      }
    }
    if (overrides.batch?.includes(role) === true && models[role] !== undefined) {
      const r = models[role]!
      models[role] = { ...r, endpoints: r.endpoints.map((e) => ({ ...e, mode: "batch" as const })) }
    }
    if (overrides.concurrency !== undefined && models[role] !== undefined) {
      const r = models[role]!
      models[role] = { ...r, endpoints: r.endpoints.map((e) => ({ ...e, concurrency: overrides.concurrency! })) }
    }
  }
  return { ...config, models }
}

/**
 * Builds the LanguageModel roles. Keys come from the environment only: `apiKeyEnv` names the
 * variable (default OPENAI_API_KEY); a missing variable means no key (fine for local servers).
 * Local models load into `engines` (pass one made with `LocalEngines.make`, so that its scope
 * releases them; without one they load into a registry nobody releases).
 */
export const buildRoles = (
  config: PipelineConfig,
  env: Readonly<Record<string, string | undefined>>,
  only?: ReadonlyArray<Role>,
  /** Told once per endpoint what it does not do as configured (a constraint it ignored, a stream it forces). */
  onWarning?: (message: string) => void,
  engines: LocalEngines = LocalEngines.unscoped()
): Either.Either<Record<string, RoleConfig>, string> => {
  const roles: Record<string, RoleConfig> = {}
  for (const role of only ?? ROLES) {
    const settings = config.models[role]
    if (settings === undefined) continue
    const endpoints = []
    for (const e of settings.endpoints) {
      const spec = parseModelSpec(e.model)
      if (Either.isLeft(spec)) return Either.left(`models.${role}: ${spec.left}`)
      if (spec.right.kind === "onnx") {
        // A local model: concurrent calls are decoded together, up to `concurrency` rows a batch.
        endpoints.push({
          provider: modelFromSpec(spec.right, {
            engines,
            threads: e.threads,
            maxBatch: e.concurrency,
            q4Compute: e.q4Compute,
            f16Compute: e.f16Compute,
            packProducts: e.packProducts,
            rotary: e.rotary
          }).provider,
          concurrency: e.concurrency,
          requestsPerMinute: undefined,
          tokensPerMinute: undefined,
          price: e.price
        })
        continue
      }
      const apiKey = env[e.apiKeyEnv ?? "OPENAI_API_KEY"]
      const host = new URL(spec.right.baseUrl).hostname
      const local = isLoopbackHost(host)
      if (e.apiKeyEnv !== undefined && (apiKey === undefined || apiKey === "") && !local) {
        return Either.left(
          `models.${role}: the environment variable ${e.apiKeyEnv} is not set (it holds the key for ${host})`
        )
      }
      endpoints.push({
        provider: openAiProvider({
          baseUrl: spec.right.baseUrl,
          model: spec.right.model,
          apiKey: apiKey === "" ? undefined : apiKey,
          stream: e.stream,
          timeoutMs: e.timeoutSeconds * 1000,
          firstTokenTimeoutMs: e.firstTokenSeconds * 1000,
          stallTimeoutMs: e.stallSeconds * 1000,
          guidedDecoding: e.guidedDecoding,
          extraBody: e.extraBody,
          maxTokensField: e.maxTokensField,
          maxOutputTokens: e.maxOutputTokens,
          onWarning: onWarning === undefined ? undefined : (m) => onWarning(`models.${role}: ${m}`)
        }),
        concurrency: e.mode === "batch" ? e.batch.maxWaiting : e.concurrency,
        adaptive: e.mode === "batch" ? undefined : e.adaptive,
        batch:
          e.mode === "batch"
            ? {
                maxRequests: e.batch.maxRequests,
                maxBytes: Math.floor(e.batch.maxMegabytes * 1024 * 1024),
                gatherMs: e.batch.gatherSeconds * 1000,
                pollMs: e.batch.pollSeconds * 1000,
                pollMaxMs: e.batch.pollMaxSeconds * 1000,
                resubmit: e.batch.resubmit,
                fallbackLive: e.batch.fallback === "live",
                priceFactor: e.batch.priceFactor
              }
            : undefined,
        requestsPerMinute: e.requestsPerMinute,
        tokensPerMinute: e.tokensPerMinute,
        price: e.price
      })
    }
    roles[role] = { endpoints, maxAttempts: settings.maxAttempts }
  }
  return Either.right(roles)
}

/** Requests one role may have in flight across its endpoints. */
export const roleConcurrency = (config: PipelineConfig, role: Role): number =>
  config.models[role]?.endpoints.reduce((n, e) => n + (e.mode === "batch" ? e.batch.maxWaiting : e.concurrency), 0) ?? 1

/**
 * One model named by a spec, for evaluation: its provider, and the name results carry (the
 * endpoint's model name, or a local folder's name with its variant: `qwen-0.5b-q4`).
 */
export const modelFromSpec = (
  spec: ModelSpec,
  options: {
    /** Where a local model loads (default: a registry nobody releases; see `LocalEngines`). */
    readonly engines?: LocalEngines | undefined
    readonly apiKey?: string | undefined
    readonly threads?: number | undefined
    readonly maxBatch?: number | undefined
    readonly q4Compute?: Q4Compute | undefined
    readonly f16Compute?: F16Compute | undefined
    readonly packProducts?: boolean | undefined
    /** `as-exported` keeps the file's rotary nodes (default: fused). */
    readonly rotary?: "fused" | "as-exported" | undefined
  } = {}
): { readonly provider: ModelProvider; readonly name: string } =>
  spec.kind === "onnx"
    ? {
        // The file's own 4-bit, float16 or rotary arithmetic answers differently: its results carry another name.
        name:
          `${basename(spec.path)}${spec.variant !== undefined ? `-${spec.variant}` : ""}${options.q4Compute === "as-exported" ? "-as-exported" : ""}` +
          `${options.f16Compute === "as-exported" ? "-f16-as-exported" : ""}${options.rotary === "as-exported" ? "-rotary-as-exported" : ""}`,
        // Concurrent questions are decoded together, `maxBatch` rows a batch.
        provider: onnxProvider(
          {
            path: spec.path,
            variant: spec.variant,
            threads: options.threads,
            maxBatch: options.maxBatch,
            q4Compute: options.q4Compute,
            f16Compute: options.f16Compute,
            packProducts: options.packProducts,
            fuseRotary: options.rotary === "as-exported" ? false : undefined
          },
          options.engines ?? LocalEngines.unscoped()
        )
      }
    : {
        name: spec.model,
        provider: openAiProvider({ baseUrl: spec.baseUrl, model: spec.model, apiKey: options.apiKey })
      }

/**
 * Reads every local (`onnx:`) model folder the given roles use, so that a broken or missing folder
 * stops a run before it starts, with the file and field at fault, instead of failing every call.
 */
export const checkLocalModels = (config: PipelineConfig, only?: ReadonlyArray<Role>): Effect.Effect<void, string> =>
  Effect.forEach(
    (only ?? ROLES).flatMap((role) =>
      (config.models[role]?.endpoints ?? []).map((e) => ({ role, spec: parseModelSpec(e.model) }))
    ),
    ({ role, spec }) =>
      Either.isRight(spec) && spec.right.kind === "onnx"
        ? checkLocalModel(spec.right).pipe(Effect.mapError((m) => `models.${role}: ${m}`))
        : Effect.void,
    { discard: true }
  )

/** A local model spec's folder and variant, checked without loading weights. */
export const checkLocalModel = (spec: Extract<ModelSpec, { kind: "onnx" }>): Effect.Effect<void, string> =>
  readModelFolder(spec.path).pipe(
    Effect.mapError((e) => e.message),
    Effect.flatMap((folder) =>
      Either.match(pickVariant(folder, spec.variant), { onLeft: Effect.fail, onRight: () => Effect.void })
    )
  )

/**
 * The endpoints of these roles that cost money but have no price (remote ones; a local model
 * costs nothing), as `models.ROLE.endpoints.[i] (MODEL)`: a budget in US dollars cannot count them.
 */
export const unpricedEndpoints = (config: PipelineConfig, roles: ReadonlyArray<Role>): Array<string> =>
  roles.flatMap((role) =>
    (config.models[role]?.endpoints ?? []).flatMap((e, i) =>
      e.price === undefined && !e.model.startsWith("onnx:") ? [`models.${role}.endpoints.[${i}] (${e.model})`] : []
    )
  )
