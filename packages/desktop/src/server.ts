import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { readFile } from "node:fs/promises"
import { extname, join, normalize, sep } from "node:path"
import { fileURLToPath } from "node:url"
import { bearerToken, sameToken } from "@fastcot/core"
import { randomBytes } from "node:crypto"
import type { Backend } from "./backend.js"

/** The renderer's Content-Security-Policy: nothing but this origin, no inline script, no frames. */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json"
}

/** Where the built renderer lies (dist/renderer beside this file's dist folder). */
export const rendererDir = (): string => fileURLToPath(new URL("./renderer/", import.meta.url))

export interface UiServer {
  /** The address to open: with `?token=…` when the server requires a token. */
  readonly url: string
  readonly close: () => Promise<void>
}

const MAX_BODY = 300 * 2 ** 20

/**
 * `fastcot ui`: the desktop app's renderer and its backend over HTTP, on 127.0.0.1 by default.
 * `POST /api/<channel>` takes and returns the channel's JSON; `GET /api/events` streams run events
 * (server-sent events). Requests whose Host is not this server's are refused (DNS rebinding).
 *
 * With a `token` (what `fastcot ui` always gives unless told `--no-token` on loopback) every
 * request must be signed in, as Jupyter's are: the printed URL's `?token=` is traded for a
 * session cookie (HttpOnly, SameSite=Strict, so no other site's page can use it) and the address
 * bar is cleared of the token; scripts may send `Authorization: Bearer TOKEN` instead. Anything
 * else gets 401. Tokens are compared in constant time.
 */
export const serveUi = (
  backend: Backend,
  options: { host?: string; port?: number; staticDir?: string; token?: string | undefined } = {}
): Promise<UiServer> => {
  const token = options.token
  const sessions = new Set<string>()
  const COOKIE = "fastcot_session"
  const signedIn = (req: http.IncomingMessage): boolean => {
    if (token === undefined) return true
    const bearer = bearerToken(req.headers.authorization)
    if (bearer !== undefined && sameToken(bearer, token)) return true
    for (const part of (req.headers.cookie ?? "").split(";")) {
      const [name, value] = part.trim().split("=")
      if (name === COOKIE && value !== undefined && [...sessions].some((s) => sameToken(value, s))) return true
    }
    return false
  }
  const host = options.host ?? "127.0.0.1"
  const staticDir = options.staticDir ?? rendererDir()
  const server = http.createServer((req, res) => {
    void route(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: { kind: "failed", message: e instanceof Error ? e.message : String(e) } }))
    })
  })
  let allowedHosts = new Set<string>()
  const route = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!allowedHosts.has(req.headers.host ?? "")) {
      res.writeHead(421, { "content-type": "text/plain" })
      return res.end("misdirected request")
    }
    const url = new URL(req.url ?? "/", "http://localhost")
    const offered = url.searchParams.get("token")
    if (token !== undefined && offered !== null && req.method === "GET") {
      if (!sameToken(offered, token)) {
        res.writeHead(401, { "content-type": "text/plain; charset=utf-8" })
        return res.end("wrong token: open the address `fastcot ui` printed")
      }
      const session = randomBytes(32).toString("base64url")
      sessions.add(session)
      url.searchParams.delete("token")
      res.writeHead(303, {
        "set-cookie": `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`,
        location: url.pathname + url.search,
        "cache-control": "no-store"
      })
      return res.end()
    }
    if (!signedIn(req)) {
      const api = url.pathname.startsWith("/api/")
      res.writeHead(401, { "content-type": api ? "application/json" : "text/plain; charset=utf-8" })
      return res.end(
        api
          ? JSON.stringify({
              error: { kind: "unauthorized", message: "sign in: open the address with ?token= that fastcot ui printed" }
            })
          : "sign in: open the address with ?token= that `fastcot ui` printed (or send Authorization: Bearer TOKEN)"
      )
    }
    const security = {
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cross-origin-opener-policy": "same-origin"
    }
    if (url.pathname === "/api/events" && req.method === "GET") {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
        ...security
      })
      res.write(`data: ${JSON.stringify({ _tag: "view", view: backend.view() })}\n\n`)
      const off = backend.subscribe((p) => res.write(`data: ${JSON.stringify(p)}\n\n`))
      req.on("close", off)
      return
    }
    if (url.pathname.startsWith("/api/")) {
      if (req.method !== "POST") {
        res.writeHead(405, { "content-type": "application/json" })
        return res.end(JSON.stringify({ error: { kind: "bad-request", message: "use POST" } }))
      }
      // A cross-site form cannot send application/json: requiring it blocks CSRF from other pages.
      if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
        res.writeHead(415, { "content-type": "application/json" })
        return res.end(JSON.stringify({ error: { kind: "bad-request", message: "send application/json" } }))
      }
      const chunks: Array<Buffer> = []
      let size = 0
      for await (const c of req) {
        size += (c as Buffer).length
        if (size > MAX_BODY) {
          res.writeHead(413, { "content-type": "application/json" })
          return res.end(JSON.stringify({ error: { kind: "bad-request", message: "the request is too large" } }))
        }
        chunks.push(c as Buffer)
      }
      let body: unknown
      try {
        body = chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString("utf8"))
      } catch {
        res.writeHead(400, { "content-type": "application/json" })
        return res.end(JSON.stringify({ error: { kind: "bad-request", message: "the body is not JSON" } }))
      }
      const reply = await backend.handle(url.pathname.slice("/api/".length), body)
      const failed = typeof reply === "object" && reply !== null && "error" in reply
      const status = failed ? ((reply as { error: { kind: string } }).error.kind === "bad-request" ? 400 : 500) : 200
      res.writeHead(status, { "content-type": "application/json", ...security })
      return res.end(JSON.stringify(reply))
    }
    if (req.method !== "GET") {
      res.writeHead(405)
      return res.end()
    }
    const rel = normalize(decodeURIComponent(url.pathname === "/" ? "/index.html" : url.pathname)).replace(
      /^([/\\])+/,
      ""
    )
    const file = join(staticDir, rel)
    if (!file.startsWith(staticDir.endsWith(sep) ? staticDir : staticDir + sep)) {
      res.writeHead(404)
      return res.end()
    }
    const data = await readFile(file).catch(() => undefined)
    if (data === undefined) {
      res.writeHead(404, { "content-type": "text/plain" })
      return res.end("not found")
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", ...security })
    res.end(data)
  }
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, host, () => {
      const port = (server.address() as AddressInfo).port
      allowedHosts = new Set([`${host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`])
      resolve({
        url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/${token !== undefined ? `?token=${encodeURIComponent(token)}` : ""}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })
}
