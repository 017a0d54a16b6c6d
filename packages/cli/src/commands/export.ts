import { Command, Options } from "@effect/cli"
import {
  DEFAULT_SYSTEM_PROMPT,
  type ExportFormat,
  exportDataset,
  loadChatTemplate,
  parseTrainer,
  TRAINER_VERSIONS,
  workspacePaths
} from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { join, relative } from "node:path"
import { failed, usage } from "../failure.js"
import {
  jsonOption,
  stderr,
  stdout,
  existingStoreLayer,
  tokenLayer,
  existingWorkspaceOption,
  storeOption,
  pipelineStoreOption,
  choiceOption
} from "../shared.js"

const format = choiceOption("format", ["openai", "sharegpt", "alpaca", "preference"]).pipe(
  Options.withDefault("openai"),
  Options.withDescription(
    "openai (messages), sharegpt (conversations), alpaca (instruction/output), or preference (aligned trace chosen over the original, for DPO)."
  )
)
const trainer = Options.text("trainer").pipe(
  Options.optional,
  Options.withDescription(
    `Also write a ready-to-run config and launch script for LLaMA-Factory or ms-swift (DeepSpeed ZeRO-3, multi-node), for the version named: ${Object.keys(TRAINER_VERSIONS).join(", ")} (llamafactory and swift alone: the current release; ms-swift and LLaMA-Factory are read as swift and llamafactory).`
  )
)
const cutoffLen = Options.integer("cutoff-len").pipe(
  Options.optional,
  Options.withDescription(
    "The longest example (tokens) the trainer keeps (default: the longest exported example, prompt included, rounded up); the export warns about every example over it."
  )
)
const baseModel = Options.text("base-model").pipe(
  Options.withDefault("Qwen/Qwen2.5-7B"),
  Options.withDescription("The model the trainer config fine-tunes.")
)
const out = Options.text("out").pipe(
  Options.optional,
  Options.withDescription(
    "The training split's JSONL file, or a folder for train.jsonl (an existing folder, or a new name without an extension; default: WORKSPACE/export/FORMAT/train.jsonl)."
  )
)
const systemPrompt = Options.text("system-prompt").pipe(
  Options.withDefault(DEFAULT_SYSTEM_PROMPT),
  Options.withDescription('The system turn of every example ("" for none).')
)
const chatTemplate = Options.text("chat-template").pipe(
  Options.optional,
  Options.withDescription(
    "Check every example against the student's chat template (a model folder, its tokenizer_config.json, or a .jinja file): the export fails if a template would drop part of an assistant turn."
  )
)
const valFraction = Options.float("val-fraction").pipe(
  Options.withDefault(0),
  Options.withDescription("Fraction held out for validation, in [0, 1).")
)

const reviewedOnly = Options.boolean("reviewed-only").pipe(
  Options.withDescription("Only items a person accepted or edited (rejected items are always left out).")
)

export const exportCommand = Command.make(
  "export",
  {
    format,
    out,
    systemPrompt,
    valFraction,
    trainer,
    baseModel,
    cutoffLen,
    chatTemplate,
    reviewedOnly,
    workspace: existingWorkspaceOption,
    store: storeOption,
    pipeline: pipelineStoreOption,
    json: jsonOption
  },
  (args) =>
    Effect.gen(function* () {
      if (!(args.valFraction >= 0 && args.valFraction < 1))
        return yield* usage(`--val-fraction must be in [0, 1), got ${args.valFraction}`)
      const version = Option.isSome(args.trainer) ? parseTrainer(args.trainer.value) : undefined
      if (version !== undefined && Either.isLeft(version)) return yield* usage(`--trainer: ${version.left}`)
      const limit = Option.getOrUndefined(args.cutoffLen)
      if (limit !== undefined && limit < 64) return yield* usage(`--cutoff-len must be at least 64, got ${limit}`)
      const file = Option.getOrElse(args.out, () =>
        join(workspacePaths(args.workspace).exports, args.format, "train.jsonl")
      )
      const template = Option.isSome(args.chatTemplate)
        ? yield* loadChatTemplate(args.chatTemplate.value).pipe(
            Effect.catchTag("ChatTemplateError", (e) => usage(`--chat-template ${e.file}: ${e.message}`))
          )
        : undefined
      const report = yield* exportDataset({
        chatTemplate: template,
        format: args.format as ExportFormat,
        out: file,
        systemPrompt: args.systemPrompt,
        valFraction: args.valFraction,
        trainer: version !== undefined && Either.isRight(version) ? version.right : undefined,
        baseModel: args.baseModel,
        cutoffLen: limit,
        reviewedOnly: args.reviewedOnly
      }).pipe(Effect.catchTag("ExportError", (e) => failed(`${e.file}: ${e.message}`)))
      const check = report.templateCheck
      const cut = report.cutoff
      const overWarning =
        cut !== undefined && cut.over > 0
          ? `warn: ${cut.over} examples are longer than the trainer's limit of ${cut.cutoffLen} tokens (the longest ${cut.longest}: ${cut.examples.map((e) => `${e.itemId} ${e.tokens}`).join(", ")}); ` +
            "LLaMA-Factory would cut their answers off and ms-swift drop them. Raise --cutoff-len, or leave it out to fit them all."
          : undefined
      if (overWarning !== undefined) yield* stderr(overWarning)
      // The split is a hash of each item's id: on few items a large fraction may take them all.
      if (report.counts.train === 0 && report.counts.validation > 0)
        yield* stderr(
          `warn: the validation split took all ${report.counts.validation} kept items and left the training split empty (--val-fraction ${args.valFraction}); a trainer given it has nothing to learn from. Lower --val-fraction, or export more items.`
        )
      const trainerLoss =
        report.trainerTemplate !== undefined && report.trainerTemplate.lossy > 0 ? report.trainerTemplate : undefined
      const lossy =
        check !== undefined && check.lossy > 0
          ? failed(
              `the chat template (${check.template}) would drop part of the assistant turn in ${check.lossy} of ${check.checked} examples, e.g. ` +
                check.examples.map((e) => `${e.itemId}: ${e.reason}`).join("; ") +
                ". A trainer applying it would learn from less than the exported text. The files are written; train with a template that keeps the whole turn."
            )
          : undefined
      if (args.json) {
        yield* stdout(JSON.stringify(report))
        return lossy === undefined ? undefined : yield* lossy
      }
      const rel = (p: string) => relative(process.cwd(), p) || p
      yield* stdout(
        [
          `exported ${report.counts.train + report.counts.validation} kept items (${report.counts.train} train, ${report.counts.validation} validation) as ${report.format}`,
          `  train       ${rel(report.files.train)}`,
          ...(report.files.validation !== undefined ? [`  validation  ${rel(report.files.validation)}`] : []),
          `  card        ${rel(report.files.card)}`,
          `  llamafactory ${rel(report.files.datasetInfo)}`,
          ...report.files.trainer.map((f) => `  trainer     ${rel(f)}`),
          ...(cut !== undefined
            ? [
                `  cutoff      ${cut.cutoffLen} tokens (${cut.measured ? `the longest example, ${cut.longest} tokens, rounded up` : "--cutoff-len"})`
              ]
            : []),
          ...(report.review.accepted + report.review.edited + report.review.rejected > 0 || report.review.reviewedOnly
            ? [
                `  review      ${report.review.accepted} accepted, ${report.review.edited} edited (the person's trace), ${report.review.rejected} rejected and left out, ${report.review.unreviewed} unreviewed${report.review.reviewedOnly ? " and left out (--reviewed-only)" : ""}`
              ]
            : []),
          ...(report.pairs !== undefined
            ? [
                `  pairs       ${report.pairs.pairs} preference pairs from ${report.pairs.items} items (the final medium trace over each easy or hard one)`
              ]
            : []),
          ...(report.trainerTemplate !== undefined && report.trainerTemplate.lossy === 0
            ? [
                `  template    ${report.trainerTemplate.template}: all ${report.trainerTemplate.checked} examples reach the trainer whole`
              ]
            : []),
          `  assistant tokens (${report.tokenizer}): mean ${report.tokens.mean}, median ${report.tokens.median}, max ${report.tokens.max}`,
          ...(check !== undefined && check.lossy === 0
            ? [`  chat template ${rel(check.template)}: all ${check.checked} examples keep their whole assistant turn`]
            : [])
        ].join("\n")
      )
      if (lossy !== undefined) return yield* lossy
      if (trainerLoss !== undefined) {
        return yield* failed(
          `the trainer's ${trainerLoss.template} template would not train ${trainerLoss.lossy} of ${trainerLoss.checked} examples as exported, e.g. ` +
            trainerLoss.examples.map((e) => `${e.itemId}: ${e.reason}`).join("; ")
        )
      }
      if (report.counts.train + report.counts.validation === 0) {
        yield* stdout("  no item is kept yet: run the pipeline (fastcot run) first")
      }
    }).pipe(Effect.provide(Layer.merge(existingStoreLayer(args.workspace, args.store, args.pipeline), tokenLayer)))
).pipe(
  Command.withDescription(
    "Write the kept items as SFT JSONL with a dataset card and a LLaMA-Factory dataset_info.json.\n" +
      "Examples:\n  fastcot export --format sharegpt --val-fraction 0.05\n  fastcot export --trainer llamafactory --base-model Qwen/Qwen2.5-7B\n  fastcot export --format preference --trainer swift@4\n" +
      '  fastcot export --trainer swift@3 --base-model Qwen/Qwen3-8B --cutoff-len 8192\n  fastcot export --out data/sft.jsonl --system-prompt ""\n  fastcot export --reviewed-only'
  )
)
