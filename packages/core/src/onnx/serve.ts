import * as http from "node:http"
import { bearerToken, sameToken } from "../util/accessToken.js"
import type { AddressInfo } from "node:net"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { ChatRequest } from "../llm/schema.js"
import { describeParseError } from "../schema/errors.js"
import { type LocalEngine } from "./engine.js"
import { toGenerateRequest } from "./onnxProvider.js"
import { LocalModelError } from "./localModel.js"
import { chatLogprobs, complete, CompletionsRequest, completionsLogprobs } from "./serveCompletions.js"

/** The part of an OpenAI chat-completions body this server honours. */
const WireRequest = Schema.Struct({
  model: Schema.optional(Schema.String),
  messages: Schema.Array(
    Schema.Struct({
      role: Schema.Literal("system", "user", "assistant"),
      content: Schema.Union(
        Schema.String,
        Schema.Array(Schema.Struct({ type: Schema.String, text: Schema.optional(Schema.String) }))
      )
    })
  ).pipe(Schema.minItems(1)),
  temperature: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 2)))),
  top_p: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 1)))),
  max_tokens: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.positive()))),
  max_completion_tokens: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.positive()))),
  seed: Schema.optional(Schema.NullOr(Schema.Int)),
  stop: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Array(Schema.String)))),
  n: Schema.optional(Schema.NullOr(Schema.Literal(1))),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }))),
  /** vLLM's constrained choice, honoured exactly by constrained decoding: `structured_outputs.choice` (vLLM 0.12 on) or the earlier `guided_choice`. */
  structured_outputs: Schema.optional(
    Schema.NullOr(Schema.Struct({ choice: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))) }))
  ),
  guided_choice: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  /** Each generated token's log-probability, and the `top_logprobs` most likely at its step. */
  logprobs: Schema.optional(Schema.NullOr(Schema.Boolean)),
  top_logprobs: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.between(0, 20))))
})

export interface ServeOptions {
  readonly engine: LocalEngine
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** The model name /v1/models reports and replies carry (default: the folder's name). */
  readonly modelName?: string | undefined
  readonly onRequest?: ((line: string) => void) | undefined
  /**
   * The access token every request must carry as `Authorization: Bearer TOKEN` (as an
   * OpenAI-compatible client sends its API key); `/health` answers without it. None: open.
   */
  readonly token?: string | undefined
}

export interface LocalServer {
  readonly url: string
  readonly port: number
}

const MAX_BODY = 8 * 2 ** 20

const sendJson = (res: http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}
const sendError = (
  res: http.ServerResponse,
  status: number,
  message: string,
  type = status >= 500 ? "server_error" : "invalid_request_error"
) => sendJson(res, status, { error: { message, type, code: null, param: null } })

const readBody = (req: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY) {
        reject(new Error(`the request body is over ${MAX_BODY} bytes`))
        req.destroy()
      } else chunks.push(c)
    })
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

/**
 * Serves a local model as an OpenAI-compatible HTTP API (`GET /v1/models`,
 * `POST /v1/chat/completions`, streaming or not, and `POST /v1/completions` with token ids and
 * log-probabilities as vLLM takes them), bound to 127.0.0.1 unless told otherwise.
 * Concurrent requests share the engine's batches. The server closes with its scope.
 */
export const serveLocalModel = (options: ServeOptions): Effect.Effect<LocalServer, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; info: LocalServer }, Error>((resume) => {
      const engine = options.engine
      const modelName = options.modelName ?? engine.model.folder.dir.split(/[\\/]/).pop() ?? "local"
      let counter = 0
      const server = http.createServer((req, res) => {
        void handle(req, res).catch((e: unknown) => {
          const message = e instanceof Error ? e.message : String(e)
          options.onRequest?.(`${req.method} ${req.url} failed: ${message.slice(0, 300)}`)
          if (!res.headersSent) sendError(res, 500, message)
          else res.end()
        })
      })
      /** `POST /v1/completions`: text or token ids in, text and log-probabilities out (not streamed). */
      const serveCompletion = async (
        raw: unknown,
        res: http.ServerResponse,
        refuse: (status: number, message: string) => void
      ): Promise<void> => {
        const decoded = Schema.decodeUnknownEither(CompletionsRequest)(raw)
        if (Either.isLeft(decoded)) return refuse(400, describeParseError(decoded.left))
        const ac = new AbortController()
        res.on("close", () => {
          if (!res.writableFinished) ac.abort()
        })
        const started = Date.now()
        try {
          const body = decoded.right
          const r = await complete(engine, body, ac.signal)
          const echoed = body.echo === true ? engine.model.tokenizer.decode([...r.promptIds], false) : ""
          sendJson(res, 200, {
            id: `cmpl-${Date.now().toString(36)}${(counter++).toString(36)}`,
            object: "text_completion",
            created: Math.floor(Date.now() / 1000),
            model: modelName,
            choices: [
              {
                index: 0,
                text: echoed + r.text,
                finish_reason: r.finishReason === "length" ? "length" : "stop",
                logprobs:
                  r.logprobs === undefined
                    ? null
                    : completionsLogprobs(
                        engine,
                        r.logprobs,
                        r.promptLogprobs !== undefined ? { ids: r.promptIds, logprobs: r.promptLogprobs } : undefined
                      )
              }
            ],
            usage: usageOf(r)
          })
          options.onRequest?.(
            `POST /v1/completions ${r.promptTokens}+${r.completionTokens} tokens ${Date.now() - started} ms`
          )
        } catch (e) {
          if (e instanceof LocalModelError && e.reason === "prompt-too-long") return refuse(400, e.message)
          if (e instanceof LocalModelError && e.reason === "cancelled") return
          refuse(500, e instanceof Error ? e.message : String(e))
        }
      }

      const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
        const url = new URL(req.url ?? "/", "http://localhost")
        // A refused or failed request is answered and logged (the client's mistake shows on the server too).
        const refuse = (status: number, message: string) => {
          options.onRequest?.(`${req.method} ${url.pathname} ${status} ${message.slice(0, 300)}`)
          sendError(res, status, message)
        }
        if (req.method === "GET" && url.pathname === "/health")
          return sendJson(res, 200, { status: "ok", pending: engine.pending })
        if (options.token !== undefined) {
          const given = bearerToken(req.headers.authorization)
          if (given === undefined || !sameToken(given, options.token))
            return refuse(401, "send the server's access token as Authorization: Bearer TOKEN (the API key)")
        }
        if (req.method === "GET" && (url.pathname === "/v1/models" || url.pathname === "/models")) {
          return sendJson(res, 200, {
            object: "list",
            data: [{ id: modelName, object: "model", created: 0, owned_by: "fastcot" }]
          })
        }
        const completions = url.pathname === "/v1/completions" || url.pathname === "/completions"
        if (!completions && url.pathname !== "/v1/chat/completions" && url.pathname !== "/chat/completions")
          return refuse(404, `no route ${req.method} ${url.pathname}`)
        if (req.method !== "POST") return refuse(405, "use POST")
        let raw: unknown
        try {
          raw = JSON.parse(await readBody(req))
        } catch (e) {
          return refuse(400, `the body is not JSON: ${e instanceof Error ? e.message : String(e)}`)
        }
        if (completions) return serveCompletion(raw, res, refuse)
        const decoded = Schema.decodeUnknownEither(WireRequest)(raw)
        if (Either.isLeft(decoded)) return refuse(400, describeParseError(decoded.left))
        const body = decoded.right
        const stop =
          body.stop === undefined || body.stop === null
            ? undefined
            : typeof body.stop === "string"
              ? [body.stop]
              : body.stop
        const chat = new ChatRequest({
          messages: body.messages.map((m) => ({
            role: m.role,
            content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text ?? "").join("")
          })),
          ...(body.temperature != null ? { temperature: body.temperature } : {}),
          ...(body.top_p != null ? { top_p: body.top_p } : {}),
          ...(body.max_completion_tokens != null || body.max_tokens != null
            ? { max_tokens: (body.max_completion_tokens ?? body.max_tokens)! }
            : {}),
          ...(body.seed != null ? { seed: body.seed } : {}),
          ...(stop !== undefined ? { stop } : {}),
          ...((body.structured_outputs?.choice ?? body.guided_choice) != null
            ? { choice: (body.structured_outputs?.choice ?? body.guided_choice)! }
            : {})
        })
        const logprobs = body.logprobs === true ? (body.top_logprobs ?? 0) : undefined
        if (logprobs !== undefined && body.stream === true)
          return refuse(400, "logprobs: given in replies that are not streamed only")
        const id = `chatcmpl-${Date.now().toString(36)}${(counter++).toString(36)}`
        const created = Math.floor(Date.now() / 1000)
        const ac = new AbortController()
        res.on("close", () => {
          if (!res.writableFinished) ac.abort()
        })
        const started = Date.now()
        if (body.stream === true) {
          res.writeHead(200, {
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            connection: "keep-alive"
          })
          const chunk = (delta: Record<string, unknown>, finish: string | null, usage?: unknown) =>
            res.write(
              `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: modelName, choices: [{ index: 0, delta, finish_reason: finish }], ...(usage !== undefined ? { usage } : {}) })}\n\n`
            )
          chunk({ role: "assistant", content: "" }, null)
          try {
            const r = await engine.submit(
              toGenerateRequest(engine.model, chat, {}, ac.signal, (text) => chunk({ content: text }, null))
            )
            chunk({}, r.finishReason === "length" ? "length" : "stop")
            if (body.stream_options?.include_usage === true) {
              res.write(
                `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: modelName, choices: [], usage: usageOf(r) })}\n\n`
              )
            }
            res.write("data: [DONE]\n\n")
            res.end()
            options.onRequest?.(
              `POST /v1/chat/completions stream ${r.promptTokens}+${r.completionTokens} tokens ${Date.now() - started} ms`
            )
          } catch (e) {
            const message = e instanceof Error ? e.message : String(e)
            options.onRequest?.(`POST /v1/chat/completions stream failed: ${message.slice(0, 300)}`)
            res.write(`data: ${JSON.stringify({ error: { message, type: "server_error" } })}\n\n`)
            res.end()
          }
          return
        }
        try {
          const r = await engine.submit({ ...toGenerateRequest(engine.model, chat, {}, ac.signal), logprobs })
          sendJson(res, 200, {
            id,
            object: "chat.completion",
            created,
            model: modelName,
            choices: [
              {
                index: 0,
                message: { role: "assistant", content: r.text },
                finish_reason: r.finishReason === "length" ? "length" : "stop",
                logprobs: r.logprobs === undefined ? null : chatLogprobs(engine, r.logprobs)
              }
            ],
            usage: usageOf(r)
          })
          options.onRequest?.(
            `POST /v1/chat/completions ${r.promptTokens}+${r.completionTokens} tokens ${Date.now() - started} ms`
          )
        } catch (e) {
          if (e instanceof LocalModelError && e.reason === "prompt-too-long") return refuse(400, e.message)
          if (e instanceof LocalModelError && e.reason === "cancelled") return
          refuse(500, e instanceof Error ? e.message : String(e))
        }
      }
      server.on("error", (e) => resume(Effect.fail(e)))
      server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
        const addr = server.address() as AddressInfo
        const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address
        resume(Effect.succeed({ server, info: { url: `http://${host}:${addr.port}/v1`, port: addr.port } }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ info }) => info))

const usageOf = (r: { promptTokens: number; completionTokens: number }) => ({
  prompt_tokens: r.promptTokens,
  completion_tokens: r.completionTokens,
  total_tokens: r.promptTokens + r.completionTokens
})
