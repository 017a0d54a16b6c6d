import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { exportDataset } from "../export/exportDataset.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { tempDir } from "../test-support/fixtures.js"
import { finishedImport, keptSumItems, sumProblems } from "../testing/workspaceRecords.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { BasicVerifierLive } from "../verify/Verifier.js"
import { reviewItem } from "./reviewItem.js"

const N = 10
const problems = sumProblems(N)
const items = keptSumItems(problems)
const kept = (i: number) => items[i - 1]!

let tmp: ReturnType<typeof tempDir>
const db = () => join(tmp.dir, "fastcot.db")
const layer = () => Layer.mergeAll(SqliteRunStoreLive(db()), BasicVerifierLive, QwenTokenCounterLive)

beforeAll(async () => {
  tmp = tempDir()
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(finishedImport(problems, items))
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
