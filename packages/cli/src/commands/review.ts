import { Args, Command, Options } from "@effect/cli"
import { REJECT_REASONS, type ReviewAction, reviewItem } from "@fastcot/core"
import { makeSandbox, verifierFor } from "@fastcot/evaluator"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { readFile } from "node:fs/promises"
import { userInfo } from "node:os"
import { failed, usage } from "../failure.js"
import {
  existingStoreLayer,
  jsonOption,
  stderr,
  stdout,
  storeOption,
  pipelineStoreOption,
  tokenLayer,
  existingWorkspaceOption
} from "../shared.js"

const item = Args.text({ name: "item" }).pipe(
  Args.withDescription("The kept item's id (see fastcot inspect --fate kept).")
)
const accept = Options.boolean("accept").pipe(Options.withDescription("Keep the item as it is."))
const reject = Options.text("reject").pipe(
  Options.optional,
  Options.withDescription(
    `Leave the item out of exports, for this reason (e.g. ${REJECT_REASONS.map((r) => `"${r}"`).join(", ")}).`
  )
)
const edit = Options.text("edit").pipe(
  Options.optional,
  Options.withDescription(
    "Replace the final trace with this file's text (- reads standard input); it must still reach the reference answer."
  )
)
const answer = Options.text("answer").pipe(
  Options.optional,
  Options.withDescription("The edited trace's final answer, when its text does not state it (e.g. \\boxed{12}).")
)
const reviewer = Options.text("reviewer").pipe(
  Options.optional,
  Options.withDescription("Who decides (default: $FASTCOT_REVIEWER, else the system user name).")
)

const readText = (file: string) =>
  Effect.tryPromise({
    try: async () => {
      if (file !== "-") return readFile(file, "utf8")
      const chunks: Array<Buffer> = []
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
      return Buffer.concat(chunks).toString("utf8")
    },
    catch: (e) => (e instanceof Error ? e.message : String(e))
  })

export const reviewCommand = Command.make(
  "review",
  {
    item,
    accept,
    reject,
    edit,
    answer,
    reviewer,
    workspace: existingWorkspaceOption,
    store: storeOption,
    pipeline: pipelineStoreOption,
    json: jsonOption
  },
  (args) =>
    Effect.gen(function* () {
      const chosen = [args.accept, Option.isSome(args.reject), Option.isSome(args.edit)].filter(Boolean).length
      if (chosen !== 1) return yield* usage("give exactly one of --accept, --reject REASON or --edit FILE")
      const who = Option.getOrElse(args.reviewer, () => process.env["FASTCOT_REVIEWER"] ?? userInfo().username)
      const action: ReviewAction = args.accept
        ? { _tag: "accept" }
        : Option.isSome(args.reject)
          ? { _tag: "reject", reason: args.reject.value }
          : {
              _tag: "edit",
              reasoning: (yield* readText(Option.getOrThrow(args.edit)).pipe(
                Effect.catchAll((message) => usage(`--edit ${Option.getOrThrow(args.edit)}: ${message}`))
              )).trim(),
              finalAnswer: Option.getOrUndefined(args.answer)
            }
      const sandbox = makeSandbox()
      if (action._tag === "edit" && sandbox.warning !== undefined)
        yield* stderr(`warn: code sandbox: ${sandbox.warning}`)
      const reviewed = yield* reviewItem(args.item, action, who).pipe(
        Effect.provide(verifierFor(sandbox)),
        Effect.catchTag("ReviewRefused", (e) =>
          e.code === "edit-fails-verification" || e.code === "not-kept" || e.code === "no-such-item"
            ? failed(e.message)
            : usage(e.message)
        )
      )
      if (args.json) return yield* stdout(JSON.stringify({ id: reviewed.id, review: reviewed.review }))
      const review = reviewed.review!
      yield* stdout(
        `${reviewed.id}: ${review.decision} by ${review.reviewer}${review.reason !== undefined ? ` (${review.reason})` : ""}` +
          (review.decision === "edited" && action._tag === "edit"
            ? `; the edited trace reaches the reference answer (${reviewed.rounds.at(-1)?.verification?.reason ?? "verified"})`
            : "")
      )
    }).pipe(Effect.provide(Layer.merge(existingStoreLayer(args.workspace, args.store, args.pipeline), tokenLayer)))
).pipe(
  Command.withDescription(
    "Record a person's decision on a kept item: accept it, reject it with a reason (exports leave it out), or edit its final trace " +
      "(checked against the reference answer; exports use it). Each decision is a round in the item's history, with who and when.\n" +
      'Examples:\n  fastcot review i_3fa2c1d0e9b8a7f6 --accept\n  fastcot review i_3fa2c1d0e9b8a7f6 --reject "right answer, wrong reasoning"\n' +
      "  fastcot review i_3fa2c1d0e9b8a7f6 --edit fixed.txt --reviewer ana"
  )
)
