import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeEach, describe, expect, it } from "vitest"
import { Item } from "../schema/item.js"
import type { Problem } from "../schema/problem.js"
import { Trace } from "../schema/trace.js"
import { Round } from "../schema/round.js"
import { Verdict } from "../schema/verdict.js"
import { type ReviewAction, reviewItem } from "../review/reviewItem.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { BasicVerifierLive } from "../verify/Verifier.js"
import { tempDir } from "../test-support/fixtures.js"
import { importFile } from "../import/importFile.js"
import { call, importBatch, item, problem, round } from "../test-support/storeRecords.js"
import { usePostgresCluster } from "../test-support/postgresHooks.js"
import { startTcpProxy } from "../testing/tcpProxy.js"
import { contentId } from "../util/hash.js"
import { itemSortValue } from "./itemOrder.js"
import type { StoreError } from "./errors.js"
import { PgRunStoreLive } from "./PgRunStore.js"
import { RunStore } from "./RunStore.js"
import { SqliteRunStoreLive } from "./SqliteRunStore.js"

/** A backend under test: a fresh store location per test, and the layer that opens one. */
interface Backend {
  readonly name: string
  readonly fresh: () => string
  readonly layer: (location: string) => Layer.Layer<RunStore, StoreError>
}

const cluster = usePostgresCluster()
let databases = 0
const sqliteDirs: Array<ReturnType<typeof tempDir>> = []

const backends: ReadonlyArray<Backend> = [
  {
    name: "SQLite",
    fresh: () => {
      const dir = tempDir()
      sqliteDirs.push(dir)
      return join(dir.dir, "fastcot.db")
    },
    layer: SqliteRunStoreLive
  },
  {
    name: "PostgreSQL",
    fresh: () => cluster().createDatabase(`store_${++databases}`),
    layer: PgRunStoreLive
  }
]

afterAll(() => {
  for (const d of sqliteDirs) d.cleanup()
})

describe.each(backends)("the run store's contract on $name", (backend) => {
  let location: string
  beforeEach(() => {
    location = backend.fresh()
  })
  const withStore = <A, E>(effect: Effect.Effect<A, E, RunStore>): Promise<A> =>
    Effect.runPromise(Effect.scoped(effect.pipe(Effect.provide(backend.layer(location)))))

  it("imports problems, items and rejects once, and pages problems in id order", async () => {
    const ps = Array.from({ length: 1_234 }, (_, i) => problem(`q${i}?`))
    const out = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        const first = yield* store.commitImportBatch(importBatch(ps, [item(ps[0]!)]))
        const again = yield* store.commitImportBatch(importBatch(ps.slice(0, 10), [item(ps[0]!)]))
        const pages: Array<string> = []
        let afterId: string | undefined
        for (;;) {
          const page = yield* store.listProblems({ afterId, limit: 500 })
          pages.push(...page.map((p) => p.id))
          if (page.length < 500) break
          afterId = page[page.length - 1]!.id
        }
        const some = yield* store.getProblems([ps[5]!.id, "missing", ps[3]!.id])
        return {
          first,
          again,
          pages,
          some: some.map((p) => p.question),
          progress: yield* store.importProgress("k"),
          rejects: yield* store.importRejects("k"),
          one: yield* store.getProblem(ps[2]!.id)
        }
      })
    )
    expect(out.first).toEqual({ problemsAdded: 1_234, itemsAdded: 1 })
    expect(out.again).toEqual({ problemsAdded: 0, itemsAdded: 0 })
    expect(out.pages).toEqual(ps.map((p) => p.id).sort())
    expect(out.some).toEqual(["q5?", "q3?"])
    // The second batch stands before the stored position (10 rows of 1,234): it moves nothing back.
    expect(Option.getOrThrow(out.progress)).toMatchObject({
      rows: 1_234,
      done: true,
      problemsAdded: 1_234,
      duplicates: 0
    })
    expect(out.rejects).toEqual([{ file: "f.jsonl", line: 7, reason: "no question", raw: "{}" }])
    expect(Option.getOrThrow(out.one).question).toBe("q2?")
  })

  it("merges the progress of workers importing one file at once: the position moves forward, each add counts once", async () => {
    const ps = Array.from({ length: 9 }, (_, i) => problem(`merged ${i}?`))
    /** A worker's view of the file: the stored progress it began from, and its own batches. */
    const worker = (from: { rows: number; problemsAdded: number; duplicates: number }) => {
      let view = { ...importBatch([]).progress, ...from, rejected: 0, done: false }
      return (rows: number, problems: ReadonlyArray<Problem>, done = false) =>
        Effect.gen(function* () {
          const store = yield* RunStore
          const batch = {
            progress: { ...view, rows, line: rows + 1, offset: rows * 10, done },
            problems,
            items: [],
            rejects: []
          }
          const added = yield* store.commitImportBatch(batch)
          view = {
            ...batch.progress,
            problemsAdded: view.problemsAdded + added.problemsAdded,
            duplicates: view.duplicates + problems.length - added.problemsAdded
          }
          return added.problemsAdded
        })
    }
    const out = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        const progress = () => Effect.map(store.importProgress("k"), Option.getOrThrow)
        const a = worker({ rows: 0, problemsAdded: 0, duplicates: 0 })
        const added = [yield* a(4, ps.slice(0, 4))]
        // The second worker begins from what the first has stored, four rows in.
        const b = worker(yield* progress())
        added.push(yield* a(8, ps.slice(4, 8)))
        const afterA = yield* progress()
        added.push(yield* b(8, ps.slice(4, 8)))
        // Its last batch repeats a problem within itself: one duplicate of the file's.
        added.push(yield* b(10, [ps[8]!, ps[8]!], true))
        added.push(yield* a(10, [ps[8]!, ps[8]!], true))
        return { added, afterA, end: yield* progress() }
      })
    )
    expect(out.added).toEqual([4, 4, 0, 1, 0])
    expect(out.afterA).toMatchObject({ rows: 8, offset: 80, line: 9, problemsAdded: 8, duplicates: 0, done: false })
    expect(out.end).toMatchObject({ rows: 10, offset: 100, line: 11, problemsAdded: 9, duplicates: 1, done: true })
  })

  it("imports any text whole, counts a batch's repeats once, and adds only what is new beside what is stored", async () => {
    const odd = "tab\there, a newline\n, a return\r, a backslash \\, \\N, a NUL \u0000, a lone surrogate \ud800, 🙂"
    const first = [problem(`${odd} 1?`), problem("plain 2?"), problem("\\N")]
    const withRound = item(first[0]!, [round(0, odd, [call("judge", false)])], "pending", odd)
    const later = [problem("new 4?"), first[1]!, problem("new 5?")]
    const batch = (problems: ReadonlyArray<Problem>, items: ReadonlyArray<Item>, rows: number) => {
      const b = importBatch(problems, items)
      return { ...b, rejects: [], progress: { ...b.progress, rows, done: false } }
    }
    const out = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        // The first batch repeats a problem and an item; the second meets a stored problem; the
        // third is new again.
        const a = yield* store.commitImportBatch(
          batch([...first, first[1]!], [withRound, withRound, item(first[1]!)], 4)
        )
        const b = yield* store.commitImportBatch(batch(later, [item(later[0]!, withRound.rounds, "pending", odd)], 7))
        const c = yield* store.commitImportBatch(batch([problem("new 6?")], [], 8))
        return {
          counts: [a, b, c],
          progress: yield* store.importProgress("k"),
          questions: (yield* store.getProblems(first.map((p) => p.id))).map((p) => p.question),
          items: [yield* store.getItem(withRound.id), yield* store.getItem(item(later[0]!).id)],
          all: (yield* store.listProblems({})).length
        }
      })
    )
    expect(out.counts).toEqual([
      { problemsAdded: 3, itemsAdded: 2 },
      { problemsAdded: 2, itemsAdded: 1 },
      { problemsAdded: 1, itemsAdded: 0 }
    ])
    expect(Option.getOrThrow(out.progress)).toMatchObject({ rows: 8 })
    expect(out.questions).toEqual(first.map((p) => p.question))
    // The first item was copied, the second written by the statement that skips what is stored.
    for (const stored of out.items.map(Option.getOrThrow)) {
      expect(stored.trace?.reasoning).toBe(odd)
      expect(stored.rounds.map((r) => r.verdict?.raw)).toEqual([odd])
    }
    expect(out.all).toBe(6)
  })

  it("replaces problem flags and leaves flagged problems out when asked", async () => {
    const ps = ["a?", "b?", "c?"].map(problem)
    const out = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch(ps))
        yield* store.setProblemFlags([{ problemId: ps[0]!.id, flag: "duplicate", detail: "of b" }])
        yield* store.setProblemFlags([{ problemId: ps[1]!.id, flag: "contaminated", detail: "MATH-500" }])
        return {
          listed: (yield* store.listProblems({ unflagged: true })).map((p) => p.question),
          flag: yield* store.problemFlag(ps[1]!.id),
          none: yield* store.problemFlag(ps[0]!.id)
        }
      })
    )
    expect(out.listed.sort()).toEqual(["a?", "c?"])
    expect(Option.getOrThrow(out.flag)).toEqual({ problemId: ps[1]!.id, flag: "contaminated", detail: "MATH-500" })
    expect(Option.isNone(out.none)).toBe(true)
  })

  it("appends rounds and never rewrites an earlier one; keeps any text a model writes", async () => {
    const p = problem("1+0?")
    const odd = "a NUL \u0000, a lone surrogate \ud800, emoji 🙂, quotes \" ' and a backslash \\"
    const saved = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch([p]))
        yield* store.saveItem(item(p, [round(0, "easy")], "pending", odd))
        yield* store.saveItem(item(p, [round(0, "TAMPERED"), round(1, "medium")], "kept", odd))
        return Option.getOrThrow(yield* store.getItem(contentId("i_", p.id)))
      })
    )
    expect(saved.fate).toBe("kept")
    expect(saved.rounds.map((r) => r.verdict?.raw)).toEqual(["easy", "medium"])
    expect(saved.trace?.reasoning).toBe(odd)
  })

  it("saves concurrent items, and one bad item fails only its own save", async () => {
    const [p, q, orphan] = [problem("4+0?"), problem("5+0?"), problem("not imported")]
    const outcome = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch([p!, q!]))
        const results = yield* Effect.all(
          [p!, orphan!, q!].map((x) => Effect.either(store.saveItem(item(x, [round(0, "medium")], "kept")))),
          { concurrency: "unbounded" }
        )
        const states = yield* store.itemStates([p!, orphan!, q!].map((x) => contentId("i_", x.id)))
        return { results, states }
      })
    )
    expect(outcome.results.map((r) => r._tag)).toEqual(["Right", "Left", "Right"])
    const failure = outcome.results[1]!
    expect(Either.isLeft(failure) ? failure.left.message : "").toContain(`saving item ${contentId("i_", orphan!.id)}`)
    expect([...outcome.states.values()].map((s) => s.fate)).toEqual(["kept", "kept"])
  })

  it("lists items by fate and stage a page at a time, with their rounds", async () => {
    const ps = Array.from({ length: 30 }, (_, i) => problem(`item ${i}?`))
    const out = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch(ps))
        yield* store.addItems(
          ps.map((p, i) => item(p, [round(0, `r${i}`, [call("judge", false)])], i % 3 === 0 ? "kept" : "pending"))
        )
        const pending = yield* store.listItems({ fate: ["pending", "failed"], stage: "align", limit: 7 })
        const next = yield* store.listItems({ fate: "pending", afterId: pending[6]!.id, limit: 100 })
        return { pending, next, kept: yield* store.listItems({ fate: "kept" }), status: yield* store.status }
      })
    )
    // The rounds' calls are counted (they are written with the items).
    expect(out.status.llm.byRole["judge"]?.calls).toBe(30)
    expect(out.pending).toHaveLength(7)
    expect(out.pending.length + out.next.length).toBe(20)
    expect(out.kept).toHaveLength(10)
    expect(out.kept.every((i) => i.rounds.length === 1)).toBe(true)
    const ids = [...out.pending, ...out.next].map((i) => i.id)
    expect(ids).toEqual([...ids].sort())
  })

  it("counts problems, items per stage and fate, reasons, tokens and the calls rounds record", async () => {
    const ps = ["a?", "b?", "c?"].map(problem)
    const status = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch(ps))
        yield* store.saveItem(
          new Item({
            ...item(ps[0]!, [round(0, "x", [call("teacher", false), call("judge", true)])]),
            fate: "kept",
            stage: "done",
            keptAs: "easy-to-medium"
          })
        )
        yield* store.saveItem(
          new Item({ ...item(ps[1]!), fate: "dropped", stage: "done", reason: { code: "max-rounds", detail: "x" } })
        )
        yield* store.saveItem(item(ps[2]!))
        return yield* store.status
      })
    )
    expect(status).toMatchObject({
      problems: 3,
      items: 3,
      kept: 1,
      dropped: 1,
      pending: 1,
      stages: { done: 2, align: 1 },
      keptAs: { "easy-to-medium": 1 },
      dropReasons: { "max-rounds": 1 },
      domains: { math: 3 },
      llm: {
        calls: 2,
        cachedCalls: 1,
        promptTokens: 20,
        completionTokens: 10,
        paidTokens: 15,
        byRole: { teacher: { calls: 1 }, judge: { calls: 1 } }
      },
      tokens: { tokenizer: "qwen2.5", ratio: 1 }
    })
    expect(status.llm.costUsd).toBeCloseTo(0.02)
    expect(status.imports[0]).toMatchObject({ path: "f.jsonl", rows: 3, problemsAdded: 3, rejected: 1, done: true })
    expect(status.running).toBeNull()
  })

  it("keeps people's review decisions: each item's latest with its history, counted by decision and reviewer", async () => {
    const ps = ["r1?", "r2?", "r3?", "r4?"].map(problem)
    const kept = (p: (typeof ps)[number]) =>
      new Item({ ...item(p, [], "kept", "So it is \\boxed{1}."), stage: "done", keptAs: "initial-medium" })
    const { status, items, refused } = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch(ps, ps.map(kept)))
        const id = (p: (typeof ps)[number]) => kept(p).id
        const review = (p: (typeof ps)[number], action: ReviewAction, who: string) =>
          reviewItem(id(p), action, who).pipe(Effect.provide(Layer.merge(BasicVerifierLive, QwenTokenCounterLive)))
        yield* review(ps[0]!, { _tag: "reject", reason: "garbled or unreadable" }, "ana")
        yield* review(ps[1]!, { _tag: "accept" }, "ana")
        yield* review(ps[2]!, { _tag: "edit", reasoning: "One is one, so \\boxed{1}." }, "ben")
        yield* review(ps[2]!, { _tag: "accept" }, "ana")
        const refused = yield* Effect.flip(review(ps[3]!, { _tag: "edit", reasoning: "Surely \\boxed{2}." }, "ben"))
        return {
          status: yield* store.status,
          items: yield* Effect.forEach(ps, (p) => Effect.map(store.getItem(id(p)), Option.getOrThrow)),
          refused
        }
      })
    )
    expect(status.reviews).toEqual({
      reviewed: 3,
      accepted: 1,
      rejected: 1,
      edited: 1,
      byReviewer: { ana: 3 }
    })
    expect(items[0]!.review).toMatchObject({ decision: "rejected", reviewer: "ana", reason: "garbled or unreadable" })
    // An edit: the person's trace, checked, with the model's kept as the original; accepting it keeps it edited.
    expect(items[2]!.trace).toMatchObject({
      reasoning: "One is one, so \\boxed{1}.",
      origin: "human",
      finalAnswer: "1"
    })
    expect(items[2]!.original?.origin).toBe("teacher")
    expect(items[2]!.review).toMatchObject({ decision: "edited", reviewer: "ana" })
    expect(items[2]!.rounds.map((r) => [r.action, r.review?.decision, r.review?.reviewer, r.verification?.ok])).toEqual(
      [
        ["review", "edited", "ben", true],
        ["review", "edited", "ana", undefined]
      ]
    )
    // An edit that no longer reaches the answer is refused with the failed check, and nothing is saved.
    expect(refused).toMatchObject({ _tag: "ReviewRefused", code: "edit-fails-verification" })
    expect(refused._tag === "ReviewRefused" && refused.verification?.failure).toBe("answer-mismatch")
    expect(items[3]!.review).toBeUndefined()
    expect(items[3]!.rounds).toEqual([])
  })

  it("filters listed items in the store: by text in the question or the id, by verdict, by reasoning tokens", async () => {
    const ps = Array.from({ length: 12 }, (_, i) => problem(`What is ${i} times Seven?`))
    const listed = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch(ps))
        yield* store.addItems(
          ps.map(
            (p, i) =>
              new Item({
                ...item(
                  p,
                  [
                    i % 4 === 0
                      ? new Round({ ...round(0, "x"), verdict: new Verdict({ level: "hard", raw: "hard" }) })
                      : round(0, "x")
                  ],
                  "kept"
                ),
                trace: new Trace({
                  reasoning: "r",
                  origin: "teacher",
                  tokens: { reasoning: 10 * i, answer: 1, tokenizer: "t" }
                })
              })
          )
        )
        const ids = (filter: Parameters<typeof store.listItems>[0]) =>
          Effect.map(store.listItems(filter), (items) => items.map((i) => i.problemId as string).sort())
        return {
          text: yield* ids({ search: "is 7 TIMES seven" }),
          none: yield* ids({ search: "eight" }),
          hard: yield* ids({ verdict: "hard" }),
          easy: yield* ids({ verdict: "easy", fate: "kept" }),
          tokens: yield* ids({ minTokens: 30, maxTokens: 50 }),
          byId: yield* Effect.map(store.listItems({ search: item(ps[3]!).id.slice(0, 10) }), (items) =>
            items.map((i) => i.id)
          ),
          // Most reasoning tokens first, a page of 5 then the next by keyset.
          longest: yield* Effect.gen(function* () {
            const order = { by: "tokens", direction: "desc" } as const
            const first = yield* store.listItems({ order, limit: 5 })
            const last = first[first.length - 1]!
            const next = yield* store.listItems({
              order,
              afterId: last.id,
              afterValue: last.trace!.tokens!.reasoning,
              limit: 100
            })
            return [...first, ...next].map((i) => i.problemId as string)
          }),
          fewest: yield* ids({ order: { by: "tokens", direction: "asc" }, limit: 2 })
        }
      })
    )
    const of = (...is: Array<number>) => is.map((i) => ps[i]!.id as string).sort()
    expect(listed.text).toEqual(of(7))
    expect(listed.none).toEqual([])
    expect(listed.hard).toEqual(of(0, 4, 8))
    expect(listed.easy).toEqual(of(1, 2, 3, 5, 6, 7, 9, 10, 11))
    expect(listed.tokens).toEqual(of(3, 4, 5))
    expect(listed.byId).toContain(item(ps[3]!).id)
    expect(listed.longest).toEqual([11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0].map((i) => ps[i]!.id as string))
    expect(listed.fewest).toEqual(of(0, 1))
  })

  it("sorts listed items by each column either way, ties by id, a page at a time by keyset", async () => {
    const ps = Array.from({ length: 13 }, (_, i) => problem(`sort ${i}?`))
    const fates = ["kept", "dropped", "pending"] as const
    const decisions = [undefined, "accepted", "rejected", "edited"] as const
    const items = ps.map((p, i) => {
      const decision = decisions[i % 4]
      return new Item({
        ...item(p, [], fates[i % 3]),
        // Lengths with ties (ties go by id); the last item has no trace, so no count.
        trace:
          i === 12
            ? undefined
            : new Trace({
                reasoning: "r",
                origin: "teacher",
                tokens: { reasoning: 10 * (i % 5), answer: 1, tokenizer: "t" }
              }),
        ...(decision !== undefined ? { review: { decision, reviewer: "ana", at: "2026-01-01T00:00:00Z" } } : {})
      })
    })
    const listed = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch(ps))
        yield* store.addItems(items)
        const out: Record<string, ReadonlyArray<string>> = {}
        for (const by of ["id", "tokens", "fate", "review"] as const)
          for (const direction of ["asc", "desc"] as const) {
            const order = { by, direction }
            const seen: Array<Item> = []
            for (;;) {
              const last = seen[seen.length - 1]
              const page = yield* store.listItems({
                order,
                limit: 4,
                ...(last !== undefined ? { afterId: last.id, afterValue: itemSortValue(last, by) } : {})
              })
              seen.push(...page)
              if (page.length < 4) break
            }
            out[`${by} ${direction}`] = seen.map((i) => i.id)
          }
        return out
      })
    )
    for (const by of ["id", "tokens", "fate", "review"] as const)
      for (const direction of ["asc", "desc"] as const) {
        const key = (i: Item) => itemSortValue(i, by)!
        const expected = items
          .filter((i) => by !== "tokens" || i.trace !== undefined)
          .sort((a, b) => {
            const [x, y] = [key(a), key(b)]
            const c = x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
            return direction === "asc" ? c : -c
          })
          .map((i) => i.id)
        expect(listed[`${by} ${direction}`], `${by} ${direction}`).toEqual(expected)
      }
  })

  it("offers unreviewed kept items for review: a seeded random sample that wraps around, longest first, by verdict, by the stage that wrote the trace", async () => {
    const ps = Array.from({ length: 12 }, (_, i) => problem(`q${i}?`))
    const keptItem = (p: (typeof ps)[number], i: number) =>
      new Item({
        ...item(p, [], "kept"),
        stage: "done",
        keptAs: i % 3 === 0 ? "easy-to-medium" : "initial-medium",
        trace: new Trace({
          reasoning: "r",
          origin: i % 4 === 1 ? "long-to-short" : "teacher",
          tokens: { reasoning: 10 * i, answer: 1, tokenizer: "t" }
        })
      })
    const all = ps.map(keptItem)
    const ids = all.map((i) => i.id as string).sort()
    const got = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(importBatch(ps, all))
        yield* reviewItem(all[5]!.id, { _tag: "accept" }, "ana").pipe(
          Effect.provide(Layer.merge(BasicVerifierLive, QwenTokenCounterLive))
        )
        const queue = (filter: Parameters<typeof store.reviewQueue>[0]) =>
          Effect.map(store.reviewQueue(filter), (items) => items.map((i) => i.id as string))
        return {
          // Starting at the 8th id in order: 8th, 9th, ... then around to the 1st.
          random: yield* queue({ order: "random", seed: ids[7]!.slice(2), limit: 6 }),
          again: yield* queue({ order: "random", seed: ids[7]!.slice(2), limit: 6 }),
          longest: yield* queue({ order: "longest", limit: 3 }),
          easy: yield* queue({ order: "random", keptAs: "easy-to-medium", limit: 10 }),
          shortened: yield* queue({ order: "random", origin: "long-to-short", limit: 10 }),
          excluded: yield* queue({ order: "random", seed: ids[7]!.slice(2), limit: 2, exclude: [ids[7]!] })
        }
      })
    )
    const unreviewed = ids.filter((id) => id !== all[5]!.id)
    const from = unreviewed.findIndex((id) => id >= ids[7]!)
    expect(got.random).toEqual([...unreviewed.slice(from), ...unreviewed.slice(0, from)].slice(0, 6))
    expect(got.again).toEqual(got.random)
    expect(got.longest).toEqual([all[11]!.id, all[10]!.id, all[9]!.id])
    expect([...got.easy].sort()).toEqual([0, 3, 6, 9].map((i) => all[i]!.id as string).sort())
    // Item 5 is long-to-short too, but reviewed already.
    expect([...got.shortened].sort()).toEqual([1, 9].map((i) => all[i]!.id as string).sort())
    expect(got.excluded).toEqual(got.random.filter((id) => id !== ids[7]).slice(0, 2))
  })

  it("stores, replaces and returns cache entries", async () => {
    const got = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.cachePut({ key: "abc", model: "m", value: '{"text":"hi"}', createdAt: "t" })
        yield* store.cachePut({ key: "abc", model: "m", value: '{"text":"again"}', createdAt: "t2" })
        return [yield* store.cacheGet("abc"), yield* store.cacheGet("missing")] as const
      })
    )
    expect(Option.getOrThrow(got[0])).toEqual({ key: "abc", model: "m", value: '{"text":"again"}', createdAt: "t2" })
    expect(Option.isNone(got[1])).toBe(true)
  })

  it("answers each of many cache reads and writes made at once with its own entry; of two writes to a key the later wins", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
    const got = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* Effect.all(
          [
            ...keys.map((key) => store.cachePut({ key, model: "m", value: `first ${key}`, createdAt: "t" })),
            store.cachePut({ key: "k0", model: "m", value: "second k0", createdAt: "t2" })
          ],
          { concurrency: "unbounded", discard: true }
        )
        return yield* Effect.all([...keys, "missing"].map(store.cacheGet), { concurrency: "unbounded" })
      })
    )
    expect(got.map((e) => Option.getOrUndefined(Option.map(e, (x) => x.value)))).toEqual([
      "second k0",
      ...keys.slice(1).map((k) => `first ${k}`),
      undefined
    ])
  })

  it("keeps batch jobs through their states, lists the open ones of an endpoint, and never reopens a done one", async () => {
    const job = {
      id: "job-1",
      endpoint: "teacher: http://127.0.0.1:1/v1 (m)",
      state: "uploaded" as const,
      fileId: "file-1",
      batchId: null,
      keys: ["k1", "k2"],
      remoteStatus: null,
      completed: 0,
      failed: 0,
      createdAt: "2026-12-04T00:00:00.000Z",
      updatedAt: "2026-12-04T00:00:00.000Z"
    }
    const got = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.saveBatchJob(job)
        yield* store.saveBatchJob({ ...job, id: "job-2", endpoint: "judge: http://127.0.0.1:1/v1 (m)" })
        yield* store.saveBatchJob({ ...job, state: "submitted", batchId: "batch-1", remoteStatus: "in_progress" })
        const open = yield* store.batchJobs({ endpoint: job.endpoint, open: true })
        yield* store.saveBatchJob({
          ...job,
          state: "done",
          batchId: "batch-1",
          remoteStatus: "completed",
          completed: 2
        })
        // A late save from a copy that had not seen it done leaves it done.
        yield* store.saveBatchJob({ ...job, state: "submitted", batchId: "batch-1", remoteStatus: "completed" })
        return {
          open,
          after: yield* store.batchJobs({ endpoint: job.endpoint, open: true }),
          all: yield* store.batchJobs({})
        }
      })
    )
    expect(got.open).toEqual([{ ...job, state: "submitted", batchId: "batch-1", remoteStatus: "in_progress" }])
    expect(got.after).toEqual([])
    expect(got.all.map((j) => [j.id, j.state])).toEqual([
      ["job-1", "done"],
      ["job-2", "uploaded"]
    ])
  })

  it("sums the spending of every store open on the workspace at once", async () => {
    const spend = { role: "teacher", model: "m", promptTokens: 100, completionTokens: 50, costUsd: 0.5 }
    const totals = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const storeA = Context.get(yield* Layer.build(backend.layer(location)), RunStore)
          const storeB = Context.get(yield* Layer.build(backend.layer(location)), RunStore)
          for (let i = 0; i < 3; i++) storeA.recordSpend(spend)
          for (let i = 0; i < 2; i++) storeB.recordSpend(spend)
          yield* storeB.spending
          return yield* storeA.spending
        })
      )
    )
    expect(totals).toEqual({ calls: 5, tokens: 750, costUsd: 2.5 })
  })

  it("hands each key to one worker: a key another worker holds is not taken until released", async () => {
    const outcome = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const a = Context.get(yield* Layer.build(backend.layer(location)), RunStore)
          const b = Context.get(yield* Layer.build(backend.layer(location)), RunStore)
          const first = yield* a.claim(["align:1", "align:2", "align:3"])
          const second = yield* b.claim(["align:2", "align:3", "align:4"])
          const othersBefore = yield* b.heldByOthers("align:")
          a.release(["align:2"])
          // Released at the next renewal.
          let again = new Set<string>()
          for (let i = 0; i < 100 && !again.has("align:2"); i++) {
            yield* Effect.sleep("20 millis")
            again = new Set(yield* b.claim(["align:2"]))
          }
          return { first, second, othersBefore, again, mine: yield* a.claim(["align:1"]) }
        })
      )
    )
    if (backend.name === "SQLite") {
      // One process at a time runs on a SQLite store (its run lock): every key is its own.
      expect([...outcome.second]).toEqual(["align:2", "align:3", "align:4"])
      expect(outcome.othersBefore).toBe(0)
      return
    }
    expect([...outcome.first].sort()).toEqual(["align:1", "align:2", "align:3"])
    expect([...outcome.second]).toEqual(["align:4"])
    expect(outcome.othersBefore).toBe(3)
    expect([...outcome.again]).toEqual(["align:2"])
    expect([...outcome.mine]).toEqual(["align:1"])
  })

  it("answers a model call from the cache without a lease, or claims its lease: many calls in one turn, each its own answer", async () => {
    const entry = (key: string) => ({
      key,
      model: "m",
      value: `{"text":"${key}"}`,
      createdAt: "2026-12-06T00:00:00.000Z"
    })
    const outcome = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const a = Context.get(yield* Layer.build(backend.layer(location)), RunStore)
          const b = Context.get(yield* Layer.build(backend.layer(location)), RunStore)
          yield* a.cachePut(entry("k1"))
          // Made at once: one statement for the turn on PostgreSQL.
          const first = yield* Effect.all(
            ["k1", "k2", "k3"].map((k) => a.claimCall(k, `call:${k}`)),
            { concurrency: "unbounded" }
          )
          const other = yield* Effect.all(
            ["k1", "k2", "k4"].map((k) => b.claimCall(k, `call:${k}`)),
            { concurrency: "unbounded" }
          )
          // The holder asks again (its second look): the lease stays its own.
          const again = yield* a.claimCall("k2", "call:k2")
          yield* a.cachePut(entry("k2"))
          const answered = yield* b.claimCall("k2", "call:k2")
          return { first, other, again, answered, othersHold: yield* b.heldByOthers("call:") }
        })
      )
    )
    const summary = (c: { readonly cached: Option.Option<{ readonly value: string }>; readonly taken: boolean }) => ({
      value: Option.getOrUndefined(Option.map(c.cached, (e) => e.value)),
      taken: c.taken
    })
    expect(outcome.first.map(summary)).toEqual([
      { value: '{"text":"k1"}', taken: false },
      { value: undefined, taken: true },
      { value: undefined, taken: true }
    ])
    expect(summary(outcome.answered)).toEqual({ value: '{"text":"k2"}', taken: false })
    if (backend.name === "SQLite") {
      // One process at a time runs on a SQLite store (its run lock): every call is its own.
      expect(outcome.other.map(summary)[1]).toEqual({ value: undefined, taken: true })
      return
    }
    expect(outcome.other.map(summary)).toEqual([
      { value: '{"text":"k1"}', taken: false },
      { value: undefined, taken: false },
      { value: undefined, taken: true }
    ])
    expect(summary(outcome.again)).toEqual({ value: undefined, taken: true })
    // a holds k2 and k3; no lease was taken for k1, answered from the cache.
    expect(outcome.othersHold).toBe(2)
  })

  it("claims a page of pending items at once: one another worker holds is counted, not returned", async () => {
    const ps = Array.from({ length: 6 }, (_, i) => problem(`page ${i}?`))
    const pending = ps.map((p) => item(p)).sort((x, y) => (x.id < y.id ? -1 : 1))
    const ids = pending.map((i) => i.id as string)
    const outcome = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const a = Context.get(yield* Layer.build(backend.layer(location)), RunStore)
          const b = Context.get(yield* Layer.build(backend.layer(location)), RunStore)
          const done = new Item({ ...item(problem("done?")), stage: "done", fate: "kept", keptAs: "initial-medium" })
          yield* a.commitImportBatch(importBatch([...ps, problem("done?")], [...pending, done]))
          yield* b.claim([`align:${ids[1]}`])
          const page = { stage: "align", fates: ["pending", "failed"], limit: 4 } as const
          const first = yield* a.claimItems({ ...page, afterId: undefined }, "align:")
          const second = yield* a.claimItems({ ...page, afterId: first.lastId }, "align:")
          return { first, second, heldByA: yield* b.heldByOthers("align:") }
        })
      )
    )
    const view = (p: typeof outcome.first) => ({ ...p, items: p.items.map((i) => i.id) })
    expect(view(outcome.second)).toEqual({ listed: 2, lastId: ids[5], items: ids.slice(4), heldElsewhere: 0 })
    if (backend.name === "SQLite") {
      expect(view(outcome.first)).toEqual({ listed: 4, lastId: ids[3], items: ids.slice(0, 4), heldElsewhere: 0 })
      return
    }
    expect(view(outcome.first)).toEqual({
      listed: 4,
      lastId: ids[3],
      items: [ids[0], ids[2], ids[3]],
      heldElsewhere: 1
    })
    expect(outcome.heldByA).toBe(5)
  })

  it("runs one pipeline at a time on SQLite, several workers at once on PostgreSQL, and says who is at work", async () => {
    const outcome = await Effect.runPromise(
      Effect.gen(function* () {
        const first = yield* Scope.make()
        const store = Context.get(yield* Layer.buildWithScope(backend.layer(location), first), RunStore)
        yield* store.lockRun("fastcot run").pipe(Effect.provideService(Scope.Scope, first))
        const other = yield* Scope.make()
        const second = Context.get(yield* Layer.buildWithScope(backend.layer(location), other), RunStore)
        const together = yield* Effect.either(
          second.lockRun("the desktop app").pipe(Effect.provideService(Scope.Scope, other))
        )
        const status = yield* second.status
        yield* Scope.close(first, Exit.void)
        const after = yield* Effect.either(
          second.lockRun("the desktop app").pipe(Effect.provideService(Scope.Scope, other))
        )
        const afterStatus = yield* second.status
        yield* Scope.close(other, Exit.void)
        return { together, status, after, afterStatus }
      })
    )
    expect(outcome.status.running).toMatchObject({ pid: process.pid })
    expect(Either.isRight(outcome.after)).toBe(true)
    if (backend.name === "SQLite") {
      expect(Either.isLeft(outcome.together) && outcome.together.left._tag).toBe("WorkspaceBusy")
      expect(Either.isLeft(outcome.together) ? outcome.together.left.message : "").toContain("fastcot run")
      expect(outcome.afterStatus.running).toMatchObject({ what: "the desktop app" })
    } else {
      expect(Either.isRight(outcome.together)).toBe(true)
      expect(outcome.status.workers.map((w) => w.what)).toEqual(["fastcot run", "the desktop app"])
      expect(outcome.status.running).toMatchObject({ what: "2 workers" })
      expect(outcome.afterStatus.workers.map((w) => w.what)).toEqual(["the desktop app"])
    }
  })
})

describe("the PostgreSQL store across processes (a real server on 127.0.0.1)", () => {
  let url: string
  beforeEach(() => {
    url = cluster().createDatabase(`procs_${++databases}`)
  })
  const withStore = <A, E>(effect: Effect.Effect<A, E, RunStore>): Promise<A> =>
    Effect.runPromise(Effect.scoped(effect.pipe(Effect.provide(PgRunStoreLive(url)))))
  /** The test's database's name, for psql. */
  const database = () => new URL(url).pathname.slice(1)
  /** Makes every commit that writes `table` take `seconds` on the server (a deferred trigger that sleeps, as a slow disk would). */
  const slowCommitsOn = (table: string, seconds: number) =>
    cluster().psql(
      database(),
      `CREATE FUNCTION slow_${table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${seconds}); RETURN NULL; END $$;
       CREATE CONSTRAINT TRIGGER slow_${table} AFTER INSERT OR UPDATE ON ${table} DEFERRABLE INITIALLY DEFERRED
         FOR EACH ROW EXECUTE FUNCTION slow_${table}();`
    )
  /** Polls `query` on the test's database every 20 ms until it answers `expected`. */
  const untilAnswers = async (query: string, expected: string) => {
    while (cluster().psql(database(), query).trim() !== expected) await new Promise((r) => setTimeout(r, 20))
  }
  /** Waits until another session is running a statement whose text contains `text`. */
  const untilRunning = (text: string) =>
    untilAnswers(
      `SELECT COUNT(*) FROM pg_stat_activity WHERE strpos(query, '${text}') > 0 AND state = 'active' AND pid <> pg_backend_pid()`,
      "1"
    )
  /** A session's `COPY problems` waiting on a lock: another import's uncommitted rows. */
  const COPY_WAITING = "wait_event_type = 'Lock' AND strpos(query, 'COPY problems') > 0"
  /** Waits until an import's copy of its rows waits on another import's uncommitted ones. */
  const untilCopyWaits = () =>
    untilAnswers(`SELECT COUNT(*) FROM pg_stat_activity WHERE ${COPY_WAITING} AND pid <> pg_backend_pid()`, "1")
  /** A JSONL file of `n` questions `LABEL i?` with answers, in a new temporary folder. */
  const questionsFile = (n: number, label: string) => {
    const dir = tempDir()
    const file = join(dir.dir, "problems.jsonl")
    writeFileSync(
      file,
      Array.from({ length: n }, (_, i) => JSON.stringify({ question: `${label} ${i}?`, answer: String(i) })).join(
        "\n"
      ) + "\n"
    )
    return { dir, file }
  }
  /** The test's database through `proxy`. */
  const through = (proxy: { readonly port: number }) => url.replace(`:${cluster().port}/`, `:${proxy.port}/`)

  /** Starts a worker process on the store that claims `keys` and holds them until stopped. */
  const holder = async (keys: ReadonlyArray<string>, leaseMs: number, { saves = false } = {}) => {
    const script = join(import.meta.dirname, "..", "test-support", "holdPgLeases.mjs")
    const child = spawn(process.execPath, [script, url, String(leaseMs), ...keys], {
      stdio: ["ignore", "pipe", "inherit"],
      env: saves ? { ...process.env, FASTCOT_HOLDER_SAVES: "1" } : process.env
    })
    await new Promise<void>((resolve, reject) => {
      const until = saves ? "saving" : `claimed ${keys.length}`
      child.stdout.on("data", (d: Buffer) => d.toString().includes(until) && resolve())
      child.once("exit", (code) => reject(new Error(`the worker exited with ${code}`)))
    })
    return child
  }
  /** Claims `keys` every 50 ms until all are taken; how long it took. */
  const claimAll = (store: RunStore["Type"], keys: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const started = Date.now()
      let taken = new Set<string>()
      while (taken.size < keys.length && Date.now() - started < 10_000) {
        taken = new Set([...taken, ...(yield* store.claim(keys))])
        if (taken.size < keys.length) yield* Effect.sleep("50 millis")
      }
      return { taken: [...taken].sort(), waited: Date.now() - started }
    })

  it("a worker killed with SIGKILL loses its leases at once: the server ends its session", async () => {
    const keys = ["teacher:p1", "teacher:p2", "teacher:p3"]
    const child = await holder(keys, 30_000)
    const outcome = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        const workers = yield* store.workers
        const whileAlive = yield* store.claim(keys)
        const held = yield* store.heldByOthers("teacher:")
        child.kill("SIGKILL")
        return { workers, whileAlive, held, after: yield* claimAll(store, keys) }
      })
    )
    expect(outcome.workers).toEqual([
      expect.objectContaining({ pid: child.pid, what: "a worker that holds its leases", holds: 3 })
    ])
    expect(outcome.whileAlive.size).toBe(0)
    expect(outcome.held).toBe(3)
    expect(outcome.after.taken).toEqual(keys)
    // Long before the 30 s lease would have run out.
    expect(outcome.after.waited).toBeLessThan(5_000)
  })

  it("a worker killed while its last save commits keeps its leases until the save has landed", async () => {
    const p = problem("held up?")
    const pending = item(p)
    await withStore(Effect.flatMap(RunStore, (store) => store.commitImportBatch(importBatch([p], [pending]))))
    // A commit that takes 1.5 s on the server: the worker is killed while its save commits, and
    // the server finishes the commit.
    slowCommitsOn("items", 1.5)
    const keys = [`align:${pending.id}`]
    const child = await holder(keys, 30_000, { saves: true })
    await new Promise((r) => setTimeout(r, 300))
    child.kill("SIGKILL")
    const outcome = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        const heldWhileCommitting = yield* store.heldByOthers("align:")
        const claimedWhileCommitting = yield* store.claim(keys)
        const after = yield* claimAll(store, keys)
        // By the time the work can be taken over, what the killed worker committed is there.
        return { heldWhileCommitting, claimedWhileCommitting, after, seen: yield* store.getItem(pending.id) }
      })
    )
    expect(outcome.heldWhileCommitting).toBe(1)
    expect(outcome.claimedWhileCommitting.size).toBe(0)
    expect(outcome.after.taken).toEqual(keys)
    expect(Option.getOrThrow(outcome.seen)).toMatchObject({ stage: "done", fate: "kept" })
  })

  it("passes over an item another worker is saving that moment (SKIP LOCKED), without waiting for it", async () => {
    const ps = Array.from({ length: 3 }, (_, i) => problem(`locked ${i}?`))
    const pending = ps.map((p) => item(p)).sort((x, y) => (x.id < y.id ? -1 : 1))
    await withStore(Effect.flatMap(RunStore, (store) => store.commitImportBatch(importBatch(ps, pending))))
    // Another session holds the first item's row for 2 s, as a save in progress does.
    const locker = spawn(
      "psql",
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(cluster().port),
        "-U",
        cluster().user,
        "-d",
        database(),
        "-tAq",
        "-c",
        `BEGIN; SELECT id FROM items WHERE id = '${pending[0]!.id}' FOR UPDATE; SELECT pg_sleep(2); COMMIT;`
      ],
      { stdio: "ignore" }
    )
    let lockHeld = true
    const lockerDone = new Promise((resolve) => locker.once("exit", resolve)).then(() => (lockHeld = false))
    await untilRunning("pg_sleep(2)")
    const outcome = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        const page = yield* store.claimItems(
          { stage: "align", fates: ["pending"], afterId: undefined, limit: 10 },
          "align:"
        )
        // Answered while the row is still locked: it did not wait for the save.
        return { whileLocked: lockHeld, page }
      })
    )
    await lockerDone
    expect(outcome.page.items.map((i) => i.id)).toEqual([pending[1]!.id, pending[2]!.id])
    expect(outcome.page.listed).toBe(2)
    expect(outcome.whileLocked).toBe(true)
  })

  it("two workers importing one file at once store each problem and trace once", async () => {
    const dir = tempDir()
    try {
      const file = join(dir.dir, "problems.jsonl")
      // Every third row carries a trace, so that items race as well as problems.
      writeFileSync(
        file,
        Array.from({ length: 3_000 }, (_, i) =>
          JSON.stringify(
            i % 3 === 0
              ? { problem: `both ${i}?`, answer: String(i), solution: `so \\boxed{${i}}` }
              : { question: `both ${i}?`, answer: String(i) }
          )
        ).join("\n") + "\n"
      )
      const importing = () =>
        Effect.runPromise(Effect.scoped(importFile(file, { batchSize: 500 }).pipe(Effect.provide(PgRunStoreLive(url)))))
      const reports = await Promise.all([importing(), importing()])
      expect(cluster().psql(database(), "SELECT COUNT(*) FROM problems").trim()).toBe("3000")
      expect(cluster().psql(database(), "SELECT COUNT(*) FROM items").trim()).toBe("1000")
      // Each problem was added by one of the two; the other found it stored.
      expect(reports[0]!.byThisRun.problemsAdded + reports[1]!.byThisRun.problemsAdded).toBe(3_000)
      expect(reports[0]!.byThisRun.itemsAdded + reports[1]!.byThisRun.itemsAdded).toBe(1_000)
      // Both report the file's counts as stored.
      for (const r of reports)
        expect(r).toMatchObject({ rows: 3_000, problemsAdded: 3_000, itemsAdded: 1_000, duplicates: 0 })
    } finally {
      dir.cleanup()
    }
  })

  it("a worker that joins an import part-way reports only what it added, and the file's counts stay right", async () => {
    const { dir, file } = questionsFile(3_000, "joined")
    await withStore(Effect.void)
    // The first worker's third batch (rows 1,000 to 1,500) holds before its commit until the test
    // lets it go: the second worker begins from the 1,000 rows stored, and its copy of the same
    // rows waits on the first's.
    cluster().psql(
      database(),
      `CREATE TABLE go (n int);
       CREATE FUNCTION hold_third() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE deadline timestamptz := clock_timestamp() + interval '30 seconds';
         BEGIN
           WHILE NOT EXISTS (SELECT 1 FROM go) AND clock_timestamp() < deadline LOOP PERFORM pg_sleep(0.02); END LOOP;
           RETURN NEW;
         END $$;
       CREATE TRIGGER hold_third BEFORE UPDATE ON imports FOR EACH ROW WHEN (NEW.rows = 1500) EXECUTE FUNCTION hold_third();`
    )
    const importing = () =>
      Effect.runPromise(Effect.scoped(importFile(file, { batchSize: 500 }).pipe(Effect.provide(PgRunStoreLive(url)))))
    const first = importing()
    await untilRunning("fastcot import batch */ WITH")
    await untilAnswers("SELECT rows FROM imports", "1000")
    const second = importing()
    await untilCopyWaits()
    cluster().psql(database(), "INSERT INTO go VALUES (1)")
    try {
      const [a, b] = await Promise.all([first, second])
      expect(b.resumed).toBe(true)
      expect(a.byThisRun.problemsAdded).toBeGreaterThanOrEqual(1_500)
      expect(a.byThisRun.problemsAdded + b.byThisRun.problemsAdded).toBe(3_000)
      for (const r of [a, b]) expect(r).toMatchObject({ rows: 3_000, problemsAdded: 3_000, duplicates: 0, rejected: 0 })
      expect(
        cluster()
          .psql(database(), "SELECT rows || ' ' || problems_added || ' ' || duplicates || ' ' || done FROM imports")
          .trim()
      ).toBe("3000 3000 0 true")
    } finally {
      dir.cleanup()
    }
  })

  // A batch new to the store is copied (COPY, then the position, then COMMIT); one that meets a
  // stored problem goes as one statement that skips it.
  it.each([
    { path: "copied", stored: 0, running: "fastcot import batch */ COMMIT" },
    { path: "as one statement", stored: 1, running: "added_problems AS" }
  ])(
    "counts an import batch once when its connection is cut while the server commits it ($path)",
    async ({ stored, running }) => {
      const { dir, file } = questionsFile(20, "cut")
      if (stored > 0) {
        const head = join(dir.dir, "head.jsonl")
        writeFileSync(head, readFileSync(file, "utf8").split("\n").slice(0, stored).join("\n") + "\n")
        await withStore(importFile(head))
      } else await withStore(Effect.void)
      // Each commit that moves the file's position takes 1 s on the server: the connection is cut
      // during the first batch's, and the server finishes it.
      slowCommitsOn("imports", 1)
      const proxy = await startTcpProxy(cluster().port)
      try {
        const importing = Effect.runPromise(
          Effect.scoped(importFile(file).pipe(Effect.provide(PgRunStoreLive(through(proxy)))))
        )
        await untilRunning(running)
        proxy.cut(300)
        const report = await importing
        expect({ added: report.problemsAdded, duplicates: report.duplicates }).toEqual({
          added: 20 - stored,
          duplicates: stored
        })
        expect(
          cluster()
            .psql(
              database(),
              "SELECT problems_added || ' ' || duplicates || ' ' || done FROM imports WHERE path LIKE '%problems.jsonl'"
            )
            .trim()
        ).toBe(`${20 - stored} ${stored} true`)
        expect(cluster().psql(database(), "SELECT COUNT(*) FROM problems").trim()).toBe("20")
      } finally {
        await proxy.close()
        dir.cleanup()
      }
    }
  )

  it("a worker whose batch failed while another worker committed the same batch counts none of it as its own", async () => {
    const { dir, file } = questionsFile(20, "twice")
    await withStore(Effect.void)
    // The first worker's commit of the file's batch of rows (not its last commit, which only marks
    // the file done) holds on the server until the second worker's copy of the same rows waits
    // on it, then 3 s more; the second's connection is cut while it waits: its batch is rolled
    // back and tried again, by which time the first worker's stands at the same position of the
    // same file. (A fixed delay let a second worker slow to start on a loaded machine begin past
    // the committed rows, with nothing of its own to copy: a different case.)
    cluster().psql(
      database(),
      `CREATE FUNCTION hold_imports() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE deadline timestamptz := clock_timestamp() + interval '30 seconds';
         BEGIN
           LOOP
             PERFORM pg_stat_clear_snapshot();
             EXIT WHEN clock_timestamp() > deadline
               OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE ${COPY_WAITING});
             PERFORM pg_sleep(0.02);
           END LOOP;
           PERFORM pg_sleep(3);
           RETURN NULL;
         END $$;
       CREATE CONSTRAINT TRIGGER hold_imports AFTER INSERT OR UPDATE ON imports DEFERRABLE INITIALLY DEFERRED
         FOR EACH ROW WHEN (NEW.done = false) EXECUTE FUNCTION hold_imports();`
    )
    const first = Effect.runPromise(Effect.scoped(importFile(file).pipe(Effect.provide(PgRunStoreLive(url)))))
    await untilRunning("fastcot import batch */ COMMIT")
    const proxy = await startTcpProxy(cluster().port)
    try {
      const second = Effect.runPromise(
        Effect.scoped(importFile(file).pipe(Effect.provide(PgRunStoreLive(through(proxy)))))
      )
      await untilCopyWaits()
      proxy.cut(300)
      const reports = await Promise.all([first, second])
      expect(reports.map((r) => r.byThisRun.problemsAdded).sort()).toEqual([0, 20])
      for (const r of reports) expect(r).toMatchObject({ problemsAdded: 20, duplicates: 0 })
      expect(cluster().psql(database(), "SELECT COUNT(*) FROM problems").trim()).toBe("20")
    } finally {
      await proxy.close()
      dir.cleanup()
    }
  })

  it("a worker that stops answering (SIGSTOP, its connection still open) keeps its leases until they expire", async () => {
    const keys = ["align:a", "align:b"]
    const child = await holder(keys, 1_500)
    try {
      const outcome = await withStore(
        Effect.gen(function* () {
          const store = yield* RunStore
          child.kill("SIGSTOP")
          const justAfter = yield* store.claim(keys)
          return { justAfter, after: yield* claimAll(store, keys) }
        })
      )
      expect(outcome.justAfter.size).toBe(0)
      expect(outcome.after.taken).toEqual(keys)
      // Taken once the lease ran out (1.5 s from its last renewal), not before.
      expect(outcome.after.waited).toBeGreaterThan(500)
    } finally {
      child.kill("SIGKILL")
    }
  })

  it("survives a server restart: calls on connections it cut are tried again until it is back", async () => {
    const out = await withStore(
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.cachePut({ key: "before", model: "m", value: "1", createdAt: "t" })
        cluster().restart()
        // The pool's connections died with the server: the store tries again on new ones.
        return yield* store.cacheGet("before")
      })
    )
    expect(Option.getOrThrow(out).value).toBe("1")
  })

  it("goes on through a network cut: calls wait for the network, leases shorter-lived than the cut are kept", async () => {
    const proxy = await startTcpProxy(cluster().port)
    try {
      const out = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const store = yield* RunStore
            const ps = Array.from({ length: 40 }, (_, i) => problem(`cut ${i}?`))
            yield* store.commitImportBatch(importBatch(ps))
            const keys = ps.map((p) => `verify:${p.id}`)
            yield* store.claim(keys)
            // Saves go on while the network is cut for 1.5 s, a fifth of the way through.
            const saves = yield* Effect.fork(
              Effect.forEach(
                ps,
                (p, i) =>
                  Effect.zipRight(
                    i === 8 ? Effect.sync(() => proxy.cut(1_500)) : Effect.sleep("20 millis"),
                    store.saveItem(item(p, [round(0, "medium")], "kept"))
                  ),
                { discard: true }
              )
            )
            yield* Effect.fromFiber(saves)
            return { status: yield* store.status, held: yield* store.claim(keys) }
          }).pipe(Effect.provide(PgRunStoreLive(through(proxy), { leaseMs: 6_000 })))
        )
      )
      expect(out.status.kept).toBe(40)
      expect(out.held.size).toBe(40)
    } finally {
      await proxy.close()
    }
  })

  it("never shows the password: not in the location, not in an error", async () => {
    const withPassword = url.replace("fastcot@", `fastcot:${cluster().password}@`)
    const location = await Effect.runPromise(
      Effect.scoped(Effect.map(Effect.provide(RunStore, PgRunStoreLive(withPassword)), (s) => s.location))
    )
    expect(location).not.toContain(cluster().password)
    const wrong = withPassword.replace(cluster().password, "not-the-password").replace(/\/[^/]+$/, "/no_such_db")
    const failed = await Effect.runPromise(
      Effect.scoped(Effect.either(Effect.provide(RunStore, PgRunStoreLive(wrong))))
    )
    expect(Either.isLeft(failed)).toBe(true)
    const message = Either.isLeft(failed) ? failed.left.message : ""
    expect(message).not.toContain("not-the-password")
    expect(message).toContain("127.0.0.1")
  })
})
