import { Command } from "@effect/cli"
import { describeHolder, RunStore, summarizeBatchJobs, workspaceSpending } from "@fastcot/core"
import * as Effect from "effect/Effect"
import {
  jsonOption,
  stdout,
  existingStoreLayer,
  existingWorkspaceOption,
  storeOption,
  pipelineStoreOption
} from "../shared.js"

const row = (label: string, value: number | string) => `  ${label.padEnd(22)} ${value}`

export const statusCommand = Command.make(
  "status",
  { workspace: existingWorkspaceOption, store: storeOption, pipeline: pipelineStoreOption, json: jsonOption },
  (args) =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const s = yield* store.status
      const batches = summarizeBatchJobs(yield* store.batchJobs({}))
      if (args.json) return yield* stdout(JSON.stringify({ ...s, batches }))
      const lines = [
        `workspace ${store.location}`,
        ...(s.running !== null ? [row("run in progress", describeHolder(s.running))] : []),
        ...s.workers.map((w) =>
          row(`  worker ${w.host}:${w.pid}`, `${w.what}, since ${w.startedAt}, holds ${w.holds}`)
        ),
        row("problems", s.problems),
        ...Object.entries(s.domains).map(([d, n]) => row(`  ${d}`, n)),
        // What the pipeline's filter left out (no call is made for these problems).
        ...(Object.keys(s.flags).length > 0
          ? [
              row(
                "  left out by filter",
                Object.values(s.flags).reduce((a, b) => a + b, 0)
              ),
              ...Object.entries(s.flags).map(([flag, n]) => row(`    ${flag}`, n))
            ]
          : []),
        row("items", s.items),
        row("  pending", s.pending),
        row("  kept", s.kept),
        ...Object.entries(s.keptAs).map(([k, n]) => row(`    ${k}`, n)),
        row("  dropped", s.dropped),
        ...Object.entries(s.dropReasons).map(([k, n]) => row(`    ${k}`, n)),
        ...(s.reviews.reviewed > 0
          ? [
              row(
                "reviewed by people",
                `${s.reviews.reviewed} (${s.reviews.accepted} accepted, ${s.reviews.edited} edited, ${s.reviews.rejected} rejected)`
              ),
              ...Object.entries(s.reviews.byReviewer).map(([who, n]) => row(`  ${who}`, n))
            ]
          : []),
        ...(s.failed > 0
          ? [
              row("  failed (run again to retry)", s.failed),
              ...Object.entries(s.failReasons).map(([k, n]) => row(`    ${k}`, n))
            ]
          : []),
        row(
          "model calls",
          `${s.llm.calls} (${s.llm.cachedCalls} from the cache), ${s.llm.promptTokens}+${s.llm.completionTokens} tokens (${workspaceSpending(s.llm).tokens} sent, what a token budget counts), $${s.llm.costUsd.toFixed(4)}`
        ),
        ...Object.entries(s.llm.byRole).map(([role, r]) =>
          row(`  ${role}`, `${r.calls} calls, ${r.promptTokens}+${r.completionTokens} tokens, $${r.costUsd.toFixed(4)}`)
        ),
        ...(s.llm.costPerKeptItemUsd !== null
          ? [
              row(
                "  per kept item",
                `$${s.llm.costPerKeptItemUsd.toFixed(5)}, ${Math.round(s.llm.tokensPerKeptItem ?? 0)} tokens`
              )
            ]
          : []),
        ...(s.tokens.after.count > 0
          ? [
              `reasoning tokens of kept items (${s.tokens.tokenizer} tokenizer)`,
              row(
                "  before alignment",
                `mean ${s.tokens.before.mean}, median ${s.tokens.before.median}, p90 ${s.tokens.before.p90}, max ${s.tokens.before.max}`
              ),
              row(
                "  after alignment",
                `mean ${s.tokens.after.mean}, median ${s.tokens.after.median}, p90 ${s.tokens.after.p90}, max ${s.tokens.after.max}`
              ),
              row("  after / before", s.tokens.ratio === null ? "-" : s.tokens.ratio.toFixed(2)),
              ...s.tokens.histogram.map((b) =>
                row(
                  `  <= ${b.upTo ?? "more"}`,
                  `${"#".repeat(Math.min(30, b.before)).padEnd(30)} ${String(b.before).padStart(5)} before | ${String(b.after).padStart(5)} after`
                )
              )
            ]
          : []),
        ...(batches.jobs > 0
          ? [
              row(
                "batch jobs",
                `${batches.jobs} (${batches.open} open, ${batches.linesWaiting} requests waiting); ` +
                  `${batches.linesCompleted} lines answered, ${batches.linesFailed} failed or expired`
              ),
              ...Object.entries(batches.byStatus).map(([k, n]) => row(`  ${k}`, n))
            ]
          : []),
        "stages",
        ...Object.entries(s.stages).map(([k, n]) => row(`  ${k}`, n)),
        "imports",
        ...s.imports.map(
          (i) =>
            `  ${i.path}: ${i.rows} rows, ${i.problemsAdded} problems, ${i.rejected} rejected${i.done ? "" : " (interrupted: run the import again to finish)"}`
        )
      ]
      yield* stdout(lines.join("\n"))
    }).pipe(Effect.provide(existingStoreLayer(args.workspace, args.store, args.pipeline)))
).pipe(
  Command.withDescription(
    "Counts of problems, items per stage and per fate.\nExamples:\n  fastcot status\n  fastcot status --json\n  fastcot status --pipeline team.yaml   (the database its store: names)"
  )
)
