import { randomUUID } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { BadResponse, type LlmError } from "../errors.js"
import type { BatchWire } from "../provider.js"

/**
 * The OpenAI batch API as fastcot uses it (Alibaba Cloud's compatible mode and other
 * OpenAI-compatible batch endpoints take the same calls): upload a JSONL file with purpose
 * `batch`, create a batch from it, read its state, page through the batches, download a file.
 * Every reply passes a Schema; what does not is a `BadResponse` naming the call.
 */

/** A batch as the API describes it (fields fastcot reads; others are ignored). */
export const RemoteBatch = Schema.Struct({
  id: Schema.String,
  status: Schema.String,
  input_file_id: Schema.String,
  output_file_id: Schema.optional(Schema.NullOr(Schema.String)),
  error_file_id: Schema.optional(Schema.NullOr(Schema.String)),
  errors: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        data: Schema.optional(
          Schema.Array(
            Schema.Struct({
              code: Schema.optional(Schema.NullOr(Schema.String)),
              message: Schema.optional(Schema.NullOr(Schema.String)),
              line: Schema.optional(Schema.NullOr(Schema.Number))
            })
          )
        )
      })
    )
  ),
  request_counts: Schema.optional(
    Schema.NullOr(Schema.Struct({ total: Schema.Number, completed: Schema.Number, failed: Schema.Number }))
  ),
  metadata: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String })))
})
export type RemoteBatch = typeof RemoteBatch.Type

const BatchPage = Schema.Struct({
  data: Schema.Array(RemoteBatch),
  has_more: Schema.optional(Schema.Boolean),
  last_id: Schema.optional(Schema.NullOr(Schema.String))
})

const UploadedFile = Schema.Struct({ id: Schema.String })

/** One line of an output or error file. */
export const OutputLine = Schema.Struct({
  custom_id: Schema.String,
  response: Schema.optional(Schema.NullOr(Schema.Struct({ status_code: Schema.Number, body: Schema.Unknown }))),
  error: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        code: Schema.optional(Schema.NullOr(Schema.String)),
        message: Schema.optional(Schema.NullOr(Schema.String))
      })
    )
  )
})
export type OutputLine = typeof OutputLine.Type

/** States after which a batch changes no more. */
export const FINAL_STATES: ReadonlySet<string> = new Set(["completed", "failed", "expired", "cancelled"])

const decoded =
  <A, I>(schema: Schema.Schema<A, I>, endpoint: string, what: string) =>
  (reply: { readonly status: number; readonly text: string }, wire: BatchWire): Effect.Effect<A, LlmError> => {
    if (reply.status < 200 || reply.status >= 300) return Effect.fail(wire.refusal(reply.status, reply.text))
    let json: unknown
    try {
      json = JSON.parse(reply.text)
    } catch {
      return Effect.fail(new BadResponse({ endpoint, message: `${what}: the reply is not JSON` }))
    }
    return Either.match(Schema.decodeUnknownEither(schema)(json), {
      onLeft: (e) =>
        Effect.fail(
          new BadResponse({
            endpoint,
            message: `${what}: ${ParseResult.TreeFormatter.formatErrorSync(e).slice(0, 300)}`
          })
        ),
      onRight: Effect.succeed
    })
  }

/** The batch API of one endpoint. */
export const batchApi = (wire: BatchWire, endpoint: string) => {
  const uploaded = decoded(UploadedFile, endpoint, "uploading a batch file")
  const batch = (what: string) => decoded(RemoteBatch, endpoint, what)
  const page = decoded(BatchPage, endpoint, "listing batches")
  return {
    /** Uploads a JSONL file for a batch; its id. */
    upload: (filename: string, jsonl: string): Effect.Effect<string, LlmError> => {
      const boundary = `fastcot-${randomUUID()}`
      const data = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
            `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
            `Content-Type: application/jsonl\r\n\r\n`
        ),
        Buffer.from(jsonl),
        Buffer.from(`\r\n--${boundary}--\r\n`)
      ])
      return Effect.flatMap(
        wire.api("POST", "/files", { contentType: `multipart/form-data; boundary=${boundary}`, data }),
        (reply) => Effect.map(uploaded(reply, wire), (f) => f.id)
      )
    },
    /** Creates a batch of the file's lines, to be done within 24 hours. */
    create: (fileId: string, metadata: Readonly<Record<string, string>>): Effect.Effect<RemoteBatch, LlmError> =>
      Effect.flatMap(
        wire.api("POST", "/batches", {
          contentType: "application/json",
          data: JSON.stringify({
            input_file_id: fileId,
            endpoint: "/v1/chat/completions",
            completion_window: "24h",
            metadata
          })
        }),
        (reply) => batch("creating a batch")(reply, wire)
      ),
    retrieve: (id: string): Effect.Effect<RemoteBatch, LlmError> =>
      Effect.flatMap(wire.api("GET", `/batches/${encodeURIComponent(id)}`), (reply) =>
        batch(`reading batch ${id}`)(reply, wire)
      ),
    /** The batch made of this file, looking through the newest `pages` pages of 100. */
    findByFile: (fileId: string, pages = 10): Effect.Effect<RemoteBatch | undefined, LlmError> =>
      Effect.gen(function* () {
        let after: string | undefined
        for (let i = 0; i < pages; i++) {
          const reply = yield* wire.api(
            "GET",
            `/batches?limit=100${after === undefined ? "" : `&after=${encodeURIComponent(after)}`}`
          )
          const p = yield* page(reply, wire)
          const found = p.data.find((b) => b.input_file_id === fileId)
          if (found !== undefined) return found
          if (p.has_more !== true || p.data.length === 0) return undefined
          after = p.data[p.data.length - 1]!.id
        }
        return undefined
      }),
    /** A file's content (an output or error file). */
    download: (fileId: string): Effect.Effect<string, LlmError> =>
      Effect.flatMap(wire.api("GET", `/files/${encodeURIComponent(fileId)}/content`), (reply) =>
        reply.status >= 200 && reply.status < 300
          ? Effect.succeed(reply.text)
          : Effect.fail(wire.refusal(reply.status, reply.text))
      )
  }
}

export type BatchApi = ReturnType<typeof batchApi>

/** The lines of an output or error file; a line that is not one is skipped and counted. */
export const outputLines = (text: string): { readonly lines: Array<OutputLine>; readonly unreadable: number } => {
  const lines: Array<OutputLine> = []
  let unreadable = 0
  const decode = Schema.decodeUnknownEither(OutputLine)
  for (const raw of text.split("\n")) {
    if (raw.trim() === "") continue
    try {
      const line = decode(JSON.parse(raw))
      if (Either.isRight(line)) lines.push(line.right)
      else unreadable++
    } catch {
      unreadable++
    }
  }
  return { lines, unreadable }
}
