import * as Effect from "effect/Effect"
import { join } from "node:path"
import { afterEach, beforeEach } from "vitest"
import { type LanguageModelShape, makeLanguageModel, type RoleConfig } from "../llm/LanguageModel.js"
import { openAiProvider, type OpenAiEndpointConfig } from "../llm/openai.js"
import { ChatRequest } from "../llm/schema.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { type ScriptedServer, type ScriptedServerOptions, startScriptedServer } from "../testing/scriptedServer.js"
import { tempDir } from "./fixtures.js"

/** A one-turn user request with the sampling the LLM tests use unless they say otherwise. */
export const ask = (q: string, extra: Partial<ConstructorParameters<typeof ChatRequest>[0]> = {}) =>
  new ChatRequest({ messages: [{ role: "user", content: q }], temperature: 0.6, max_tokens: 256, ...extra })

/**
 * Registers, in the calling `describe`, a fresh temporary folder and a set of scripted loopback
 * servers per test, closed and removed after it. `endpointDefaults` are the endpoint settings
 * every `endpoint(server)` starts from.
 */
export const languageModelHarness = (endpointDefaults: Partial<OpenAiEndpointConfig> = {}) => {
  let tmp: ReturnType<typeof tempDir> | undefined
  let servers: Array<ScriptedServer> = []
  beforeEach(() => {
    tmp = tempDir()
    servers = []
  })
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()))
    tmp?.cleanup()
  })
  const dir = (): string => {
    if (!tmp) throw new Error("the harness is used outside a test")
    return tmp.dir
  }
  return {
    /** This test's temporary folder. */
    dir,
    /** Starts a scripted server that is closed after the test. */
    server: async (options: ScriptedServerOptions = {}): Promise<ScriptedServer> => {
      const s = await startScriptedServer(options)
      servers.push(s)
      return s
    },
    /** An OpenAI-compatible provider for a scripted server. */
    endpoint: (s: ScriptedServer, extra: Partial<OpenAiEndpointConfig> = {}) =>
      openAiProvider({ baseUrl: s.baseUrl, model: "m", timeoutMs: 5_000, ...endpointDefaults, ...extra }),
    /** Builds the service over a real SQLite store file in the test's folder and runs `f` with it. */
    withModel: <A, E>(
      roles: Record<string, RoleConfig>,
      f: (lm: LanguageModelShape) => Effect.Effect<A, E>,
      defaults: Parameters<typeof makeLanguageModel>[1] = {},
      db = "fastcot.db"
    ): Promise<A> =>
      Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(makeLanguageModel(roles, defaults), f).pipe(
            Effect.provide(SqliteRunStoreLive(join(dir(), db)))
          )
        )
      )
  }
}
