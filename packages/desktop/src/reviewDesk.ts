import {
  type Item,
  REJECT_REASONS,
  type ReviewAction,
  reviewItem,
  RunStore,
  type StoreError,
  type TokenCounter,
  type Verifier
} from "@fastcot/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { BadRequest } from "./badRequest.js"
import type { Channels, Reply } from "./contract.js"
import { itemDetailOf } from "./itemViews.js"

/** How long an item handed to a reviewer stays theirs without a decision. */
const HOLD_MS = 15 * 60_000

type Req<C extends keyof typeof Channels> = (typeof Channels)[C]["request"]["Type"]

/**
 * The review room's side of the backend: queues of kept items for named reviewers, each item
 * held for the reviewer it was handed to (and, on a shared store, leased by this process) until
 * they decide or the hold runs out, so that reviewers working at once never get the same item;
 * and their decisions, recorded through `reviewItem`.
 */
export const makeReviewDesk = () => {
  const held = new Map<string, { reviewer: string; until: number }>()

  const queue = (req: Req<"review.queue">): Effect.Effect<Reply<"review.queue">, StoreError, RunStore> =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const reviewer = req.reviewer.trim()
      const now = yield* Clock.currentTimeMillis
      // Holds that ran out are given back; items still held for this reviewer come first, then
      // new ones from the store, never one held for someone else.
      const mineHeld: Array<string> = []
      for (const [id, h] of held)
        if (h.until <= now) {
          held.delete(id)
          store.release([`review:${id}`])
        } else if (h.reviewer === reviewer) mineHeld.push(id)
      // On a store several processes share, a lease keeps other reviewers' servers off these items;
      // items another server holds are skipped and the queue is read on past them.
      const offered: Array<Item> = []
      const skipped: Array<string> = []
      const wanted = Math.max(0, req.limit - mineHeld.length)
      for (let read = 0; read < 5 && offered.length < wanted; read++) {
        const fresh = yield* store.reviewQueue({
          order: req.order,
          keptAs: req.keptAs,
          origin: req.origin,
          seed: req.seed,
          limit: wanted - offered.length,
          exclude: [...held.keys(), ...skipped, ...offered.map((i) => i.id)]
        })
        if (fresh.length === 0) break
        const leased = yield* store.claim(fresh.map((i) => `review:${i.id}`))
        for (const i of fresh)
          if (leased.has(`review:${i.id}`)) offered.push(i)
          else skipped.push(i.id)
      }
      const again = yield* Effect.forEach(mineHeld, (id) => store.getItem(id))
      const items = [
        ...again.flatMap((o) => (o._tag === "Some" && o.value.review === undefined ? [o.value] : [])),
        ...offered
      ]
      for (const i of items) held.set(i.id, { reviewer, until: now + HOLD_MS })
      const problems = new Map(
        (yield* store.getProblems(items.map((i) => i.problemId))).map((p) => [p.id as string, p])
      )
      const counts = yield* store.reviewCounts
      return {
        items: items.map((i) => itemDetailOf(i, problems.get(i.problemId))),
        waiting: counts.kept - counts.reviews.reviewed,
        mine: counts.reviews.byReviewer[reviewer] ?? 0,
        reasons: [...REJECT_REASONS]
      }
    })

  const decide = (
    req: Req<"review.decide">
  ): Effect.Effect<Reply<"review.decide">, BadRequest | StoreError, RunStore | Verifier | TokenCounter> =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const reviewer = req.reviewer.trim()
      const now = yield* Clock.currentTimeMillis
      const holder = held.get(req.id)
      if (holder !== undefined && holder.reviewer !== reviewer && holder.until > now)
        return yield* Effect.fail(new BadRequest({ message: `${req.id} is with ${holder.reviewer} for review` }))
      // An item this server has not handed out may be another server's (a lease on a shared store).
      if (holder === undefined || holder.until <= now) {
        const leased = yield* store.claim([`review:${req.id}`])
        if (!leased.has(`review:${req.id}`))
          return yield* Effect.fail(
            new BadRequest({ message: `${req.id} is with a reviewer on another fastcot ui server for review` })
          )
      }
      const action: ReviewAction =
        req.decision === "accept"
          ? { _tag: "accept" }
          : req.decision === "reject"
            ? { _tag: "reject", reason: req.reason ?? "" }
            : { _tag: "edit", reasoning: req.reasoning ?? "" }
      const item = yield* reviewItem(req.id, action, reviewer).pipe(
        Effect.catchTag("ReviewRefused", (e) => Effect.fail(new BadRequest({ message: e.message })))
      )
      held.delete(req.id)
      store.release([`review:${req.id}`])
      return itemDetailOf(item, Option.getOrUndefined(yield* store.getProblem(item.problemId)))
    })

  return { queue, decide }
}
