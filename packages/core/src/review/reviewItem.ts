import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { type Item, makeItem } from "../schema/item.js"
import { makeRound, type Review, type Verification } from "../schema/round.js"
import { Trace } from "../schema/trace.js"
import type { StoreError } from "../store/errors.js"
import { RunStore } from "../store/RunStore.js"
import { TokenCounter } from "../tokens/TokenCounter.js"
import { statedAnswer, Verifier } from "../verify/Verifier.js"

/** Reasons a reviewer picks from when rejecting a trace; free text is taken as well. */
export const REJECT_REASONS = [
  "wrong reasoning",
  "right answer, wrong reasoning",
  "too hard for the student",
  "too easy to teach anything",
  "garbled or unreadable",
  "leaks the answer"
] as const

/** What a reviewer does with a kept item. */
export type ReviewAction =
  | { readonly _tag: "accept" }
  | { readonly _tag: "reject"; readonly reason: string }
  /** The final trace as the reviewer wrote it; its answer is what it states unless given. */
  | { readonly _tag: "edit"; readonly reasoning: string; readonly finalAnswer?: string | undefined }

/** Why a review was refused; nothing is saved. `verification` is the failed check of an edit. */
export class ReviewRefused extends Data.TaggedError("ReviewRefused")<{
  readonly itemId: string
  readonly code: "no-such-item" | "not-kept" | "no-reviewer" | "no-reason" | "empty-edit" | "edit-fails-verification"
  readonly message: string
  readonly verification?: Verification | undefined
}> {}

/**
 * Records a person's decision on a kept item: accepted, rejected with a reason, or edited. Each
 * decision is a `review` round in the item's history (who, when, why) and the item's current
 * review; an edit's trace is checked against the problem's answer like any rewrite, becomes the
 * item's trace (origin `human`, tokens counted) and is refused, with the failed check, when it no
 * longer reaches the answer. Accepting an edited item keeps it `edited`. Export leaves rejected
 * items out and uses edited traces.
 */
export const reviewItem = (
  itemId: string,
  action: ReviewAction,
  reviewer: string
): Effect.Effect<Item, ReviewRefused | StoreError, RunStore | Verifier | TokenCounter> =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const refuse = (code: ReviewRefused["code"], message: string, verification?: Verification) =>
      new ReviewRefused({ itemId, code, message, verification })
    const who = reviewer.trim()
    if (who === "") return yield* refuse("no-reviewer", "a review needs the reviewer's name")
    const found = yield* store.getItem(itemId)
    if (Option.isNone(found)) return yield* refuse("no-such-item", `no item ${itemId} in this workspace`)
    const item = found.value
    if (item.fate !== "kept" || item.trace === undefined)
      return yield* refuse("not-kept", `item ${itemId} is ${item.fate}: only kept items are reviewed`)
    const at = new Date(yield* Clock.currentTimeMillis).toISOString()
    const round = { index: item.rounds.length, action: "review" as const, calls: [], startedAt: at, finishedAt: at }

    if (action._tag === "accept" || action._tag === "reject") {
      const reason = action._tag === "reject" ? action.reason.trim() : undefined
      if (reason === "") return yield* refuse("no-reason", "a rejection needs a reason")
      const review: Review = {
        decision: action._tag === "reject" ? "rejected" : item.trace.origin === "human" ? "edited" : "accepted",
        reviewer: who,
        reason,
        at
      }
      const reviewed = makeItem({
        ...item,
        review,
        rounds: [...item.rounds, makeRound({ ...round, review, note: reason })],
        updatedAt: at
      })
      yield* store.saveItem(reviewed)
      return reviewed
    }

    if (action.reasoning.trim() === "") return yield* refuse("empty-edit", "an edited trace cannot be empty")
    const problem = yield* store.getProblem(item.problemId)
    if (Option.isNone(problem)) return yield* refuse("no-such-item", `item ${itemId}'s problem is missing`)
    const counter = yield* TokenCounter
    const finalAnswer = action.finalAnswer ?? statedAnswer(problem.value, action.reasoning)
    const edited = new Trace({
      reasoning: action.reasoning,
      finalAnswer,
      origin: "human",
      tokens: {
        reasoning: counter.count(action.reasoning),
        answer: counter.count(finalAnswer ?? ""),
        tokenizer: counter.name
      }
    })
    const verification = yield* (yield* Verifier).verify(problem.value, edited)
    if (!verification.ok)
      return yield* refuse(
        "edit-fails-verification",
        `the edited trace no longer reaches the answer (${verification.reason}); nothing was saved`,
        verification
      )
    const review: Review = { decision: "edited", reviewer: who, at }
    const reviewed = makeItem({
      ...item,
      trace: edited,
      original: item.original ?? item.trace,
      review,
      rounds: [...item.rounds, makeRound({ ...round, input: item.trace, output: edited, verification, review })],
      updatedAt: at
    })
    yield* store.saveItem(reviewed)
    return reviewed
  })
