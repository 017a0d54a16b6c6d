import { Item } from "../schema/item.js"
import { Problem } from "../schema/problem.js"
import { Round } from "../schema/round.js"
import { Trace } from "../schema/trace.js"
import { Verdict } from "../schema/verdict.js"
import { contentId } from "../util/hash.js"

/** Records for the store's tests: a problem per question, its item, judge rounds, calls. */
export const problem = (q: string) =>
  new Problem({
    id: contentId("p_", q) as Problem["id"],
    domain: "math",
    question: q,
    answer: "1",
    source: "t:1",
    metadata: {}
  })

export const call = (role: "teacher" | "judge", cached: boolean) => ({
  role,
  model: `${role}-model`,
  promptVersion: "v1",
  promptTokens: 10,
  completionTokens: 5,
  costUsd: 0.01,
  latencyMs: 3,
  cached
})

export const round = (index: number, raw: string, calls: ReadonlyArray<ReturnType<typeof call>> = []) =>
  new Round({
    index,
    action: "judge",
    verdict: new Verdict({ level: "easy", raw }),
    calls,
    startedAt: "2026-01-01T00:00:00Z",
    finishedAt: "2026-01-01T00:00:01Z"
  })

export const item = (p: Problem, rounds: ReadonlyArray<Round> = [], fate: Item["fate"] = "pending", reasoning = "r") =>
  new Item({
    id: contentId("i_", p.id) as Item["id"],
    problemId: p.id,
    stage: "align",
    fate,
    trace: new Trace({ reasoning, origin: "teacher", tokens: { reasoning: 40, answer: 5, tokenizer: "qwen2.5" } }),
    rounds,
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z"
  })

/** Problems (and items) as one finished import with one reject. */
export const importBatch = (problems: ReadonlyArray<Problem>, items: ReadonlyArray<Item> = []) => ({
  progress: {
    key: "k",
    path: "f.jsonl",
    rows: problems.length,
    offset: 0,
    line: problems.length + 1,
    problemsAdded: 0,
    itemsAdded: 0,
    duplicates: 0,
    rejected: 1,
    done: true
  },
  problems,
  items,
  rejects: [{ file: "f.jsonl", line: 7, reason: "no question", raw: "{}" }]
})
