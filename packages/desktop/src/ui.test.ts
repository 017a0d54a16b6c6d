import { openSqliteStore } from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import {
  arithmeticScript,
  buildQwen2Model,
  startScriptedServer,
  type ScriptedServer,
  writeKeptSumWorkspace
} from "@fastcot/core/testing"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Backend } from "./backend.js"
import { serveUi, type UiServer } from "./server.js"

const ARTIFACTS = join(__dirname, "..", "..", "..", "test", "artifacts")
// Polls in this file wait for a UI that refreshes itself (every second or two): allow 15 s.
const poll = <T>(f: () => Promise<T> | T, options: { timeout?: number } = {}) =>
  expect.poll(f, { timeout: 15_000, ...options })
const CHROMIUM = process.env["FASTCOT_CHROMIUM"] ?? "/usr/bin/chromium"
/** Where the pages' screenshots go, each in both themes (the README links the folder). */
const SCREENSHOTS = join(ARTIFACTS, "screenshots")
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8")

/** axe-core's WCAG 2.1 A and AA rules on the page as it is; the violations, by rule. */
const audit = async (page: Page): Promise<Array<string>> => {
  // Evaluated through the DevTools protocol: the page's CSP (rightly) refuses injected script tags.
  if (!(await page.evaluate(() => "axe" in globalThis))) await page.evaluate(AXE)
  return page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: {
          run: (
            ctx: unknown,
            opts: unknown
          ) => Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<unknown> }> }>
        }
      }
    ).axe
    const r = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }
    })
    return r.violations.map((v) => `${v.id} (${v.impact}, ${v.nodes.length})`)
  })
}

/** The page in the light and the dark theme: no axe-core violation in either, and a screenshot of each. */
const auditAndShoot = async (page: Page, name: string) => {
  for (const colorScheme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme })
    expect(await audit(page), `${name}, ${colorScheme} theme`).toEqual([])
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${colorScheme}.png`), fullPage: true })
  }
  await page.emulateMedia({ colorScheme: null })
}

/** SCRIPTED models (no model behind them): the teacher adds; the judge finds every third problem easy. */
const script = arithmeticScript((n) => (n % 3 === 0 ? "easy" : "medium"))

describe("the desktop renderer in Debian's chromium (playwright-core) against fastcot ui on 127.0.0.1", () => {
  let root: string
  let models: ScriptedServer
  let backend: Backend
  let ui: UiServer
  let browser: Browser
  let page: Page
  const shot = (name: string) => auditAndShoot(page, name)

  const pageProblems: Array<string> = []
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "fastcot-ui-"))
    mkdirSync(SCREENSHOTS, { recursive: true })
    models = await startScriptedServer({ latencyMs: 60, script })
    backend = new Backend({})
    // the built renderer (this test runs from the sources)
    ui = await serveUi(backend, { port: 0, staticDir: join(__dirname, "..", "dist", "renderer") })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    })
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    // Script errors and anything the Content-Security-Policy refuses (the libraries included).
    page.on("pageerror", (e) => pageProblems.push(String(e)))
    page.on("console", (m) => {
      if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) pageProblems.push(m.text())
    })
  })
  afterAll(async () => {
    await browser?.close()
    await ui?.close()
    await backend?.close()
    await models?.close()
    rmSync(root, { recursive: true, force: true })
  })

  it("creates a workspace, imports a file, runs the recipe and watches it, opens an item's diff, exports, and shows an evaluation run", async () => {
    const ws = join(root, "ws")
    // An evaluation run saved in the workspace, as `fastcot eval` writes it.
    mkdirSync(join(ws, "eval", "tiny-run"), { recursive: true })
    const summary = (accuracy: number, meanOutputTokens: number) => ({
      items: 10,
      samples: 10,
      accuracy,
      ci95: 0.1,
      passAtK: {},
      noAnswer: 0,
      truncated: 0,
      meanOutputTokens,
      medianOutputTokens: meanOutputTokens
    })
    const bench = (name: string, accuracy: number, tokens: number) => ({
      bench: name,
      file: `${name}/test.jsonl`,
      sha256: "0",
      summary: summary(accuracy, tokens),
      groups: {}
    })
    const results = {
      fastcot: "eval/v1",
      model: "student-7b",
      settings: {
        preset: "greedy",
        sampling: { temperature: 0 },
        samples: 1,
        systemPrompt: "",
        promptVersion: "1",
        graderVersion: "1",
        tokenizer: "qwen2.5"
      },
      startedAt: "2026-11-25T10:00:00Z",
      finishedAt: "2026-11-25T10:05:00Z",
      benchmarks: [
        { ...bench("math500", 0.62, 812), failed: { samples: 3, firstError: "connection failed" } },
        bench("aime24", 0.1, 3020)
      ]
    }
    writeFileSync(join(ws, "eval", "tiny-run", "results.json"), JSON.stringify(results))
    // One whose file was edited wrong: shown with its file and field, not skipped in silence.
    mkdirSync(join(ws, "eval", "edited-run"), { recursive: true })
    writeFileSync(
      join(ws, "eval", "edited-run", "results.json"),
      JSON.stringify({
        ...results,
        benchmarks: [{ ...bench("math500", 0.5, 100), summary: { ...summary(0.5, 100), accuracy: "high" } }]
      })
    )
    // One still being written (not JSON yet): left out until it is complete.
    mkdirSync(join(ws, "eval", "partial-run"), { recursive: true })
    writeFileSync(join(ws, "eval", "partial-run", "results.json"), JSON.stringify(results).slice(0, 40))
    // One whose every generation failed: no scores, not zeros.
    mkdirSync(join(ws, "eval", "unreachable-run"), { recursive: true })
    writeFileSync(
      join(ws, "eval", "unreachable-run", "results.json"),
      JSON.stringify({
        ...results,
        model: "unreachable",
        benchmarks: [
          {
            ...bench("math500", 0, 0),
            summary: { ...summary(0, 0), items: 0, samples: 0 },
            failed: { samples: 2, firstError: "connection failed" }
          }
        ]
      })
    )
    // One just started (no results.json yet): left out too.
    mkdirSync(join(ws, "eval", "starting-run"), { recursive: true })
    // A `fastcot run` at work on the workspace (its lock held through another connection): the header says so.
    const cli = openSqliteStore(join(ws, "fastcot.db"))
    const cliScope = Effect.runSync(Scope.make())
    await Effect.runPromise(cli.store.lockRun("fastcot run").pipe(Scope.extend(cliScope)))
    await page.goto(ui.url)
    await poll(() => page.textContent("header")).toContain("no workspace open")

    // Keyboard only: the workspace field, then Enter.
    await page.getByLabel("Workspace folder").focus()
    await page.keyboard.type(ws)
    await page.keyboard.press("Enter")
    await poll(() => page.textContent(".where")).toContain("0 problems")
    await poll(() => page.textContent(".where")).toContain(`at work: fastcot run (pid ${process.pid}, since `)
    await shot("1-workspace")
    // The Run tab will not start a second run meanwhile, and says why.
    await page.getByRole("tab", { name: "Run" }).click()
    await poll(() => page.textContent("[data-testid='run-holder']")).toContain(`fastcot run (pid ${process.pid} on `)
    expect(await page.getByRole("button", { name: "Start" }).isDisabled()).toBe(true)
    await page.getByRole("tab", { name: "Workspace" }).click()
    await Effect.runPromise(Scope.close(cliScope, Exit.void))
    cli.close()

    const file = join(root, "problems.jsonl")
    writeFileSync(
      file,
      [
        ...Array.from({ length: 24 }, (_, i) =>
          JSON.stringify({ question: `What is ${i} + ${i}?`, answer: String(2 * i) })
        ),
        "{not json",
        // No answer: the run's filter leaves it out before any call, and the header says so.
        JSON.stringify({ question: "Name a prime number." })
      ].join("\n")
    )
    await page.getByLabel(/Import problems or traces/).setInputFiles(file)
    await poll(() => page.textContent(".report")).toContain("25 new problems")
    expect(await page.textContent("[aria-label='Rejected rows']")).toContain("line 25")
    await poll(() => page.textContent(".where")).toContain("25 problems")
    expect(await page.textContent(".where")).not.toContain("at work")

    await page.getByRole("tab", { name: "Run" }).click()
    // A local model folder, checked like `fastcot models inspect` (a tiny Qwen2 with random weights).
    const tiny = join(root, "tiny")
    buildQwen2Model({ dir: tiny, variants: ["fp32", "q4"] })
    await page.getByText("Check a local model folder").click()
    await page.getByLabel(/Model folder/).fill(tiny)
    await page.getByRole("button", { name: "Check" }).click()
    await poll(() => page.textContent("[aria-label='Weight variants']")).toContain("q4")
    expect(await page.textContent("[aria-label='Weight variants']")).toContain("runnable")
    const spec = `openai:scripted@${models.baseUrl}`
    // Before a run, the charts say what to do instead of drawing empty frames.
    expect(await page.locator("figure.chart.empty").count()).toBe(4)
    expect(await page.locator("figure.chart svg").count()).toBe(0)
    for (const role of ["Teacher", "Rewriter", "Judge"]) await page.getByLabel(role, { exact: true }).fill(spec)
    await page.getByRole("button", { name: "Start" }).click()
    await poll(() => page.textContent("[data-testid=run-state]")).toBe("running")
    // the counts move while it runs
    const teacherDone = async () => Number(await page.textContent("tr[data-stage=teacher] td:nth-child(3)"))
    await poll(teacherDone, { timeout: 20_000 }).toBeGreaterThan(0)
    await shot("2-running")
    await poll(() => page.textContent("[data-testid=run-state]"), { timeout: 60_000 }).toBe("done")
    await poll(() => page.textContent(".where")).toContain("24 kept")
    expect(await page.textContent(".where")).toContain("25 problems (1 left out by the filter: 1 no-reference)")
    // Charts people read: axis labels, legends, and a text alternative with the figures.
    const charts = page.locator("figure.chart")
    await poll(() => charts.filter({ hasText: "by the judge's first verdict" }).textContent()).toMatch(
      /first easy: [1-9]\d* kept/
    )
    const run = (await charts.allTextContents()).join(" ")
    for (const text of ["seconds since the start", "the judge's first verdict", "before alignment", "after alignment"])
      expect(run).toContain(text)
    expect(await page.locator("figure.chart .recharts-legend-item").count()).toBeGreaterThan(4)
    // A tooltip on hovering the flow chart's bars.
    const flow = charts.filter({ hasText: "by the judge's first verdict" })
    await flow.locator(".recharts-bar-rectangle").first().hover()
    await poll(() => flow.locator(".recharts-tooltip-wrapper").textContent()).toMatch(/kept : \d+/)
    await shot("3-done")

    await page.getByRole("tab", { name: "Items" }).click()
    // The run's state stays in view on every page.
    expect(await page.textContent("[data-testid=header-run]")).toMatch(/^Run: done \(\d+ steps done\)/)
    // A choice from the component library's select: its button opens a listbox.
    await page.locator(".choice", { hasText: "Verdict" }).getByRole("button").click()
    await page.getByRole("option", { name: "easy" }).click()
    await poll(() => page.locator("table[aria-label=Items] tbody tr").count()).toBe(8)
    await page.locator("table[aria-label=Items] tbody tr").first().click()
    await poll(() => page.textContent("article.item")).toContain("easy-to-medium")
    expect(await page.locator("article.item ins").count()).toBeGreaterThan(0)
    expect(await page.locator("article.item del").count()).toBeGreaterThan(0)
    await shot("4-item-diff")
    // The table sorts by reasoning tokens (in the store, a page at a time): most first, at the
    // second press of the column's header (the first sorts fewest first).
    const tokensHeader = page.getByRole("columnheader", { name: /Tokens before/ })
    await tokensHeader.click()
    await poll(() => tokensHeader.getAttribute("aria-sort")).toBe("ascending")
    await tokensHeader.click()
    await poll(() => tokensHeader.getAttribute("aria-sort")).toBe("descending")
    expect(await page.getByRole("columnheader", { name: "Item" }).getAttribute("aria-sort")).toBe("none")
    const tokensAfter = async () =>
      (await page.locator("table[aria-label=Items] tbody tr td:nth-child(4)").allTextContents()).map((t) =>
        Number(t.split("→")[1])
      )
    await poll(async () => {
      const xs = await tokensAfter()
      return xs.length === 8 && xs.every((x, i) => i === 0 || xs[i - 1]! >= x) && xs[0]! > xs[7]!
    }).toBe(true)

    await page.getByRole("tab", { name: "Export" }).click()
    await page.getByRole("button", { name: "Export" }).click()
    await poll(() => page.textContent("[aria-label='Exported files']")).toContain("train.jsonl")
    await shot("5-export")

    const evalTab = page.getByRole("tab", { name: "Evaluation" })
    await evalTab.click()
    await poll(() => evalTab.getAttribute("aria-selected")).toBe("true")
    // The whole panel's text, so that a failure shows what it says instead (an error, no runs).
    await poll(() => page.locator("section[aria-labelledby=eval-title]").textContent()).toContain(
      "62.0% / 812 (3 failed)"
    )
    expect(await page.textContent("table[aria-label='Accuracy and output tokens']")).toMatch(
      /edited-run.*results\.json: field `benchmarks\.\[0\]\.summary\.accuracy`/
    )
    expect(await page.textContent("table[aria-label='Accuracy and output tokens']")).not.toContain("partial-run")
    expect(await page.textContent("table[aria-label='Accuracy and output tokens']")).not.toContain("starting-run")
    expect(await page.textContent("table[aria-label='Accuracy and output tokens']")).toContain("none scored (2 failed)")
    // A run that `fastcot eval` saves meanwhile shows while the panel stays open.
    mkdirSync(join(ws, "eval", "later-run"), { recursive: true })
    writeFileSync(
      join(ws, "eval", "later-run", "results.json"),
      JSON.stringify({ ...results, model: "student-7b-later", benchmarks: [bench("math500", 0.7, 640)] })
    )
    await poll(() => page.textContent("table[aria-label='Accuracy and output tokens']")).toContain("70.0% / 640")
    // Evaluate the local model on three MATH-500 questions from the app.
    await page.getByLabel(/^Model \(onnx/).fill(`onnx:${tiny}#q4`)
    await page.getByLabel(/Benchmark data folder/).fill(join(__dirname, "..", "..", "..", "..", "shared", "data"))
    await page.getByLabel("Only the first N questions").fill("3")
    await page.getByLabel("Max new tokens").fill("8")
    await page.getByRole("button", { name: "Start evaluation" }).click()
    await poll(() => page.textContent("[data-testid=eval-state]"), { timeout: 60_000 }).toMatch(/^done/)
    await poll(() => page.textContent("table[aria-label='Accuracy and output tokens']")).toContain("tiny-q4")
    // One accuracy-against-tokens chart a benchmark, a point a model with its interval, a legend of models.
    const math = page.locator("figure.chart").filter({ hasText: "math500: accuracy against output tokens" })
    expect(await math.textContent()).toContain("accuracy (%)")
    expect(await math.textContent()).toContain("mean output tokens")
    expect(await math.textContent()).toMatch(/student-7b: 62\.0% ± 10\.0 at 812 tokens/)
    expect(await math.locator(".recharts-legend-item").allTextContents()).toEqual(
      expect.arrayContaining(["student-7b", "tiny-q4"])
    )
    expect(await math.locator(".recharts-errorBar").count()).toBeGreaterThan(0)
    await shot("6-evaluation")

    // Accessibility: every page above passed axe-core in both themes (shot); the items view with an
    // item open too; then the keyboard reaches the tabs.
    await page.getByRole("tab", { name: "Items" }).click()
    await page.locator("table[aria-label=Items] tbody tr").first().click()
    await poll(() => page.locator("article.item").count()).toBe(1)
    expect(await audit(page)).toEqual([])
    // The keyboard alone opens an item from the table: into the grid, down a row, Enter.
    await page.getByRole("tab", { name: "Items" }).focus()
    for (let i = 0; i < 12 && (await page.evaluate(() => document.activeElement?.closest("table") === null)); i++)
      await page.keyboard.press("Tab")
    await page.keyboard.press("ArrowDown")
    const focusedRow = await page.evaluate(() => document.activeElement?.closest("tr")?.textContent ?? "")
    await page.keyboard.press("Enter")
    await poll(() => page.textContent("#item-title")).toContain(/(i_[0-9a-f]+)/.exec(focusedRow)?.[1] ?? "no row")
    // The tabs pattern: the open tab is the one Tab stop; arrows move along, Home and End to the ends.
    await page.getByRole("tab", { name: "Workspace" }).click()
    await page.keyboard.press("ArrowRight")
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Run")
    expect(await page.textContent("[role=tab][aria-selected=true]")).toBe("Run")
    await page.keyboard.press("End")
    expect(await page.textContent("[role=tab][aria-selected=true]")).toBe("Evaluation")
    await page.keyboard.press("ArrowRight")
    expect(await page.textContent("[role=tab][aria-selected=true]")).toBe("Workspace")
    await page.keyboard.press("Tab")
    expect(await page.evaluate(() => document.activeElement?.getAttribute("role"))).not.toBe("tab")
    expect(pageProblems).toEqual([])
  })

  it("shows a workspace the backend opened at start (fastcot ui --workspace DIR) as soon as the page loads", async () => {
    const ws = join(root, "opened-at-start")
    const started = new Backend({})
    await started.handle("workspace.open", { path: ws })
    const server = await serveUi(started, { port: 0, staticDir: join(__dirname, "..", "dist", "renderer") })
    const tab = await browser.newPage()
    try {
      await tab.goto(server.url)
      await expect.poll(() => tab.textContent(".where"), { timeout: 15_000 }).toContain(`${ws}: 0 problems`)
      expect(await tab.getByRole("tab", { name: "Run" }).isDisabled()).toBe(false)
    } finally {
      await tab.close()
      await server.close()
      await started.close()
    }
  })

  it("keeps the item table current while a run works, without a click, and reads it once more at the end", async () => {
    // SCRIPTED models answering after 1.5 s each: teacher, judge, and for the easy ones rewriter and
    // judge again; the run lasts about 6 s, two of the table's 3 s refreshes.
    const slow = await startScriptedServer({ latencyMs: 1500, script })
    const working = new Backend({})
    await working.handle("workspace.open", { path: join(root, "live-items") })
    const problems = Array.from({ length: 6 }, (_, i) =>
      JSON.stringify({ question: `What is ${i} + ${i}?`, answer: String(2 * i) })
    )
    await working.handle("import.content", { name: "live.jsonl", content: problems.join("\n") })
    const server = await serveUi(working, { port: 0, staticDir: join(__dirname, "..", "dist", "renderer") })
    const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    try {
      await tab.goto(server.url)
      await poll(() => tab.textContent(".where")).toContain("6 problems")
      await tab.getByRole("tab", { name: "Items" }).click()
      await poll(() => tab.textContent("table[aria-label=Items]")).toContain("No items yet")
      const spec = `openai:scripted@${slow.baseUrl}`
      expect(await working.handle("run.start", { teacher: spec, rewriter: spec, judge: spec })).toMatchObject({
        state: "running"
      })
      const keptRows = () =>
        tab.locator("table[aria-label=Items] tbody tr > :nth-child(2)", { hasText: /^kept/ }).count()
      // Items show as the teacher's replies land, then turn kept: the page is never reloaded by hand.
      await poll(() => tab.locator("table[aria-label=Items] tbody tr .num").count(), {
        timeout: 20_000
      }).toBeGreaterThan(0)
      expect(working.view().state).toBe("running")
      expect(await keptRows()).toBeLessThan(6)
      // An item the judge finds easy (rewritten, then judged again: kept last), opened while it is
      // worked on: the page below the table follows it too.
      await tab.locator("table[aria-label=Items] tbody tr", { hasText: "What is 3 + 3?" }).click()
      await poll(() => tab.textContent("#item-title")).not.toContain(": kept")
      await poll(() => working.view().state, { timeout: 30_000 }).toBe("done")
      const kept = ((await working.handle("workspace.status", {})) as { kept: number }).kept
      expect(kept).toBe(6)
      await poll(keptRows).toBe(kept)
      await poll(() => tab.textContent("#item-title")).toContain(": kept")
    } finally {
      await tab.close()
      await server.close()
      await working.close()
      await slow.close()
    }
  })

  it("reviews with the keyboard alone: accept, reject with a reason, an edit refused then saved; the export follows; two reviewers never share an item", async () => {
    // Six kept items, "What is i + i?" with the answer 2i, written as a run would leave them.
    const ws = join(root, "review")
    await writeKeptSumWorkspace(join(ws, "fastcot.db"), 6)
    const reviewing = new Backend({})
    await reviewing.handle("workspace.open", { path: ws, create: false })
    const server = await serveUi(reviewing, { port: 0, staticDir: join(__dirname, "..", "dist", "renderer") })
    const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const current = async () => /(i_\d{16})/.exec((await tab.textContent("#review-item")) ?? "")?.[1]
    try {
      await tab.goto(server.url)
      await expect.poll(() => tab.textContent(".where"), { timeout: 15_000 }).toContain("6 kept")
      // Keyboard only: to the Review tab, the reviewer's name, Enter.
      await tab.getByRole("tab", { name: "Workspace" }).focus()
      for (let i = 0; i < 3; i++) await tab.keyboard.press("ArrowRight")
      expect(await tab.evaluate(() => document.activeElement?.textContent)).toBe("Review")
      const reviewerField = tab.getByLabel("Reviewer")
      const onReviewer = () => reviewerField.evaluate((e) => e === document.activeElement)
      for (let i = 0; i < 6 && !(await onReviewer()); i++) await tab.keyboard.press("Tab")
      expect(await onReviewer()).toBe(true)
      await tab.keyboard.type("ana")
      await tab.keyboard.press("Enter")
      await expect.poll(() => tab.textContent(".review-count")).toContain("0 reviewed by you · 6 waiting")
      expect(await tab.evaluate(() => document.activeElement?.tagName)).toBe("ARTICLE")

      const acceptedId = await current()
      await tab.keyboard.press("a")
      await expect.poll(() => tab.textContent(".review-count")).toContain(`last: ${acceptedId} accepted`)
      const rejectedId = await current()
      // r opens the reasons list on its first reason; an arrow moves, Enter rejects.
      await tab.keyboard.press("r")
      await expect.poll(() => tab.evaluate(() => document.activeElement?.getAttribute("role"))).toBe("option")
      expect(await tab.evaluate(() => document.activeElement?.textContent)).toBe("wrong reasoning")
      await tab.keyboard.press("ArrowDown")
      await tab.keyboard.press("Enter")
      await expect
        .poll(() => tab.textContent(".review-count"))
        .toContain(`last: ${rejectedId} rejected: right answer, wrong reasoning`)

      // An edit whose answer no longer matches is shown and refused; fixed, it is saved.
      const editedId = (await current())!
      const n = Number(editedId.slice(2))
      await tab.keyboard.press("e")
      await expect.poll(() => tab.evaluate(() => document.activeElement?.tagName)).toBe("TEXTAREA")
      await tab.keyboard.press("Control+a")
      await tab.keyboard.type(`Twice ${n} is \\boxed{${2 * n + 1}}.`)
      await tab.keyboard.press("Control+Enter")
      await expect
        .poll(() => tab.textContent("[role=alert]"))
        .toContain("the edited trace no longer reaches the answer")
      expect(await current()).toBe(editedId)
      await auditAndShoot(tab, "7-review-edit-refused")
      await tab.keyboard.press("Control+a")
      await tab.keyboard.type(`Twice ${n} is \\boxed{${2 * n}}.`)
      await tab.keyboard.press("Control+Enter")
      await expect.poll(() => tab.textContent(".review-count")).toContain(`last: ${editedId} edited`)
      await expect.poll(() => tab.textContent(".review-count")).toContain("3 reviewed by you · 3 waiting")
      await tab.keyboard.press("n")
      await auditAndShoot(tab, "7-review")
      // The dataset browser shows each decision.
      await tab.getByRole("tab", { name: "Items" }).click()
      await expect.poll(() => tab.textContent("table[aria-label=Items]")).toContain("rejected by ana")
      expect(await tab.textContent("table[aria-label=Items]")).toContain("edited by ana")
      // Sorted by review, latest decision last letter first: the column's header pressed twice.
      const reviewHeader = tab.getByRole("columnheader", { name: "Review" })
      await reviewHeader.click()
      await reviewHeader.click()
      await expect
        .poll(() => tab.locator("table[aria-label=Items] tbody tr td:nth-child(5)").allTextContents())
        .toEqual(["rejected by ana", "edited by ana", "accepted by ana", "-", "-", "-"])

      // A second reviewer at the same time gets none of the items held for ana.
      const ben = (await reviewing.handle("review.queue", { reviewer: "ben", limit: 10 })) as {
        items: Array<{ id: string }>
      }
      const anas = (await reviewing.handle("review.queue", { reviewer: "ana", limit: 10 })) as {
        items: Array<{ id: string }>
      }
      expect(ben.items.length + anas.items.length).toBe(3)
      expect(ben.items.filter((i) => anas.items.some((a) => a.id === i.id))).toEqual([])
      const taken = await reviewing.handle("review.decide", {
        id: anas.items[0]!.id,
        reviewer: "ben",
        decision: "accept"
      })
      expect(taken).toMatchObject({ error: { kind: "bad-request", message: expect.stringContaining("is with ana") } })

      // The export follows each decision.
      const exported = (await reviewing.handle("export.run", { format: "openai" })) as {
        files: Array<string>
        train: number
      }
      expect(exported.train).toBe(5)
      const train = readFileSync(exported.files[0]!, "utf8")
      expect(train).not.toContain(`Add ${Number(rejectedId!.slice(2))} to itself`)
      expect(train).toContain(`Twice ${n} is \\\\boxed{${2 * n}}.`)
      expect(train).not.toContain(`Add ${n} to itself`)
      expect(train).toContain(`Add ${Number(acceptedId!.slice(2))} to itself`)
    } finally {
      await tab.close()
      await server.close()
      await reviewing.close()
    }
  })

  it("the API refuses requests from other origins' forms, foreign Host headers, and malformed input", async () => {
    const form = await fetch(`${ui.url}api/workspace.open`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "path=/tmp/x"
    })
    expect(form.status).toBe(415)
    const bad = await fetch(`${ui.url}api/items.list`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ fate: "lost" })
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("fate")
    const page2 = await fetch(ui.url)
    expect(page2.headers.get("content-security-policy")).toContain("default-src 'self'")
    const http = await import("node:http")
    const port = new URL(ui.url).port
    const status = await new Promise<number>((resolve) =>
      http.get({ host: "127.0.0.1", port, path: "/", headers: { host: "evil.example:80" } }, (r) =>
        resolve(r.statusCode ?? 0)
      )
    )
    expect(status).toBe(421)
  })
})
