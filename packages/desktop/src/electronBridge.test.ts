import { arithmeticScript, startScriptedServer, writeKeptSumWorkspace } from "@fastcot/core/testing"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Backend } from "./backend.js"
import { CHANNELS } from "./contract.js"

const CHROMIUM = process.env["FASTCOT_CHROMIUM"] ?? "/usr/bin/chromium"
const poll = <T>(f: () => Promise<T> | T) => expect.poll(f, { timeout: 15_000 })

/**
 * The renderer as Electron runs it, short of Electron's binary (it cannot be downloaded here):
 * loaded from its files (`file://`, as `win.loadFile` does) with the page's own
 * Content-Security-Policy, and talking to the backend only through the bridge the preload
 * exposes (`window.fastcot.invoke` / `onPush`), whose calls the main process hands to
 * `Backend.handle` channel by channel, as `ipcMain.handle` does in `electron/main.ts`.
 */
describe("the desktop renderer over the Electron bridge (file://, window.fastcot; Debian's chromium)", () => {
  let root: string
  let browser: Browser
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "fastcot-bridge-"))
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Electron loads the app's modules from file:// itself; a browser needs leave to.
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--allow-file-access-from-files"
      ]
    })
  })
  afterAll(async () => {
    await browser?.close()
    rmSync(root, { recursive: true, force: true })
  })

  it("opens a workspace, imports, runs with live progress, sorts items and reviews one, all through the bridge", async () => {
    // SCRIPTED models (no model behind them) for the run.
    const models = await startScriptedServer({ latencyMs: 20, script: arithmeticScript(() => "medium") })
    const ws = join(root, "ws")
    await writeKeptSumWorkspace(join(ws, "fastcot.db"), 4)
    const backend = new Backend({})
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const invoked: Array<string> = []
    const problemsSeen: Array<string> = []
    page.on("pageerror", (e) => problemsSeen.push(String(e)))
    page.on("console", (m) => {
      if (m.type() === "error") problemsSeen.push(m.text())
    })
    // The main process's side: one handler per channel, as ipcMain.handle registers them.
    await page.exposeFunction("fastcotMainInvoke", async (channel: string, request: unknown) => {
      invoked.push(channel)
      if (!(CHANNELS as ReadonlyArray<string>).includes(channel)) return { error: { message: "no such channel" } }
      return backend.handle(channel as (typeof CHANNELS)[number], request)
    })
    // The preload's side: what contextBridge exposes, and nothing else (no fetch to an API here).
    await page.addInitScript(() => {
      const listeners = new Set<(push: unknown) => void>()
      const w = globalThis as unknown as {
        fastcotMainInvoke: (channel: string, request: unknown) => Promise<unknown>
        fastcotPush: (push: unknown) => void
        fastcot: unknown
      }
      w.fastcotPush = (push) => listeners.forEach((l) => l(push))
      w.fastcot = {
        invoke: (channel: string, request: unknown) => w.fastcotMainInvoke(channel, request),
        onPush: (listener: (push: unknown) => void) => {
          listeners.add(listener)
          return () => listeners.delete(listener)
        }
      }
    })
    let pushes = 0
    // The main process's push to the window (win.webContents.send), delivered to the preload's listeners.
    const unsubscribe = backend.subscribe((push) => {
      pushes++
      void page
        .evaluate((p) => (globalThis as unknown as { fastcotPush: (p: unknown) => void }).fastcotPush(p), push)
        .catch(() => undefined)
    })
    const requests: Array<string> = []
    page.on("request", (r) => requests.push(r.url()))
    try {
      await page.goto(pathToFileURL(join(__dirname, "..", "dist", "renderer", "index.html")).href)
      await page.getByLabel(/Workspace folder/).fill(ws)
      await page.getByRole("button", { name: "Open or create" }).click()
      await poll(() => page.textContent(".where")).toContain("4 kept (0 reviewed)")
      // An import (the file's text crosses the bridge), then a run whose progress comes as pushes.
      const file = join(root, "more.jsonl")
      writeFileSync(
        file,
        Array.from({ length: 3 }, (_, i) =>
          JSON.stringify({ question: `What is ${i + 10} + ${i + 10}?`, answer: String(2 * (i + 10)) })
        ).join("\n")
      )
      await page.getByLabel(/Import problems or traces/).setInputFiles(file)
      await poll(() => page.textContent(".where")).toContain("7 problems")
      await page.getByRole("tab", { name: "Run" }).click()
      const spec = `openai:scripted@${models.baseUrl}`
      for (const role of ["Teacher", "Rewriter", "Judge"]) await page.getByLabel(role, { exact: true }).fill(spec)
      await page.getByRole("button", { name: "Start" }).click()
      await expect.poll(() => page.textContent("[data-testid=run-state]"), { timeout: 60_000 }).toBe("done")
      // The four kept items' problems got a teacher trace too: eleven kept in all.
      await poll(() => page.textContent(".where")).toContain("11 items, 11 kept (0 reviewed), 0 dropped, 0 pending")

      await page.getByRole("tab", { name: "Items" }).click()
      await poll(() => page.locator("table[aria-label=Items] tbody tr").count()).toBe(11)
      const fateHeader = page.getByRole("columnheader", { name: "Fate" })
      await fateHeader.click()
      await poll(() => fateHeader.getAttribute("aria-sort")).toBe("ascending")

      await page.getByRole("tab", { name: "Review" }).click()
      await page.getByLabel("Reviewer").fill("ana")
      await page.getByRole("button", { name: "Start reviewing" }).click()
      await poll(() => page.textContent(".review-count")).toContain("0 reviewed by you · 11 waiting")
      await page.keyboard.press("a")
      await poll(() => page.textContent(".review-count")).toContain("1 reviewed by you · 10 waiting")
      await poll(() => page.textContent(".where")).toContain("11 kept (1 reviewed)")

      expect(invoked).toEqual(
        expect.arrayContaining([
          "workspace.open",
          "import.content",
          "run.start",
          "items.list",
          "review.queue",
          "review.decide"
        ])
      )
      expect(pushes).toBeGreaterThan(0)
      // Nothing but the app's own files was fetched: every request went through the bridge.
      expect(requests.filter((u) => !u.startsWith("file://"))).toEqual([])
      expect(problemsSeen).toEqual([])
    } finally {
      unsubscribe()
      await page.close()
      await backend.close()
      await models.close()
    }
  })
})
