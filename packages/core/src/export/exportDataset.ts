import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { type FileHandle, open, rename, rm, stat, writeFile } from "node:fs/promises"
import { ensureDir } from "../util/dirs.js"
import { basename, dirname, join } from "node:path"
import type { Item } from "../schema/item.js"
import type { Problem } from "../schema/problem.js"
import { type ChatMessage, SftSample, type Split } from "../schema/sft.js"
import type { Trace } from "../schema/trace.js"
import { DEFAULT_SYSTEM_PROMPT, problemPrompt } from "../recipe/prompts.js"
import { RunStore } from "../store/RunStore.js"
import type { StoreError } from "../store/errors.js"
import { TokenCounter } from "../tokens/TokenCounter.js"
import { type LengthStats, lengthStats } from "../util/lengthStats.js"
import { sha256Hex } from "../util/hash.js"
import { chatTemplateFor, TRAINER_VERSIONS, trainerFiles, type TrainerVersion } from "./trainerConfigs.js"
import { trainerTemplateLoss } from "./trainerTemplates.js"
import { type ChatTemplate, templateLoss } from "../chat/chatTemplateCheck.js"
import { ExportError } from "./exportError.js"

export const ExportFormats = ["openai", "sharegpt", "alpaca", "preference"] as const
export type ExportFormat = (typeof ExportFormats)[number]

export { ExportError }

export interface ExportOptions {
  readonly format: ExportFormat
  /** The training split's file; the validation split, card and dataset_info.json go beside it. */
  readonly out: string
  readonly systemPrompt?: string | undefined
  /** Fraction of items in the validation split, chosen by a hash of the item id (deterministic). */
  readonly valFraction?: number | undefined
  /** Also write a ready-to-run training config and launch script for this trainer version (see `parseTrainer`). */
  readonly trainer?: TrainerVersion | undefined
  readonly baseModel?: string | undefined
  /**
   * The longest example (tokens) the trainer keeps. By default the longest exported example,
   * prompt included, rounded up to a multiple of 512; one set lower is used, and the export warns
   * with the count of examples over it.
   */
  readonly cutoffLen?: number | undefined
  /** Renders every sample with the student's chat template and reports any whose assistant turn does not survive it whole. */
  readonly chatTemplate?: ChatTemplate | undefined
  /** Only items a person accepted or edited (rejected items are always left out). */
  readonly reviewedOnly?: boolean | undefined
}

/** What people's reviews did to an export: kept items by their latest decision. */
export interface ReviewReport {
  readonly accepted: number
  readonly edited: number
  /** Left out. */
  readonly rejected: number
  /** Exported unless `reviewedOnly`, then left out. */
  readonly unreviewed: number
  readonly reviewedOnly: boolean
}

/** The chat-template check of an export: how many samples were rendered and which lost part of their assistant turn. */
export interface TemplateCheckReport {
  readonly template: string
  readonly checked: number
  readonly lossy: number
  /** The first few, with the reason. */
  readonly examples: ReadonlyArray<{ readonly itemId: string; readonly reason: string }>
}

/** Examples longer than the trainer's limit: the trainer would cut (LLaMA-Factory) or drop (ms-swift) them. */
export interface CutoffReport {
  readonly cutoffLen: number
  /** Whether the limit was measured from the data (else the user set it). */
  readonly measured: boolean
  readonly longest: number
  readonly over: number
  readonly examples: ReadonlyArray<{ readonly itemId: string; readonly tokens: number }>
}

/** The trainer's own rendering of every example (its chat template), and those whose reasoning would not survive it. */
export interface TrainerTemplateReport {
  readonly template: string
  readonly checked: number
  readonly lossy: number
  readonly examples: ReadonlyArray<{ readonly itemId: string; readonly reason: string }>
}

export interface ExportReport {
  readonly format: ExportFormat
  readonly files: {
    readonly train: string
    readonly validation?: string | undefined
    readonly card: string
    readonly datasetInfo: string
    readonly trainer: ReadonlyArray<string>
  }
  readonly counts: { readonly train: number; readonly validation: number }
  readonly tokens: LengthStats
  readonly tokenizer: string
  readonly templateCheck?: TemplateCheckReport | undefined
  /** With a trainer: the token limit written in its config, and what is over it. */
  readonly cutoff?: CutoffReport | undefined
  readonly trainerTemplate?: TrainerTemplateReport | undefined
  /** Preference pairs: how many items gave how many pairs. */
  readonly pairs?: { readonly items: number; readonly pairs: number } | undefined
  readonly review: ReviewReport
}

const LETTER = /^\(?([A-Z])\)?\.?$/

/**
 * The assistant turn: the reasoning, ending with the final answer. A bare final answer is stated
 * the way the evaluator's graders read it (`\boxed{}`); one already at the end of the reasoning
 * is not repeated.
 */
export const assistantContent = (problem: Problem, trace: Trace): string => {
  const reasoning = trace.reasoning.trim()
  const final = trace.finalAnswer?.trim()
  if (final === undefined || final === "") return reasoning
  if (reasoning.endsWith(final) || reasoning.slice(-400).includes(`\\boxed{${final}}`)) return reasoning
  // A sentence ("The answer is 2.") is kept as written; a bare expression is boxed.
  const sentence = /[.!?]$/.test(final) || (final.match(/[A-Za-z]{2,}/g)?.length ?? 0) >= 3
  const bare = !sentence && !final.includes("\n") && !final.includes("\\boxed") && final.length <= 200
  if (bare && problem.domain !== "code") {
    const letter = LETTER.exec(final)
    const stated = problem.choices !== undefined && letter !== null ? letter[1]! : final
    return `${reasoning}\n\nThe final answer is $\\boxed{${stated}}$.`
  }
  return `${reasoning}\n\n${final}`
}

/**
 * The traces of an item's history that the judge rated easy or hard and that are not its final
 * trace: the losing sides of its preference pairs (distinct by their reasoning, in history order).
 */
export const rejectedInHistory = (item: Item): Array<Trace> => {
  const final = item.trace?.reasoning
  const out: Array<Trace> = []
  const seen = new Set<string>()
  for (const r of item.rounds) {
    if (r.action !== "judge" || r.input === undefined || r.verdict === undefined) continue
    if (r.verdict.level !== "easy" && r.verdict.level !== "hard") continue
    if (r.input.reasoning === final || seen.has(r.input.reasoning)) continue
    seen.add(r.input.reasoning)
    out.push(r.input)
  }
  // Items from before judge rounds were recorded: the trace the item started from.
  if (out.length === 0 && item.original !== undefined && item.original.reasoning !== final) out.push(item.original)
  return out
}

export const toSftSample = (problem: Problem, item: Item, systemPrompt: string, valFraction: number): SftSample => {
  const trace = item.trace!
  const split: Split =
    valFraction > 0 && parseInt(sha256Hex(item.id).slice(0, 8), 16) / 0x1_0000_0000 < valFraction
      ? "validation"
      : "train"
  const messages: Array<ChatMessage> = []
  if (systemPrompt !== "") messages.push({ role: "system", content: systemPrompt })
  // The user turn the student will see at evaluation time: lettered options for multiple
  // choice, the boxed-answer instruction for math, the program request for code.
  messages.push({ role: "user", content: problemPrompt(problem) })
  messages.push({ role: "assistant", content: assistantContent(problem, trace) })
  return new SftSample({ itemId: item.id, problemId: problem.id, split, messages })
}

/**
 * One record in the chosen trainer-facing format; `rejected` is the losing assistant turn of a
 * preference pair. Preference records are in each trainer's own layout: ms-swift's `messages`
 * ending in the chosen turn plus `rejected_response`, LLaMA-Factory's ranking conversations.
 */
export const formatRecord = (
  format: ExportFormat,
  sample: SftSample,
  rejected?: string,
  trainer?: TrainerVersion
): unknown => {
  const system = sample.messages.find((m) => m.role === "system")?.content
  const turns = sample.messages.filter((m) => m.role !== "system")
  switch (format) {
    case "preference":
      if (trainer !== undefined && TRAINER_VERSIONS[trainer].trainer === "swift")
        return { messages: sample.messages, rejected_response: rejected ?? "" }
      return {
        ...(system !== undefined ? { system } : {}),
        conversations: turns.filter((m) => m.role === "user").map((m) => ({ from: "human", value: m.content })),
        chosen: { from: "gpt", value: turns.find((m) => m.role === "assistant")?.content ?? "" },
        rejected: { from: "gpt", value: rejected ?? "" }
      }
    case "openai":
      return { messages: sample.messages }
    case "sharegpt":
      return {
        ...(system !== undefined ? { system } : {}),
        conversations: turns.map((m) => ({ from: m.role === "user" ? "human" : "gpt", value: m.content }))
      }
    case "alpaca":
      return {
        instruction: turns.find((m) => m.role === "user")?.content ?? "",
        input: "",
        output: turns.find((m) => m.role === "assistant")?.content ?? "",
        ...(system !== undefined ? { system } : {})
      }
  }
}

/**
 * LLaMA-Factory's dataset_info.json entry for a file in this format. The `system` column is
 * declared only when the rows have one: LLaMA-Factory reads a declared column from every row.
 */
export const datasetInfoEntry = (
  format: ExportFormat,
  fileName: string,
  withSystem = true
): Record<string, unknown> => {
  const entry = datasetInfoBase(format, fileName)
  if (withSystem) return entry
  const columns = { ...(entry["columns"] as Record<string, string>) }
  delete columns["system"]
  return { ...entry, columns }
}

const datasetInfoBase = (format: ExportFormat, fileName: string): Record<string, unknown> => {
  switch (format) {
    case "openai":
      return {
        file_name: fileName,
        formatting: "sharegpt",
        columns: { messages: "messages" },
        tags: {
          role_tag: "role",
          content_tag: "content",
          user_tag: "user",
          assistant_tag: "assistant",
          system_tag: "system"
        }
      }
    case "sharegpt":
      return { file_name: fileName, formatting: "sharegpt", columns: { messages: "conversations", system: "system" } }
    case "alpaca":
      return {
        file_name: fileName,
        columns: { prompt: "instruction", query: "input", response: "output", system: "system" }
      }
    case "preference":
      return {
        file_name: fileName,
        formatting: "sharegpt",
        ranking: true,
        columns: { messages: "conversations", chosen: "chosen", rejected: "rejected", system: "system" }
      }
  }
}

const validationPath = (train: string) =>
  train.endsWith(".jsonl") ? train.slice(0, -".jsonl".length) + ".validation.jsonl" : train + ".validation"

/**
 * `--out` as given: a folder for `train.jsonl` in it (one that exists, a path ending in a
 * separator, or a new path whose name has no extension, as `--out data` means), else the file.
 */
const trainFileOf = async (out: string): Promise<string> => {
  if (/[/\\]$/.test(out)) return join(out, "train.jsonl")
  const found = await stat(out).catch(() => undefined)
  const folder = found === undefined ? !basename(out).includes(".") : found.isDirectory()
  return folder ? join(out, "train.jsonl") : out
}

/**
 * Writes the kept items as SFT JSONL (train and validation splits), a dataset card and a
 * LLaMA-Factory dataset_info.json. Files are written beside their final names and renamed into
 * place, so a crash never leaves a half-written dataset where a trainer would read it.
 */
export const exportDataset = (
  options: ExportOptions
): Effect.Effect<ExportReport, ExportError | StoreError, RunStore | TokenCounter> =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const counter = yield* TokenCounter
    const systemPrompt = options.systemPrompt ?? DEFAULT_SYSTEM_PROMPT
    const valFraction = options.valFraction ?? 0
    if (!(valFraction >= 0 && valFraction < 1)) {
      return yield* new ExportError({
        file: options.out,
        message: `--val-fraction must be in [0, 1), got ${valFraction}`
      })
    }
    const io = <A>(file: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (e) => new ExportError({ file, message: (e as Error).message }) })
    const trainFile = yield* io(options.out, () => trainFileOf(options.out))
    const valFile = validationPath(trainFile)
    const dir = dirname(trainFile)
    yield* io(dir, () =>
      ensureDir(dir).catch((e: NodeJS.ErrnoException) => {
        throw e.code === "ENOTDIR" ? new Error("a file is in the way: the output must go in a folder") : e
      })
    )
    // Each split is written to a temporary file beside its final name and renamed into place at
    // the end; on any failure or interruption the files are closed and the temporary ones removed.
    const tmp = `.tmp-${process.pid}`
    const scratch = (path: string) =>
      Effect.acquireRelease(
        io(path, () => open(path + tmp, "w")),
        (handle: FileHandle) => Effect.promise(() => handle.close().catch(() => undefined))
      )
    const counts = { train: 0, validation: 0 }
    const lengths: Array<number> = []
    // Whole examples (system, prompt and answer), as the trainer counts them against its limit.
    const sequences: Array<{ itemId: string; tokens: number }> = []
    const template = options.trainer !== undefined ? chatTemplateFor(options.baseModel ?? "Qwen/Qwen2.5-7B") : undefined
    const trainerCheck = { checked: 0, lossy: 0, examples: [] as Array<{ itemId: string; reason: string }> }
    const pairs = { items: 0, pairs: 0 }
    const sequenceTokens = (messages: ReadonlyArray<ChatMessage>) =>
      messages.reduce((n, m) => n + counter.count(m.content) + 8, 2)
    const keptAs: Record<string, number> = {}
    const domains: Record<string, number> = {}
    const review = { accepted: 0, edited: 0, rejected: 0, unreviewed: 0, reviewedOnly: options.reviewedOnly === true }
    const check = { checked: 0, lossy: 0, examples: [] as Array<{ itemId: string; reason: string }> }
    const written = Effect.scoped(
      Effect.gen(function* () {
        const train = yield* scratch(trainFile)
        const validation = yield* scratch(valFile)
        let afterId: string | undefined
        for (;;) {
          const page = yield* store.listItems({ fate: "kept", afterId, limit: 500 })
          if (page.length === 0) break
          afterId = page[page.length - 1]!.id
          const problems = new Map(
            (yield* store.getProblems([...new Set(page.map((i) => i.problemId))])).map((p) => [p.id as string, p])
          )
          // One write per split per page.
          const lines = { train: "", validation: "" }
          for (const item of page) {
            const problem = problems.get(item.problemId)
            if (problem === undefined || item.trace === undefined) continue
            // A person's decision wins: rejected items stay out, edited ones carry the person's trace.
            review[item.review?.decision ?? "unreviewed"]++
            if (item.review?.decision === "rejected" || (review.reviewedOnly && item.review === undefined)) continue
            const sample = toSftSample(problem, item, systemPrompt, valFraction)
            // Preference pairs: the final (medium) trace chosen over each trace of the item's history
            // that the judge rated easy or hard (the one it started from, and rewrites that missed).
            const rejectedTraces = options.format === "preference" ? rejectedInHistory(item) : []
            if (options.format === "preference" && rejectedTraces.length === 0) continue
            const records =
              options.format === "preference"
                ? rejectedTraces.map((t) =>
                    formatRecord("preference", sample, assistantContent(problem, t), options.trainer)
                  )
                : [formatRecord(options.format, sample)]
            if (options.format === "preference") {
              pairs.items++
              pairs.pairs += records.length
            }
            for (const record of records) lines[sample.split] += JSON.stringify(record) + "\n"
            if (options.chatTemplate !== undefined) {
              check.checked++
              const loss = templateLoss(options.chatTemplate, sample.messages)
              if (loss !== undefined && check.lossy++ < 3) check.examples.push({ itemId: item.id, reason: loss })
            }
            if (template !== undefined) {
              trainerCheck.checked++
              const loss = trainerTemplateLoss(template, sample.messages)
              if (loss !== undefined && trainerCheck.lossy++ < 3)
                trainerCheck.examples.push({ itemId: item.id, reason: loss })
            }
            const rejectedLongest = rejectedTraces.reduce(
              (n, t) => Math.max(n, counter.count(assistantContent(problem, t))),
              0
            )
            sequences.push({
              itemId: item.id,
              tokens:
                sequenceTokens(sample.messages) +
                Math.max(0, rejectedLongest - counter.count(sample.messages[sample.messages.length - 1]!.content))
            })
            counts[sample.split] += records.length
            lengths.push(counter.count(sample.messages[sample.messages.length - 1]!.content))
            keptAs[item.keptAs ?? "unknown"] = (keptAs[item.keptAs ?? "unknown"] ?? 0) + 1
            domains[problem.domain] = (domains[problem.domain] ?? 0) + 1
          }
          if (lines.train !== "") yield* io(trainFile, () => train.writeFile(lines.train))
          if (lines.validation !== "") yield* io(valFile, () => validation.writeFile(lines.validation))
        }
        yield* io(trainFile, () => train.sync())
        yield* io(valFile, () => validation.sync())
      })
    )
    yield* written.pipe(
      Effect.zipRight(io(trainFile, () => rename(trainFile + tmp, trainFile))),
      // Without a validation split, one that an earlier export left at this path goes too: it
      // would sit beside the new files as if it belonged to them.
      Effect.zipRight(
        io(valFile, () =>
          counts.validation > 0
            ? rename(valFile + tmp, valFile)
            : Promise.all([rm(valFile + tmp), rm(valFile, { force: true })]).then(() => undefined)
        )
      ),
      Effect.onExit((exit) =>
        Exit.isSuccess(exit)
          ? Effect.void
          : Effect.promise(() =>
              Promise.all([rm(trainFile + tmp, { force: true }), rm(valFile + tmp, { force: true })])
            )
      )
    )
    const hasValidation = counts.validation > 0

    const withSystem = systemPrompt !== ""
    const datasetInfo: Record<string, unknown> = {
      fastcot_train: datasetInfoEntry(options.format, basename(trainFile), withSystem)
    }
    if (hasValidation)
      datasetInfo["fastcot_validation"] = datasetInfoEntry(options.format, basename(valFile), withSystem)
    const infoFile = join(dir, "dataset_info.json")
    yield* io(infoFile, () => writeFile(infoFile, JSON.stringify(datasetInfo, null, 2) + "\n"))

    const trainerFilesWritten: Array<string> = []
    const longest = sequences.reduce((n, s) => Math.max(n, s.tokens), 0)
    const cutoffLen = options.cutoffLen ?? Math.max(512, Math.ceil(longest / 512) * 512)
    const overLimit = sequences.filter((s) => s.tokens > cutoffLen).sort((a, b) => b.tokens - a.tokens)
    const cutoff: CutoffReport | undefined =
      options.trainer === undefined
        ? undefined
        : {
            cutoffLen,
            measured: options.cutoffLen === undefined,
            longest,
            over: overLimit.length,
            examples: overLimit.slice(0, 5)
          }
    if (options.trainer !== undefined) {
      const files = trainerFiles({
        version: options.trainer,
        trainFile: basename(trainFile),
        validationFile: hasValidation ? basename(valFile) : undefined,
        baseModel: options.baseModel ?? "Qwen/Qwen2.5-7B",
        stage: options.format === "preference" ? "dpo" : "sft",
        cutoffLen
      })
      for (const [name, body] of Object.entries(files)) {
        const path = join(dir, name)
        yield* io(path, () => writeFile(path, body, { mode: name.endsWith(".sh") ? 0o755 : 0o644 }))
        trainerFilesWritten.push(path)
      }
    }

    const tokens = lengthStats(lengths)
    const cardFile = join(dir, "README.md")
    const templateCheck =
      options.chatTemplate === undefined ? undefined : { template: options.chatTemplate.source, ...check }
    const trainerTemplate = template === undefined ? undefined : { template: template.llamafactory, ...trainerCheck }
    const card = datasetCard({
      format: options.format,
      trainFile,
      valFile: hasValidation ? valFile : undefined,
      counts,
      tokens,
      tokenizer: counter.name,
      keptAs,
      domains,
      systemPrompt,
      valFraction,
      templateCheck,
      pairs: options.format === "preference" ? pairs : undefined,
      cutoff,
      review
    })
    yield* io(cardFile, () => writeFile(cardFile, card))
    return {
      format: options.format,
      files: {
        train: trainFile,
        validation: hasValidation ? valFile : undefined,
        card: cardFile,
        datasetInfo: infoFile,
        trainer: trainerFilesWritten
      },
      counts,
      tokens,
      tokenizer: counter.name,
      templateCheck,
      cutoff,
      trainerTemplate,
      pairs: options.format === "preference" ? pairs : undefined,
      review
    } satisfies ExportReport
  })

/** The card's account of human review: how many kept items people accepted, edited and rejected. */
const reviewSection = (r: ReviewReport) => {
  const reviewed = r.accepted + r.edited + r.rejected
  if (reviewed === 0 && !r.reviewedOnly) return ""
  return `## Human review

${reviewed} of the ${reviewed + r.unreviewed} kept items were reviewed by a person: ${r.accepted} accepted, ${r.edited} edited
(the person's trace is the example, checked against the reference answer), ${r.rejected} rejected and left out.
${r.reviewedOnly ? `Only reviewed items are exported: ${r.unreviewed} unreviewed items were left out.` : `${r.unreviewed} items were not reviewed.`}

`
}

const table = (rows: Record<string, number>) =>
  Object.entries(rows)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `| ${k} | ${v} |`)
    .join("\n")

const datasetCard = (c: {
  format: ExportFormat
  trainFile: string
  valFile: string | undefined
  counts: { train: number; validation: number }
  tokens: LengthStats
  tokenizer: string
  keptAs: Record<string, number>
  domains: Record<string, number>
  systemPrompt: string
  valFraction: number
  templateCheck?: TemplateCheckReport | undefined
  pairs?: { readonly items: number; readonly pairs: number } | undefined
  cutoff?: CutoffReport | undefined
  review: ReviewReport
}) => `---
task_categories:
- text-generation
tags:
- chain-of-thought
- fast-thinking
- sft
---
# fastcot SFT dataset

Fast-thinking chain-of-thought data, aligned to a small model's cognition (judged easy / medium /
hard; easy traces expanded, hard ones simplified, every kept trace rated medium in the end), made
by fastcot.

| split | file | examples |
|---|---|---|
| train | \`${basename(c.trainFile)}\` | ${c.counts.train} |
${c.valFile !== undefined ? `| validation | \`${basename(c.valFile)}\` | ${c.counts.validation} |\n` : ""}
Format: **${c.format}** (see \`dataset_info.json\` for LLaMA-Factory). Validation fraction: ${c.valFraction}
(chosen by a hash of each item's id, so the split is the same on every export).

## How each example was kept

| part | examples |
|---|---|
${table(c.keptAs)}

${reviewSection(c.review)}## Domains

| domain | examples |
|---|---|
${table(c.domains)}

## Assistant-turn length (tokens, ${c.tokenizer} tokenizer)

| count | min | mean | median | p90 | max | total |
|---|---|---|---|---|---|---|
| ${c.tokens.count} | ${c.tokens.min} | ${c.tokens.mean} | ${c.tokens.median} | ${c.tokens.p90} | ${c.tokens.max} | ${c.tokens.total} |

${
  c.pairs === undefined
    ? ""
    : `## How the preference pairs were made

Each pair holds one item's final trace, which the judge rated **medium**, as *chosen*, against a
trace of the same item's history that the judge rated **easy** or **hard** as *rejected*: the one it
started from, and any rewrite of it that was still easy or hard. Every pair reaches the reference
answer on both sides (each rejected trace was verified before it was judged). ${c.pairs.pairs} pairs from ${c.pairs.items} items.

`
}${
  c.cutoff === undefined
    ? ""
    : `## Length limit for training

The trainer configs keep examples up to **${c.cutoff.cutoffLen} tokens** (prompt and answer; ${c.cutoff.measured ? `the longest example is ${c.cutoff.longest}, rounded up` : "set by --cutoff-len"}).${
        c.cutoff.over > 0 ? ` **${c.cutoff.over} examples are longer** and would be cut or dropped by the trainer.` : ""
      }

`
}## System prompt

\`\`\`
${c.systemPrompt === "" ? "(none: the trainer's template applies its own default)" : c.systemPrompt}
\`\`\`
${
  c.templateCheck === undefined
    ? ""
    : `
## Chat template check

Every example was rendered with the chat template of \`${basename(c.templateCheck.template)}\`: ${
        c.templateCheck.lossy === 0
          ? `all ${c.templateCheck.checked} keep their whole assistant turn.`
          : `**${c.templateCheck.lossy} of ${c.templateCheck.checked} lose part of their assistant turn** (${c.templateCheck.examples[0]?.reason ?? ""}).`
      }
`
}`
