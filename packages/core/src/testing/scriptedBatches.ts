import { randomUUID } from "node:crypto"
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import type { IncomingMessage, ServerResponse } from "node:http"

/**
 * The scripted server's batch API, as OpenAI's (and Alibaba Cloud's compatible one) work:
 * `POST /v1/files` (multipart, purpose `batch`), `POST /v1/batches`, `GET /v1/batches/{id}`,
 * `GET /v1/batches` (a page, newest first), `GET /v1/files/{id}/content`. Each line of a batch is
 * answered by the server's script, as a non-streamed call would be. Faults: a batch that fails
 * validation, lines that fail, a batch that expires part-way, slow completion, and a restart (the
 * state lives in `stateFile`, and a server started again on it carries on).
 */
export interface ScriptedBatchOptions {
  /** Milliseconds a batch spends validating (default 20). */
  readonly validateMs?: number
  /** Milliseconds a batch spends in progress, by its number (0 for the first created; default 100). */
  readonly completeMs?: number | ((batchIndex: number) => number)
  /** Batches, by number, that fail validation. */
  readonly failValidation?: (batchIndex: number) => boolean
  /** Lines that fail with a 500 (written to the error file). */
  readonly failLine?: (customId: string, batchIndex: number) => boolean
  /** Batches, by number and size, that expire: the first half of their lines complete, the rest expire. */
  readonly expire?: (batchIndex: number, lines: number) => boolean
  /** Where the state is kept: files, batches and the log survive a restart of the server on it. */
  readonly stateFile?: string
  /** The server's limits: requests per batch and bytes per file (OpenAI's are 50,000 and 200 MB). */
  readonly maxRequests?: number
  readonly maxBytes?: number
}

/** A batch as the API returns it. */
export interface ScriptedBatch {
  id: string
  object: "batch"
  endpoint: string
  input_file_id: string
  completion_window: string
  status: "validating" | "failed" | "in_progress" | "finalizing" | "completed" | "expired" | "cancelled"
  output_file_id: string | null
  error_file_id: string | null
  errors: { object: "list"; data: Array<{ code: string; message: string; line: number | null }> } | null
  created_at: number
  in_progress_at: number | null
  completed_at: number | null
  failed_at: number | null
  expired_at: number | null
  request_counts: { total: number; completed: number; failed: number }
  metadata: Record<string, string> | null
  /** The batch's number, in creation order (not part of OpenAI's object). */
  index: number
}

interface State {
  files: Record<string, { id: string; filename: string; purpose: string; content: string }>
  batches: Record<string, ScriptedBatch>
  /** Every line of every batch created, in order: the server's log of what was submitted. */
  log: Array<{ batch: string; customId: string }>
  created: number
}

export interface ScriptedBatchApi {
  /** Serves a request when it is the batch API's; false when it is not. */
  readonly handle: (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<boolean>
  /** Every line submitted in a batch, across restarts. */
  readonly log: () => ReadonlyArray<{ readonly batch: string; readonly customId: string }>
  readonly batches: () => ReadonlyArray<ScriptedBatch>
  /** Stops the timers (a server that goes down mid-batch; its state file keeps the rest). */
  readonly stop: () => void
}

const now = () => Math.floor(Date.now() / 1000)

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const parts: Array<Buffer> = []
    req.on("data", (c: Buffer) => parts.push(c))
    req.on("end", () => resolve(Buffer.concat(parts)))
    req.on("error", reject)
  })

/** The parts of a multipart/form-data body: name → text (enough for the files API's two fields). */
const multipart = (body: Buffer, contentType: string): Map<string, { filename?: string; value: string }> => {
  const parts = new Map<string, { filename?: string; value: string }>()
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType)
  if (boundary === null) return parts
  const text = body.toString("utf8")
  for (const chunk of text.split(`--${boundary[1] ?? boundary[2]}`)) {
    const split = chunk.indexOf("\r\n\r\n")
    if (split < 0) continue
    const head = chunk.slice(0, split)
    const name = /name="([^"]*)"/.exec(head)?.[1]
    if (name === undefined) continue
    const filename = /filename="([^"]*)"/.exec(head)?.[1]
    const value = chunk.slice(split + 4).replace(/\r\n$/, "")
    parts.set(name, filename === undefined ? { value } : { filename, value })
  }
  return parts
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

export const scriptedBatchApi = (
  options: ScriptedBatchOptions,
  answer: (body: Record<string, unknown>) => { readonly status: number; readonly body: unknown }
): ScriptedBatchApi => {
  const state: State =
    options.stateFile !== undefined && existsSync(options.stateFile)
      ? (JSON.parse(readFileSync(options.stateFile, "utf8")) as State)
      : { files: {}, batches: {}, log: [], created: 0 }
  const save = () => {
    if (options.stateFile === undefined) return
    writeFileSync(`${options.stateFile}.tmp`, JSON.stringify(state))
    renameSync(`${options.stateFile}.tmp`, options.stateFile)
  }
  const timers = new Set<NodeJS.Timeout>()
  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t)
      f()
    }, ms)
    timers.add(t)
  }
  const addFile = (filename: string, purpose: string, content: string) => {
    const id = `file-${randomUUID().replaceAll("-", "").slice(0, 24)}`
    state.files[id] = { id, filename, purpose, content }
    return id
  }

  const validate = (batch: ScriptedBatch) => {
    const input = state.files[batch.input_file_id]!.content
    const lines = input.split("\n").filter((l) => l.trim() !== "")
    const errors: Array<{ code: string; message: string; line: number | null }> = []
    const seen = new Set<string>()
    for (const [i, line] of lines.entries()) {
      try {
        const parsed = JSON.parse(line) as { custom_id?: unknown; method?: unknown; url?: unknown; body?: unknown }
        if (typeof parsed.custom_id !== "string") errors.push({ code: "missing_custom_id", message: "", line: i + 1 })
        else if (seen.has(parsed.custom_id))
          errors.push({
            code: "duplicate_custom_id",
            message: `the custom_id ${parsed.custom_id} repeats`,
            line: i + 1
          })
        else seen.add(parsed.custom_id)
        if (parsed.method !== "POST" || parsed.url !== batch.endpoint)
          errors.push({ code: "invalid_url", message: `lines must POST to ${batch.endpoint}`, line: i + 1 })
      } catch {
        errors.push({ code: "invalid_json_line", message: "a line is not JSON", line: i + 1 })
      }
    }
    if (lines.length > (options.maxRequests ?? 50_000))
      errors.push({
        code: "too_many_requests",
        message: `more than ${options.maxRequests ?? 50_000} requests`,
        line: null
      })
    if (options.failValidation?.(batch.index) === true)
      errors.push({ code: "invalid_request", message: "the batch failed validation (scripted)", line: null })
    batch.request_counts.total = lines.length
    if (errors.length > 0) {
      batch.status = "failed"
      batch.failed_at = now()
      batch.errors = { object: "list", data: errors }
    } else {
      batch.status = "in_progress"
      batch.in_progress_at = now()
      for (const line of lines)
        state.log.push({ batch: batch.id, customId: (JSON.parse(line) as { custom_id: string }).custom_id })
      schedule(batch)
    }
    save()
  }

  const run = (batch: ScriptedBatch) => {
    const lines = state.files[batch.input_file_id]!.content.split("\n").filter((l) => l.trim() !== "")
    const expires = options.expire?.(batch.index, lines.length) === true
    const output: Array<string> = []
    const errors: Array<string> = []
    for (const [i, line] of lines.entries()) {
      const { custom_id, body } = JSON.parse(line) as { custom_id: string; body: Record<string, unknown> }
      const id = `batch_req_${randomUUID().replaceAll("-", "").slice(0, 20)}`
      if (expires && i >= Math.ceil(lines.length / 2)) {
        errors.push(
          JSON.stringify({
            id,
            custom_id,
            response: null,
            error: {
              code: "batch_expired",
              message: "This request could not be executed before the completion window expired."
            }
          })
        )
        continue
      }
      if (options.failLine?.(custom_id, batch.index) === true) {
        errors.push(
          JSON.stringify({
            id,
            custom_id,
            response: {
              status_code: 500,
              request_id: id,
              body: { error: { message: "The server had an error processing this request (scripted)." } }
            },
            error: null
          })
        )
        batch.request_counts.failed++
        continue
      }
      const answered = answer(body)
      const line200 = JSON.stringify({
        id,
        custom_id,
        response: { status_code: answered.status, request_id: id, body: answered.body },
        error: null
      })
      if (answered.status === 200) {
        output.push(line200)
        batch.request_counts.completed++
      } else {
        errors.push(line200)
        batch.request_counts.failed++
      }
    }
    if (output.length > 0)
      batch.output_file_id = addFile(`${batch.id}_output.jsonl`, "batch_output", output.join("\n") + "\n")
    if (errors.length > 0)
      batch.error_file_id = addFile(`${batch.id}_error.jsonl`, "batch_output", errors.join("\n") + "\n")
    if (expires) {
      batch.status = "expired"
      batch.expired_at = now()
    } else {
      batch.status = "completed"
      batch.completed_at = now()
    }
    save()
  }

  const completeMs = (batch: ScriptedBatch) =>
    typeof options.completeMs === "function" ? options.completeMs(batch.index) : (options.completeMs ?? 100)
  const schedule = (batch: ScriptedBatch) => {
    if (batch.status === "validating") later(options.validateMs ?? 20, () => validate(batch))
    else if (batch.status === "in_progress" || batch.status === "finalizing") later(completeMs(batch), () => run(batch))
  }
  // A restarted server carries on with the batches it had.
  for (const batch of Object.values(state.batches)) schedule(batch)

  const handle = async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> => {
    const files = /\/files(?:\/([^/]+))?(\/content)?$/.exec(pathname)
    const batches = /\/batches(?:\/([^/]+))?$/.exec(pathname)
    if (files !== null) {
      if (req.method === "POST" && files[1] === undefined) {
        const body = await readBody(req)
        if (body.length > (options.maxBytes ?? 200 * 1024 * 1024)) {
          json(res, 413, { error: { message: `the file is over ${options.maxBytes ?? 200 * 1024 * 1024} bytes` } })
          return true
        }
        const parts = multipart(body, req.headers["content-type"] ?? "")
        const file = parts.get("file")
        const purpose = parts.get("purpose")?.value
        if (file === undefined || purpose !== "batch") {
          json(res, 400, { error: { message: "a file and purpose=batch are required" } })
          return true
        }
        const id = addFile(file.filename ?? "upload.jsonl", purpose, file.value)
        save()
        json(res, 200, {
          id,
          object: "file",
          bytes: Buffer.byteLength(file.value),
          created_at: now(),
          filename: file.filename ?? "upload.jsonl",
          purpose
        })
        return true
      }
      const file = files[1] === undefined ? undefined : state.files[files[1]]
      if (req.method === "GET" && file !== undefined) {
        if (files[2] !== undefined) {
          res.writeHead(200, { "content-type": "application/octet-stream" })
          res.end(file.content)
        } else
          json(res, 200, {
            id: file.id,
            object: "file",
            bytes: Buffer.byteLength(file.content),
            filename: file.filename,
            purpose: file.purpose
          })
        return true
      }
      json(res, 404, { error: { message: `no file ${files[1] ?? ""}` } })
      return true
    }
    if (batches !== null) {
      const view = (b: ScriptedBatch) => (({ index: _, ...rest }) => rest)(b)
      if (req.method === "POST" && batches[1] === undefined) {
        let body: { input_file_id?: unknown; endpoint?: unknown; completion_window?: unknown; metadata?: unknown }
        try {
          body = JSON.parse((await readBody(req)).toString("utf8")) as typeof body
        } catch {
          json(res, 400, { error: { message: "body is not JSON" } })
          return true
        }
        if (typeof body.input_file_id !== "string" || state.files[body.input_file_id] === undefined) {
          json(res, 400, { error: { message: `no file ${String(body.input_file_id)}` } })
          return true
        }
        const batch: ScriptedBatch = {
          id: `batch_${randomUUID().replaceAll("-", "").slice(0, 24)}`,
          object: "batch",
          endpoint: typeof body.endpoint === "string" ? body.endpoint : "/v1/chat/completions",
          input_file_id: body.input_file_id,
          completion_window: typeof body.completion_window === "string" ? body.completion_window : "24h",
          status: "validating",
          output_file_id: null,
          error_file_id: null,
          errors: null,
          created_at: now(),
          in_progress_at: null,
          completed_at: null,
          failed_at: null,
          expired_at: null,
          request_counts: { total: 0, completed: 0, failed: 0 },
          metadata: (body.metadata as Record<string, string> | undefined) ?? null,
          index: state.created++
        }
        state.batches[batch.id] = batch
        save()
        schedule(batch)
        json(res, 200, view(batch))
        return true
      }
      if (req.method === "GET" && batches[1] !== undefined) {
        const batch = state.batches[batches[1]]
        if (batch === undefined) json(res, 404, { error: { message: `no batch ${batches[1]}` } })
        else json(res, 200, view(batch))
        return true
      }
      if (req.method === "GET") {
        const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "")
        const limit = Number(query.get("limit") ?? 20)
        const after = query.get("after")
        const all = Object.values(state.batches).sort((a, b) => b.index - a.index)
        const from = after === null ? 0 : all.findIndex((b) => b.id === after) + 1
        const page = all.slice(from, from + limit)
        json(res, 200, {
          object: "list",
          data: page.map(view),
          first_id: page[0]?.id ?? null,
          last_id: page[page.length - 1]?.id ?? null,
          has_more: from + limit < all.length
        })
        return true
      }
    }
    return false
  }

  return {
    handle,
    log: () => state.log,
    batches: () => Object.values(state.batches),
    stop: () => {
      for (const t of timers) clearTimeout(t)
      timers.clear()
    }
  }
}
