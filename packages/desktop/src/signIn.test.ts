import { mkdtempSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Backend } from "./backend.js"
import { serveUi, type UiServer } from "./server.js"

const CHROMIUM = process.env["FASTCOT_CHROMIUM"] ?? "/usr/bin/chromium"
const TOKEN = "test-token-0123456789abcdef"

describe("signing in to fastcot ui with its token (Debian's chromium through playwright-core)", () => {
  let backend: Backend
  let ui: UiServer
  let browser: Browser
  let attacker: Server
  let attackerUrl: string
  const refused: Array<string> = []
  beforeAll(async () => {
    backend = new Backend({}, { allowedEndpoints: ["models.internal:8000"], onRefused: (m) => refused.push(m) })
    ui = await serveUi(backend, { port: 0, token: TOKEN, staticDir: join(__dirname, "..", "dist", "renderer") })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    })
    // Another site (localhost, where the UI is on 127.0.0.1) whose page calls the UI's API.
    const target = new URL(ui.url).origin
    attacker = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" })
      res.end(`<!doctype html><script>
        fetch("${target}/api/workspace.status", { method: "POST", credentials: "include", mode: "no-cors", body: "{}" })
        document.title = "sent"
      </script>`)
    })
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve))
    attackerUrl = `http://localhost:${(attacker.address() as { port: number }).port}/`
  })
  afterAll(async () => {
    await browser?.close()
    await ui?.close()
    await backend?.close()
    await new Promise((resolve) => attacker?.close(resolve))
  })

  it("prints an address with the token, which signs a browser in and leaves the address bar without it", async () => {
    expect(ui.url).toContain(`?token=${TOKEN}`)
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(ui.url)
    expect(page.url()).not.toContain("token")
    await expect.poll(() => page.textContent(".where"), { timeout: 15_000 }).toContain("no workspace")
    const cookies = await context.cookies()
    expect(cookies).toEqual([expect.objectContaining({ name: "fastcot_session", httpOnly: true, sameSite: "Strict" })])
    expect(cookies[0]!.value).not.toContain(TOKEN)
    await context.close()
  })

  it("answers 401 without the cookie or the token, and to a wrong token; a script may send it as a Bearer token", async () => {
    const origin = new URL(ui.url).origin
    const status = (path: string, init: RequestInit = {}) => fetch(origin + path, init).then((r) => r.status)
    const post = { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }
    expect(await status("/")).toBe(401)
    expect(await status("/api/workspace.status", post)).toBe(401)
    expect(await status("/api/events")).toBe(401)
    expect(await status("/?token=not-the-token")).toBe(401)
    expect(await status("/", { headers: { authorization: "Bearer not-the-token" } })).toBe(401)
    expect(await status("/", { headers: { authorization: `Bearer ${TOKEN}` } })).toBe(200)
    const signed = await fetch(`${origin}/api/workspace.status`, {
      ...post,
      headers: { ...post.headers, authorization: `Bearer ${TOKEN}` }
    })
    expect(signed.status).toBe(400) // signed in; no workspace is open
  })

  it("a page on another site cannot use a signed-in browser's session", async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(ui.url)
    await expect.poll(() => page.textContent(".where"), { timeout: 15_000 }).toContain("no workspace")
    const evil = await context.newPage()
    const seen = new Promise<number>((resolve) =>
      evil.on("response", (r) => r.url().includes("/api/workspace.status") && resolve(r.status()))
    )
    await evil.goto(attackerUrl)
    // The cookie is SameSite=Strict: the cross-site request arrives without it.
    expect(await seen).toBe(401)
    await context.close()
  })

  it("refuses, and logs, a run or an evaluation naming an endpoint outside the server's allow-list", async () => {
    const origin = new URL(ui.url).origin
    const call = (channel: string, body: unknown) =>
      fetch(`${origin}/api/${channel}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify(body)
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { message: string } } }))
    const root = mkdtempSync(join(tmpdir(), "fastcot-allow-"))
    try {
      expect((await call("workspace.open", { path: root, create: true })).status).toBe(200)
      const run = await call("run.start", { teacher: "openai:gpt@https://evil.example/v1" })
      expect(run.status).toBe(400)
      expect(run.body.error?.message).toBe(
        "the endpoint evil.example is not allowed by this server: its owner can allow it with `fastcot ui --allow-endpoint evil.example`"
      )
      const evaluation = await call("eval.start", {
        model: "openai:gpt@http://10.1.2.3:8000/v1",
        benches: ["math500"],
        dataDir: root
      })
      expect(evaluation.body.error?.message).toContain("the endpoint 10.1.2.3:8000 is not allowed")
      expect(refused).toHaveLength(2)
      // Allowed: a host on the list (the run then fails only for want of problems, not the host).
      const listed = await call("run.start", { teacher: "openai:m@http://models.internal:8000/v1" })
      expect(listed.body.error?.message ?? "").not.toContain("not allowed")
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})
