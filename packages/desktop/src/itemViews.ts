import { describeReason, type Item, type Problem, type Review } from "@fastcot/core"
import type { ItemDetail, ReviewView } from "./contract.js"

const reviewView = (review: Review | undefined): ReviewView | null =>
  review === undefined
    ? null
    : { decision: review.decision, reviewer: review.reviewer, reason: review.reason ?? null, at: review.at }

/** An item as the item and review views show it: the traces, each round, and the latest review. */
export const itemDetailOf = (item: Item, problem: Problem | undefined): ItemDetail => ({
  id: item.id,
  fate: item.fate,
  keptAs: item.keptAs ?? null,
  review: reviewView(item.review),
  reason: item.reason !== undefined ? describeReason(item.reason) : null,
  question: problem?.question ?? "",
  reference: problem?.answer ?? null,
  original: (item.original ?? item.trace)?.reasoning ?? null,
  final: item.trace?.reasoning ?? null,
  rounds: item.rounds.map((r) => ({
    index: r.index,
    action: r.action,
    verdict: r.verdict !== undefined ? { level: r.verdict.level, raw: r.verdict.raw } : null,
    verification: r.verification !== undefined ? { ok: r.verification.ok, reason: r.verification.reason } : null,
    before: r.input?.reasoning ?? null,
    after: r.output?.reasoning ?? null,
    calls: r.calls.map(
      (c) => `${c.role} ${c.model} ${c.promptTokens}+${c.completionTokens} tokens${c.cached ? " (cached)" : ""}`
    ),
    note: r.note ?? null,
    review: reviewView(r.review)
  }))
})
