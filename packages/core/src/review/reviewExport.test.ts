import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { exportDataset } from "../export/exportDataset.js"
import { Item } from "../schema/item.js"
import { Problem } from "../schema/problem.js"
import { Trace } from "../schema/trace.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { tempDir } from "../test-support/fixtures.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { contentId } from "../util/hash.js"
import { BasicVerifierLive } from "../verify/Verifier.js"
import { reviewItem } from "./reviewItem.js"

const N = 10
const problem = (i: number) =>
  new Problem({
    id: contentId("p_", i) as Problem["id"],
    domain: "math",
    question: `What is ${i} + ${i}?`,
    answer: String(2 * i),
    source: "t.jsonl:1",
    metadata: {}
  })
const kept = (i: number) =>
  new Item({
    id: contentId("i_", i) as Item["id"],
    problemId: problem(i).id,
    stage: "done",
    fate: "kept",
    keptAs: "initial-medium",
    trace: new Trace({ reasoning: `Add ${i} to itself.`, finalAnswer: `\\boxed{${2 * i}}`, origin: "teacher" }),
    rounds: [],
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z"
  })

let tmp: ReturnType<typeof tempDir>
const db = () => join(tmp.dir, "fastcot.db")
const layer = () => Layer.mergeAll(SqliteRunStoreLive(db()), BasicVerifierLive, QwenTokenCounterLive)

beforeAll(async () => {
  tmp = tempDir()
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* RunStore
        const problems = Array.from({ length: N }, (_, i) => problem(i + 1))
        yield* store.commitImportBatch({
          progress: {
            key: "k",
            path: "t.jsonl",
            rows: N,
            offset: 0,
            line: N + 1,
            problemsAdded: 0,
            itemsAdded: 0,
            duplicates: 0,
            rejected: 0,
            done: true
          },
          problems,
          items: problems.map((_, i) => kept(i + 1)),
          rejects: []
        })
        // Item 1 rejected, 2 accepted, 3 edited; the rest unreviewed.
        yield* reviewItem(kept(1).id, { _tag: "reject", reason: "right answer, wrong reasoning" }, "ana")
        yield* reviewItem(kept(2).id, { _tag: "accept" }, "ana")
        yield* reviewItem(kept(3).id, { _tag: "edit", reasoning: "Three and three make six: \\boxed{6}." }, "ben")
      }).pipe(Effect.provide(layer()))
    )
  )
})
afterAll(() => tmp.cleanup())

const exportTo = (name: string, reviewedOnly: boolean) =>
  Effect.runPromise(
    Effect.scoped(
      exportDataset({ format: "openai", out: join(tmp.dir, name, "train.jsonl"), valFraction: 0, reviewedOnly }).pipe(
        Effect.provide(layer())
      )
    )
  )
const assistantTurns = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map(
      (line) => (JSON.parse(line) as { messages: Array<{ role: string; content: string }> }).messages.at(-1)!.content
    )

describe("people's reviews reach the exported data", () => {
  it("leaves rejected items out, exports the edited trace, and says so in the card", async () => {
    const report = await exportTo("all", false)
    expect(report.review).toEqual({ accepted: 1, edited: 1, rejected: 1, unreviewed: N - 3, reviewedOnly: false })
    const turns = assistantTurns(report.files.train)
    expect(turns).toHaveLength(N - 1)
    expect(turns.some((t) => t.includes("Add 1 to itself"))).toBe(false)
    expect(turns.some((t) => t.includes("Three and three make six"))).toBe(true)
    expect(turns.some((t) => t.includes("Add 3 to itself"))).toBe(false)
    const card = readFileSync(report.files.card, "utf8")
    expect(card).toContain("3 of the 10 kept items were reviewed by a person: 1 accepted, 1 edited")
    expect(card).toContain("1 rejected and left out")
  })

  it("with reviewedOnly, exports only what a person accepted or edited", async () => {
    const report = await exportTo("reviewed", true)
    const turns = assistantTurns(report.files.train)
    expect(turns).toHaveLength(2)
    expect(turns.some((t) => t.includes("Add 2 to itself"))).toBe(true)
    expect(turns.some((t) => t.includes("Three and three make six"))).toBe(true)
    expect(readFileSync(report.files.card, "utf8")).toContain(
      "Only reviewed items are exported: 7 unreviewed items were left out."
    )
  })
})
