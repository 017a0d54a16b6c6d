import * as Effect from "effect/Effect"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { importFile } from "../import/importFile.js"
import { RunStore } from "../store/RunStore.js"
import { jsonl, tempDir, withStore } from "../test-support/fixtures.js"
import { filterProblems } from "./filterProblems.js"

const MATH500 = join(__dirname, "..", "..", "..", "..", "..", "shared", "data", "math500", "test.jsonl")

describe("dedup and decontamination", () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(() => tmp.cleanup())

  it("flags exact and near duplicates and benchmark overlap, keeps the rest, and is idempotent", async () => {
    const benchmarkProblem = (JSON.parse(readFileSync(MATH500, "utf8").split("\n")[0]!) as { problem: string }).problem
    const long =
      "A farmer has a rectangular field that is 120 meters long and 80 meters wide and wants to build a fence around the whole field with posts every 4 meters. How many posts"
    const file = join(tmp.dir, "p.jsonl")
    writeFileSync(
      file,
      jsonl([
        { question: long + " are needed?", answer: "100" },
        { question: long.toUpperCase() + " ARE NEEDED?!", answer: "one hundred" },
        { question: long + " will be needed in total?", answer: "100" },
        { question: `Rephrased: ${benchmarkProblem}`, answer: "x" },
        { question: "What is the capital of Peru?", answer: "Lima" },
        { question: "Compute the determinant of the 2 by 2 identity matrix.", answer: "1" }
      ])
    )
    const db = join(tmp.dir, "fastcot.db")
    await withStore(db, importFile(file))
    const run = () =>
      withStore(
        db,
        Effect.gen(function* () {
          const report = yield* filterProblems({
            dedup: true,
            nearDuplicateThreshold: 0.7,
            benchmarks: [MATH500],
            ngram: 8
          })
          const store = yield* RunStore
          return { report, status: yield* store.status, kept: yield* store.listProblems({ unflagged: true }) }
        })
      )
    const { report, status, kept } = await run()
    expect(report).toMatchObject({
      problems: 6,
      flagged: 3,
      duplicates: 1,
      nearDuplicates: 1,
      contaminated: 1,
      benchmarkProblems: 500
    })
    expect(status.flags).toEqual({ duplicate: 1, "near-duplicate": 1, contaminated: 1 })
    // One of the three fence questions survives (the earliest id), with the two unrelated ones.
    expect(kept).toHaveLength(3)
    expect(kept.filter((p) => p.question.toLowerCase().startsWith("a farmer"))).toHaveLength(1)
    expect(kept.map((p) => p.question)).toEqual(
      expect.arrayContaining(["What is the capital of Peru?", "Compute the determinant of the 2 by 2 identity matrix."])
    )
    expect(report.examples.find((e) => e.flag === "contaminated")!.detail).toMatch(/shares the 8-gram/)
    const again = await run()
    expect(again.status.flags).toEqual(status.flags)
  })

  it("sets aside problems no trace of which could be verified, before any call, and keeps a duplicate that has a reference", async () => {
    const file = join(tmp.dir, "refs.jsonl")
    writeFileSync(
      file,
      jsonl([
        { question: "What is the capital of Chile?" },
        { question: "What is the capital of Chile?", answer: "Santiago" },
        { question: "Name the largest planet of the solar system.", answer: "   " },
        { question: "Write a function add(a, b) that returns a + b.", domain: "code" },
        { question: "What is 6 times 7?", answer: "42" }
      ])
    )
    const db = join(tmp.dir, "refs.db")
    await withStore(db, importFile(file))
    const { report, kept } = await withStore(
      db,
      Effect.gen(function* () {
        const report = yield* filterProblems({ dedup: true, nearDuplicateThreshold: 0.7, benchmarks: [], ngram: 8 })
        return { report, kept: yield* (yield* RunStore).listProblems({ unflagged: true }) }
      })
    )
    expect(report).toMatchObject({ problems: 5, flagged: 3, duplicates: 0, noReference: 3 })
    expect(
      report.examples
        .filter((e) => e.flag === "no-reference")
        .map((e) => e.detail)
        .sort()
    ).toEqual(["a code problem without tests", "no reference answer", "no reference answer"])
    expect(kept.map((p) => [p.question, p.answer]).sort()).toEqual([
      ["What is 6 times 7?", "42"],
      ["What is the capital of Chile?", "Santiago"]
    ])
  })
})
