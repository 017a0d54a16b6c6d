import * as Effect from "effect/Effect"
import { Item } from "../schema/item.js"
import { Problem } from "../schema/problem.js"
import { Trace } from "../schema/trace.js"
import type { ImportBatch } from "../store/RunStore.js"
import { openSqliteStore } from "../store/SqliteRunStore.js"

const hex = (i: number) => String(i).padStart(16, "0")

/** Problems "What is i + i?" (answer 2i) for i = 1..count, with ids that sort by i. */
export const sumProblems = (count: number): Array<Problem> =>
  Array.from(
    { length: count },
    (_, n) =>
      new Problem({
        id: `p_${hex(n + 1)}` as Problem["id"],
        domain: "math",
        question: `What is ${n + 1} + ${n + 1}?`,
        answer: String(2 * (n + 1)),
        source: "t.jsonl:1",
        metadata: {}
      })
  )

/** Each problem's item as a finished run leaves it: kept as first rated, trace "Add i to itself." with the boxed answer. */
export const keptSumItems = (problems: ReadonlyArray<Problem>): Array<Item> =>
  problems.map(
    (p, n) =>
      new Item({
        id: `i_${hex(n + 1)}` as Item["id"],
        problemId: p.id,
        stage: "done",
        fate: "kept",
        keptAs: "initial-medium",
        trace: new Trace({
          reasoning: `Add ${n + 1} to itself.`,
          finalAnswer: `\\boxed{${p.answer}}`,
          origin: "teacher"
        }),
        rounds: [],
        createdAt: "2026-01-01T00:00:00Z",
        updatedAt: "2026-01-01T00:00:00Z"
      })
  )

/** Problems and items as one finished import of `t.jsonl` (for `RunStore.commitImportBatch`). */
export const finishedImport = (problems: ReadonlyArray<Problem>, items: ReadonlyArray<Item> = []): ImportBatch => ({
  progress: {
    key: "t",
    path: "t.jsonl",
    rows: problems.length,
    offset: 0,
    line: problems.length + 1,
    problemsAdded: 0,
    itemsAdded: 0,
    duplicates: 0,
    rejected: 0,
    done: true
  },
  problems,
  items,
  rejects: []
})

/**
 * A SQLite workspace file holding `count` sum problems, each with a kept item, as a finished run
 * leaves them (for tests that start from kept items: review, export, the desktop app).
 */
export const writeKeptSumWorkspace = async (dbFile: string, count: number): Promise<Array<Problem>> => {
  const problems = sumProblems(count)
  const { store, close } = openSqliteStore(dbFile)
  try {
    await Effect.runPromise(store.commitImportBatch(finishedImport(problems, keptSumItems(problems))))
  } finally {
    close()
  }
  return problems
}
