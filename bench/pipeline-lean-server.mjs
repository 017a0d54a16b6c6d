// The pipeline bench's scripted roles (the same script as pipeline-server.mjs) behind a minimal
// HTTP/1.1 responder on 127.0.0.1, in its own process: requests with a Content-Length body on
// keep-alive connections, each answered after the latency in one write (a JSON completion, or
// the whole SSE stream with a Content-Length). It speaks only what fastcot's client sends, and
// spends less CPU a request than node:http, so that on a machine of few cores the bench's
// stand-in for a remote inference server takes less of the cores the pipeline runs on
// (`SERVER=lean node pipeline.bench.mjs`; a diagnostic beside the default node:http server).
import { createServer } from "node:net"
import { pipelineScript as script } from "./pipeline-script.mjs"

const latencyMs = Number(process.argv[2] ?? 40)
const HEADER_END = Buffer.from("\r\n\r\n")
const tokens = (text) => Math.max(1, Math.ceil(text.length / 4))

const NOT_FOUND = Buffer.from(
  'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 34\r\nconnection: keep-alive\r\n\r\n{"error":{"message":"not found"}}\n'
)

let served = 0
let totalMs = 0

/** The reply to one request body, as the bytes to write (status line, headers and body). */
const reply = (body, n) => {
  const request = JSON.parse(body)
  const messages = request.messages ?? []
  const { content } = script({ messages })
  const usage = {
    prompt_tokens: tokens(messages.map((m) => m.content).join(" ")),
    completion_tokens: tokens(content),
    total_tokens: 0
  }
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
  const model = request.model ?? "scripted"
  let payload
  let type
  if (request.stream === true) {
    const chunk = (choices, extra = {}) =>
      `data: ${JSON.stringify({ id: `cmpl-${n}`, object: "chat.completion.chunk", model, choices, ...extra })}\n\n`
    payload =
      chunk([{ index: 0, delta: { role: "assistant", content }, finish_reason: null }]) +
      chunk([{ index: 0, delta: {}, finish_reason: "stop" }]) +
      chunk([], { usage }) +
      "data: [DONE]\n\n"
    type = "text/event-stream"
  } else {
    payload = JSON.stringify({
      id: `cmpl-${n}`,
      object: "chat.completion",
      model,
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
      usage
    })
    type = "application/json"
  }
  const bytes = Buffer.from(payload)
  return Buffer.concat([
    Buffer.from(
      `HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ncontent-length: ${bytes.length}\r\nconnection: keep-alive\r\n\r\n`
    ),
    bytes
  ])
}

let requests = 0
const server = createServer((socket) => {
  socket.setNoDelay(true)
  let buffered = Buffer.alloc(0)
  socket.on("data", (data) => {
    buffered = buffered.length === 0 ? data : Buffer.concat([buffered, data])
    for (;;) {
      const end = buffered.indexOf(HEADER_END)
      if (end < 0) return
      const head = buffered.subarray(0, end).toString("latin1")
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
      if (buffered.length < end + 4 + length) return
      const body = buffered.subarray(end + 4, end + 4 + length).toString("utf8")
      buffered = buffered.subarray(end + 4 + length)
      const arrived = performance.now()
      const n = requests++
      // Anything but a chat completion (the client's look at a vLLM server's /version) is not found.
      const chat = head.startsWith("POST ") && head.includes("/chat/completions ")
      setTimeout(() => {
        if (socket.destroyed) return
        socket.write(chat ? reply(body, n) : NOT_FOUND)
        served++
        totalMs += performance.now() - arrived
      }, latencyMs)
    }
  })
  socket.on("error", () => socket.destroy())
})
server.listen(0, "127.0.0.1", () => process.stdout.write(`http://127.0.0.1:${server.address().port}/v1\n`))
process.on("SIGTERM", () => process.exit(0))
// SIGUSR2 as in pipeline-server.mjs: the first marks the timed run's start, the next prints how
// busy this thread was since and how long the requests served since took as this server saw them.
let since
let before
process.on("SIGUSR2", () => {
  if (since === undefined) {
    since = performance.eventLoopUtilization()
    before = { served, totalMs }
  } else {
    const count = served - before.served
    process.stdout.write(
      JSON.stringify({
        busy: performance.eventLoopUtilization(since).utilization,
        serverMs: count > 0 ? (totalMs - before.totalMs) / count : 0
      }) + "\n"
    )
  }
})
