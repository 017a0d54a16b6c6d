// How fast the desktop app's item list and review queue open on a workspace of 100,000 items
// (ITEMS to change it): each request through the app's backend, as the window sends it, against
// the goal of one second and against SQLite reading the same page of rows raw in the same run.
import Database from "better-sqlite3"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Item, openSqliteStore, Problem, Round, Trace, Verdict } from "@fastcot/core"
import { Backend } from "@fastcot/desktop"

const ITEMS = Number(process.env.ITEMS ?? 100_000)
const dir = mkdtempSync(join(tmpdir(), "fastcot-items-bench-"))
const db = join(dir, "fastcot.db")
const hex = (i) => i.toString(16).padStart(16, "0")
const at = "2026-01-01T00:00:00Z"
const levels = ["easy", "medium", "hard"]

const made = performance.now()
const { store, close } = openSqliteStore(db)
for (let start = 0; start < ITEMS; start += 5_000) {
  const problems = []
  const items = []
  for (let i = start; i < Math.min(ITEMS, start + 5_000); i++) {
    const problem = new Problem({
      id: `p_${hex(i)}`,
      domain: "math",
      question: `What is ${i} + ${i}? Give the sum of the two numbers.`,
      answer: String(2 * i),
      source: "bench.jsonl:1",
      metadata: {}
    })
    const level = levels[i % 3]
    const trace = new Trace({
      reasoning: `We add ${i} and ${i}. `.repeat(12) + `So the sum is ${2 * i}.`,
      finalAnswer: `\\boxed{${2 * i}}`,
      origin: level === "medium" ? "teacher" : level === "easy" ? "expand" : "simplify",
      tokens: { reasoning: 100 + (i % 900), answer: 6, tokenizer: "qwen2.5" }
    })
    const rounds = [
      new Round({
        index: 0,
        action: "judge",
        verdict: new Verdict({ level, raw: level }),
        calls: [
          { role: "judge", model: "judge", promptTokens: 300, completionTokens: 1, latencyMs: 40, cached: false }
        ],
        startedAt: at,
        finishedAt: at
      })
    ]
    problems.push(problem)
    items.push(
      new Item({
        id: `i_${hex(i)}`,
        problemId: problem.id,
        stage: "done",
        fate: i % 10 === 9 ? "dropped" : "kept",
        keptAs: i % 10 === 9 ? undefined : level === "medium" ? "initial-medium" : `${level}-to-medium`,
        reason: i % 10 === 9 ? { code: "max-rounds", detail: "not medium after 3 rewrites" } : undefined,
        trace,
        rounds,
        createdAt: at,
        updatedAt: at
      })
    )
  }
  await Effect.runPromise(
    store.commitImportBatch({
      progress: {
        key: "bench",
        path: "bench.jsonl",
        rows: start,
        offset: 0,
        line: start,
        problemsAdded: 0,
        itemsAdded: 0,
        duplicates: 0,
        rejected: 0,
        done: false
      },
      problems,
      items,
      rejects: []
    })
  )
}
close()
console.log(`items: a workspace of ${ITEMS} items built in ${((performance.now() - made) / 1000).toFixed(1)} s`)

// The floor: SQLite reading a page of 200 rows (id and JSON) with no decoding.
const raw = new Database(db, { readonly: true })
const floorStart = performance.now()
raw.prepare("SELECT id, data FROM items ORDER BY id LIMIT 200").all()
const floorMs = performance.now() - floorStart
raw.close()

const backend = new Backend({})
const timed = async (what, channel, request) => {
  const t0 = performance.now()
  const reply = await backend.handle(channel, request)
  const ms = performance.now() - t0
  if (reply !== null && typeof reply === "object" && "error" in reply)
    throw new Error(`${what}: ${reply.error.message}`)
  const rows = "rows" in reply ? reply.rows.length : reply.items.length
  console.log(
    `  ${what.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms  (${rows} rows)  ${ms < 1000 ? "under 1 s" : "OVER 1 s"}`
  )
  return ms
}
const opened = performance.now()
await backend.handle("workspace.open", { path: dir, create: false })
const openMs = performance.now() - opened
console.log(
  `  ${"open the workspace (its status)".padEnd(44)} ${openMs.toFixed(0).padStart(6)} ms  ${openMs < 1000 ? "under 1 s" : "OVER 1 s"}`
)
const times = [
  openMs,
  await timed("item list, first page (200)", "items.list", { limit: 200 }),
  await timed("item list, kept only", "items.list", { fate: "kept", limit: 200 }),
  await timed("item list, dropped only", "items.list", { fate: "dropped", limit: 200 }),
  await timed("item list, search 'What is 4242 '", "items.list", { search: "What is 4242 ", limit: 200 }),
  await timed("item list, verdict hard", "items.list", { verdict: "hard", limit: 200 }),
  await timed("item list, at most 150 tokens", "items.list", { maxTokens: 150, limit: 200 }),
  await timed("item list, most tokens first", "items.list", { order: { by: "tokens", direction: "desc" }, limit: 200 }),
  await timed("item list, by fate, last first", "items.list", { order: { by: "fate", direction: "desc" }, limit: 200 }),
  await timed("item list, by review", "items.list", { order: { by: "review", direction: "asc" }, limit: 200 }),
  await timed("item list, page 2 by tokens", "items.list", {
    order: { by: "tokens", direction: "desc" },
    after: (await backend.handle("items.list", { order: { by: "tokens", direction: "desc" }, limit: 200 })).next,
    limit: 200
  }),
  await timed("review queue, random (20)", "review.queue", { reviewer: "bench", limit: 20 }),
  await timed("review queue, longest first (20)", "review.queue", { reviewer: "bench", order: "longest", limit: 20 })
]
await backend.close()
if (process.env.KEEP === undefined) rmSync(dir, { recursive: true, force: true })
else console.log(`  kept ${dir}`)
const worst = Math.max(...times)
console.log(
  `  slowest ${worst.toFixed(0)} ms = ${(worst / floorMs).toFixed(0)}x SQLite's raw page read (${floorMs.toFixed(1)} ms); goal under 1,000 ms: ${worst < 1000 ? "met" : "not met"}`
)
