import { Args, Command, Options } from "@effect/cli"
import { describeReason, fateDetail, Item, type Problem, RunStore, type Trace } from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { usage } from "../failure.js"
import {
  dashboardTerminal,
  jsonOption,
  stdout,
  existingStoreLayer,
  existingWorkspaceOption,
  storeOption,
  pipelineStoreOption,
  notAnOption,
  choiceOption
} from "../shared.js"

const item = Args.text({ name: "ITEM" }).pipe(
  notAnOption("inspect"),
  Args.optional,
  Args.withDescription("An item id, or a unique prefix of one (i_3fa2...).")
)
const fate = choiceOption("fate", ["pending", "kept", "dropped", "failed"]).pipe(
  Options.optional,
  Options.withDescription("List only items with this fate.")
)
const limit = Options.integer("limit").pipe(Options.withDefault(50), Options.withDescription("How many items to list."))

const wrap = (text: string, width: number): Array<string> =>
  text.split("\n").flatMap((line) => {
    if (line.length <= width) return [line]
    const out: Array<string> = []
    let rest = line
    while (rest.length > width) {
      const cut = rest.lastIndexOf(" ", width) > width / 2 ? rest.lastIndexOf(" ", width) : width
      out.push(rest.slice(0, cut))
      rest = rest.slice(cut).trimStart()
    }
    return [...out, rest]
  })

/** Two traces in columns, or one after the other on a narrow terminal. */
const sideBySide = (left: Trace, right: Trace, columns: number): string => {
  const width = Math.floor((columns - 3) / 2)
  const title = (t: Trace) => `${t.origin}${t.model !== undefined ? ` (${t.model})` : ""}`
  if (width < 30)
    return [`--- original: ${title(left)}`, left.reasoning, `--- final: ${title(right)}`, right.reasoning].join("\n")
  const a = [`original: ${title(left)}`, "-".repeat(width), ...wrap(left.reasoning, width)]
  const b = [`final: ${title(right)}`, "-".repeat(width), ...wrap(right.reasoning, width)]
  return Array.from(
    { length: Math.max(a.length, b.length) },
    (_, i) => `${(a[i] ?? "").padEnd(width)} │ ${b[i] ?? ""}`
  ).join("\n")
}

const describeItem = (it: Item, problem: Problem | undefined): string => {
  const lines = [
    `item ${it.id}  problem ${it.problemId}`,
    `fate ${it.fate}${it.keptAs !== undefined ? ` (${it.keptAs})` : ""}${it.reason !== undefined ? ` — ${describeReason(it.reason)}` : ""}; stage ${it.stage}`,
    ...(it.review !== undefined
      ? [
          `review: ${it.review.decision} by ${it.review.reviewer} at ${it.review.at}${it.review.reason !== undefined ? ` — ${it.review.reason}` : ""}`
        ]
      : []),
    ...(problem !== undefined
      ? [`question: ${problem.question.slice(0, 300)}`, `reference: ${problem.answer ?? "(none)"}`]
      : []),
    "",
    "rounds:"
  ]
  for (const r of it.rounds) {
    const parts = [`  ${String(r.index).padStart(2)}. ${r.action}`]
    if (r.verdict !== undefined)
      parts.push(`verdict ${r.verdict.level} (raw ${JSON.stringify(r.verdict.raw.slice(0, 80))})`)
    if (r.review !== undefined) parts.push(`${r.review.decision} by ${r.review.reviewer} at ${r.review.at}`)
    if (r.verification !== undefined)
      parts.push(`${r.verification.ok ? "verified" : "NOT verified"}: ${r.verification.reason}`)
    for (const c of r.calls)
      parts.push(
        `${c.role} ${c.model} ${c.promptVersion ?? ""} ${c.promptTokens}+${c.completionTokens} tok${c.cached ? " cached" : ""}${c.costUsd !== undefined ? ` $${c.costUsd.toFixed(5)}` : ""}`
      )
    if (r.note !== undefined) parts.push(`(${r.note})`)
    lines.push(parts.join("  "))
  }
  const final = it.trace
  const original = it.original ?? it.trace
  if (final !== undefined && original !== undefined) {
    lines.push("")
    const flags = [final.long ? "long" : "", final.cutOff === true ? "cut off inside its reasoning" : ""]
      .filter((f) => f !== "")
      .join(", ")
    lines.push(
      original === final || it.original === undefined
        ? `reasoning (${final.origin}${flags !== "" ? `, ${flags}` : ""}, unchanged):\n${final.reasoning}`
        : sideBySide(original, final, process.stdout.columns ?? 120)
    )
    // The final solution apart from the reasoning (a reply's text after </think>, Sky-T1's solution section).
    lines.push("", `final solution: ${final.finalAnswer ?? "(none)"}`)
  }
  if (it.metadata !== undefined) lines.push("", `from the source: ${JSON.stringify(it.metadata)}`)
  return lines.join("\n")
}

export const inspectCommand = Command.make(
  "inspect",
  {
    item,
    fate,
    limit,
    workspace: existingWorkspaceOption,
    store: storeOption,
    pipeline: pipelineStoreOption,
    json: jsonOption
  },
  (args) =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const interactive = !args.json && Option.isNone(args.item) && dashboardTerminal({ keys: true })
      if (interactive) {
        const { render } = yield* Effect.promise(() => import("ink"))
        const { InspectBrowser } = yield* Effect.promise(() => import("../tui/InspectBrowser.js"))
        const status = yield* store.status
        const run = <A,>(e: Effect.Effect<A, unknown>) =>
          Effect.runPromise(e.pipe(Effect.orElseSucceed(() => undefined as A)))
        const app = render(
          <InspectBrowser
            counts={{ kept: status.kept, dropped: status.dropped, pending: status.pending, failed: status.failed }}
            initialFate={Option.getOrUndefined(args.fate)}
            width={Math.max(60, process.stdout.columns ?? 80)}
            height={Math.max(12, (process.stdout.rows ?? 24) - 1)}
            list={(fate) =>
              run(
                Effect.gen(function* () {
                  const items = yield* store.listItems({ fate, limit: 1000 })
                  const problems = new Map(
                    (yield* store.getProblems(items.map((i) => i.problemId))).map((p) => [p.id as string, p])
                  )
                  return items.map((i) => ({
                    id: i.id,
                    what: fateDetail(i),
                    rounds: i.rounds.length,
                    question: (problems.get(i.problemId)?.question ?? "").replace(/\s+/g, " ")
                  }))
                })
              ).then((x) => x ?? [])
            }
            open={(id) =>
              run(
                Effect.gen(function* () {
                  const item = yield* store.getItem(id)
                  if (Option.isNone(item)) return undefined
                  return {
                    item: item.value,
                    problem: Option.getOrUndefined(yield* store.getProblem(item.value.problemId))
                  }
                })
              )
            }
          />
        )
        yield* Effect.promise(() => app.waitUntilExit())
        return
      }
      if (Option.isNone(args.item)) {
        const items = yield* store.listItems({ fate: Option.getOrUndefined(args.fate), limit: args.limit })
        const problems = new Map(
          (yield* store.getProblems(items.map((i) => i.problemId))).map((p) => [p.id as string, p])
        )
        if (args.json)
          return yield* stdout(
            JSON.stringify(
              items.map((i) => ({
                id: i.id,
                fate: i.fate,
                stage: i.stage,
                keptAs: i.keptAs,
                reason: i.reason,
                rounds: i.rounds.length
              }))
            )
          )
        for (const i of items) {
          const what = fateDetail(i)
          yield* stdout(
            `${i.id}  ${i.fate.padEnd(7)} ${what.padEnd(22)} ${String(i.rounds.length).padStart(2)} rounds  ${(problems.get(i.problemId)?.question ?? "").replace(/\s+/g, " ").slice(0, 60)}`
          )
        }
        return
      }
      const wanted = args.item.value
      let found = yield* store.getItem(wanted)
      if (Option.isNone(found)) {
        const candidates = (yield* store.listItems({ afterId: wanted, limit: 2 })).filter((i) =>
          i.id.startsWith(wanted)
        )
        if (candidates.length > 1) return yield* usage(`\`${wanted}\` matches more than one item; give more of the id`)
        found = Option.fromNullable(candidates[0])
      }
      if (Option.isNone(found))
        return yield* usage(`no item \`${wanted}\` in this workspace (list them with: fastcot inspect)`)
      const problem = Option.getOrUndefined(yield* store.getProblem(found.value.problemId))
      if (args.json) {
        return yield* stdout(JSON.stringify({ item: Schema.encodeSync(Item)(found.value), problem }))
      }
      yield* stdout(describeItem(found.value, problem))
    }).pipe(Effect.provide(existingStoreLayer(args.workspace, args.store, args.pipeline)))
).pipe(
  Command.withDescription(
    "Browse items on a terminal (by fate; open one to see its rounds and each rewrite as a word-level diff), list them, or show one item's whole history: each round's verdict, rewrite, verification and calls, with the original and final traces side by side.\n" +
      "Examples:\n  fastcot inspect --fate dropped\n  fastcot inspect i_3fa2\n  fastcot inspect i_3fa2 --json"
  )
)
