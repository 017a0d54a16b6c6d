import { createServer, type Server } from "node:http"
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
  beforeAll(async () => {
    backend = new Backend({})
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
})
