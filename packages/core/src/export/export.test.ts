import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Item } from "../schema/item.js"
import { Problem } from "../schema/problem.js"
import { AlpacaRecord, OpenAiRecord, PreferenceRecord, ShareGptRecord } from "../schema/sft.js"
import { parse as parseYaml } from "yaml"
import { Trace } from "../schema/trace.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { tempDir } from "../test-support/fixtures.js"
import { finishedImport } from "../testing/workspaceRecords.js"
import { contentId } from "../util/hash.js"
import { CHATML_TEMPLATE } from "../onnx/tinyTokenizer.js"
import { loadChatTemplate } from "../chat/chatTemplateCheck.js"
import { DEFAULT_SYSTEM_PROMPT } from "../recipe/prompts.js"
import { assistantContent, type ExportFormat, exportDataset, type ExportReport } from "./exportDataset.js"

const N = 40
let tmp: ReturnType<typeof tempDir>
let db: string

const problem = (i: number) =>
  new Problem({
    id: contentId("p_", i) as Problem["id"],
    domain: i % 4 === 0 ? "science" : "math",
    question: `Question ${i}?`,
    answer: i % 4 === 0 ? "B" : String(i * 2),
    choices: i % 4 === 0 ? ["one", "two", "three"] : undefined,
    source: "t.jsonl:1",
    metadata: {}
  })

const item = (p: Problem, i: number, fate: Item["fate"]) =>
  new Item({
    id: contentId("i_", i) as Item["id"],
    problemId: p.id,
    stage: "done",
    fate,
    keptAs: fate === "kept" ? (["initial-medium", "easy-to-medium", "hard-to-medium"] as const)[i % 3] : undefined,
    trace: new Trace({
      reasoning: `Step 1: think about ${i}.\n\nStep 2: compute.`,
      finalAnswer: p.answer,
      origin: "expand"
    }),
    rounds: [],
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z"
  })

const exportWith = (format: ExportFormat, out: string, valFraction = 0.25, systemPrompt?: string) =>
  Effect.runPromise(
    Effect.scoped(
      exportDataset({ format, out, valFraction, systemPrompt }).pipe(
        Effect.provide(SqliteRunStoreLive(db)),
        Effect.provide(QwenTokenCounterLive)
      )
    )
  )

const readJsonl = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as unknown)

beforeAll(async () => {
  tmp = tempDir()
  db = join(tmp.dir, "fastcot.db")
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const store = yield* RunStore
        const problems = Array.from({ length: N }, (_, i) => problem(i))
        yield* store.commitImportBatch(finishedImport(problems))
        // Three of every four are kept; the rest are dropped and must not be exported.
        yield* store.addItems(problems.map((p, i) => item(p, i, i % 4 === 3 ? "dropped" : "kept")))
      }).pipe(Effect.provide(SqliteRunStoreLive(db)))
    )
  )
})
afterAll(() => tmp.cleanup())

describe("export", () => {
  const kept = N - N / 4
  it("leaves no validation file of an earlier export beside a new one that has none", async () => {
    const out = join(tmp.dir, "again", "train.jsonl")
    const first = await exportWith("openai", out, 0.5)
    expect(existsSync(first.files.validation!)).toBe(true)
    const second = await exportWith("alpaca", out, 0)
    expect(second.files.validation).toBeUndefined()
    expect(existsSync(first.files.validation!)).toBe(false)
    expect(readJsonl(second.files.train)).toHaveLength(kept)
  })
  it("takes a folder for --out (one that exists, a path ending in /, or a new name without an extension) and writes train.jsonl in it", async () => {
    const existing = join(tmp.dir, "folder")
    mkdirSync(existing)
    expect((await exportWith("openai", existing)).files.train).toBe(join(existing, "train.jsonl"))
    const fresh = join(tmp.dir, "fresh") + "/"
    const report = await exportWith("openai", fresh)
    expect(report.files.train).toBe(join(tmp.dir, "fresh", "train.jsonl"))
    expect(readJsonl(report.files.train).length + readJsonl(report.files.validation!).length).toBe(kept)
    // `--out data`: a new folder, not a file named `data` with the card beside it.
    const bare = join(tmp.dir, "data")
    expect((await exportWith("openai", bare)).files.train).toBe(join(bare, "train.jsonl"))
    // A new name with an extension is the file itself.
    const named = join(tmp.dir, "sets", "sft.jsonl")
    expect((await exportWith("openai", named)).files.train).toBe(named)
  })
  it("fails naming the file and leaves no temporary file behind", async () => {
    const dir = join(tmp.dir, "blocked")
    // A folder where the validation split must go: the rename into place fails.
    mkdirSync(join(dir, "train.validation.jsonl"), { recursive: true })
    writeFileSync(join(dir, "train.validation.jsonl", "x"), "")
    const exit = await Effect.runPromiseExit(
      exportDataset({ format: "openai", out: join(dir, "train.jsonl"), valFraction: 0.5 }).pipe(
        Effect.provide(SqliteRunStoreLive(db)),
        Effect.provide(QwenTokenCounterLive),
        Effect.scoped
      )
    )
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
    expect(error).toMatchObject({
      _tag: "Some",
      value: { _tag: "ExportError", file: join(dir, "train.validation.jsonl") }
    })
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([])
    // A file where a folder must be.
    writeFileSync(join(dir, "plain"), "")
    const inFile = await Effect.runPromiseExit(
      exportDataset({ format: "openai", out: join(dir, "plain", "train.jsonl") }).pipe(
        Effect.provide(SqliteRunStoreLive(db)),
        Effect.provide(QwenTokenCounterLive),
        Effect.scoped
      )
    )
    expect(Exit.isFailure(inFile) ? Cause.failureOption(inFile.cause) : undefined).toMatchObject({
      _tag: "Some",
      value: { file: join(dir, "plain"), message: "a file is in the way: the output must go in a folder" }
    })
  })
  it("checks every example against a chat template: a faithful one keeps every assistant turn, a lossy one is reported with the items", async () => {
    const dir = join(tmp.dir, "templates")
    mkdirSync(join(dir, "model"), { recursive: true })
    // The Qwen2.5 (ChatML) template, as a model folder's tokenizer_config.json holds it.
    writeFileSync(
      join(dir, "model", "tokenizer_config.json"),
      JSON.stringify({
        chat_template: CHATML_TEMPLATE,
        eos_token: "<|im_end|>",
        pad_token: { content: "<|endoftext|>" }
      })
    )
    const faithful = await Effect.runPromise(loadChatTemplate(join(dir, "model")))
    expect(faithful.source).toBe(join(dir, "model", "tokenizer_config.json"))
    const ok = await Effect.runPromise(
      exportDataset({ format: "openai", out: join(dir, "ok", "train.jsonl"), chatTemplate: faithful }).pipe(
        Effect.provide(SqliteRunStoreLive(db)),
        Effect.provide(QwenTokenCounterLive),
        Effect.scoped
      )
    )
    expect(ok.templateCheck).toEqual({ template: faithful.source, checked: kept, lossy: 0, examples: [] })
    expect(readFileSync(ok.files.card, "utf8")).toContain(`all ${kept} keep their whole assistant turn`)
    // A template that keeps only the last paragraph of an assistant turn, as templates that keep
    // only what follows </think> do: the reasoning would never reach the trainer.
    const lossyText = CHATML_TEMPLATE.replace(
      "message['content']",
      "(message['content'].split('\\n\\n') | last if message['role'] == 'assistant' else message['content'])"
    )
    expect(lossyText).not.toBe(CHATML_TEMPLATE)
    writeFileSync(join(dir, "lossy.jinja"), lossyText)
    const lossy = await Effect.runPromise(loadChatTemplate(join(dir, "lossy.jinja")))
    const report = await Effect.runPromise(
      exportDataset({ format: "openai", out: join(dir, "lossy", "train.jsonl"), chatTemplate: lossy }).pipe(
        Effect.provide(SqliteRunStoreLive(db)),
        Effect.provide(QwenTokenCounterLive),
        Effect.scoped
      )
    )
    expect(report.templateCheck).toMatchObject({ checked: kept, lossy: kept })
    expect(report.templateCheck!.examples).toHaveLength(3)
    expect(report.templateCheck!.examples[0]!.reason).toMatch(
      /^the start of the assistant turn \(its reasoning\) is missing: only its last \d+ of \d+ characters are in the rendered text$/
    )
    // Files that hold no template, or none at all, are named.
    writeFileSync(join(dir, "plain.json"), JSON.stringify({ eos_token: "x" }))
    const none = await Effect.runPromiseExit(loadChatTemplate(join(dir, "plain.json")))
    expect(Exit.isFailure(none) ? Cause.failureOption(none.cause) : undefined).toMatchObject({
      value: { file: join(dir, "plain.json"), message: "cannot use it as a chat template: it holds no chat template" }
    })
    const missing = await Effect.runPromiseExit(loadChatTemplate(join(dir, "nope")))
    expect(Exit.isFailure(missing) ? Cause.failureOption(missing.cause) : undefined).toMatchObject({
      value: { message: "cannot use it as a chat template: no such file or folder" }
    })
  })
  const formats: ReadonlyArray<[ExportFormat, Schema.Schema.AnyNoContext]> = [
    ["openai", OpenAiRecord],
    ["sharegpt", ShareGptRecord],
    ["alpaca", AlpacaRecord]
  ]
  for (const [format, schema] of formats) {
    it(`writes ${format} records that read back and validate, with a card and dataset_info.json`, async () => {
      const out = join(tmp.dir, format, "train.jsonl")
      const report: ExportReport = await exportWith(format, out)
      expect(report.counts.train + report.counts.validation).toBe(kept)
      expect(report.counts.validation).toBeGreaterThan(0)
      const rows = [...readJsonl(report.files.train), ...readJsonl(report.files.validation!)]
      expect(rows).toHaveLength(kept)
      for (const row of rows) Schema.decodeUnknownSync(schema)(row)
      const info = JSON.parse(readFileSync(report.files.datasetInfo, "utf8")) as Record<string, { file_name: string }>
      for (const entry of Object.values(info)) expect(existsSync(join(dirname(out), entry.file_name))).toBe(true)
      expect(Object.keys(info)).toEqual(["fastcot_train", "fastcot_validation"])
      const card = readFileSync(report.files.card, "utf8")
      expect(card).toContain(`| train | \`train.jsonl\` | ${report.counts.train} |`)
      expect(card).toContain("qwen2.5 tokenizer")
      expect(report.tokens.count).toBe(kept)
      expect(report.tokens.min).toBeGreaterThan(5)
    })
  }

  it("keeps the system prompt, puts the question in the user turn and ends the assistant turn with the answer", async () => {
    const report = await exportWith("openai", join(tmp.dir, "check", "sft.jsonl"), 0)
    const rows = readJsonl(report.files.train) as Array<{ messages: Array<{ role: string; content: string }> }>
    expect(rows).toHaveLength(kept)
    expect(report.files.validation).toBeUndefined()
    const science = rows.find(({ messages }) => messages[1]!.content.startsWith("Question 0?"))!
    expect(science.messages[1]!.content).toContain("A. one\nB. two\nC. three")
    for (const { messages } of rows) {
      expect(messages.map((m) => m.role)).toEqual(["system", "user", "assistant"])
      expect(messages[0]!.content).toBe(DEFAULT_SYSTEM_PROMPT)
      expect(messages[2]!.content).toMatch(/The final answer is \$\\boxed\{[^}]+\}\$\.$/)
    }
    const noSystem = await exportWith("openai", join(tmp.dir, "nosys", "sft.jsonl"), 0, "")
    expect((readJsonl(noSystem.files.train)[0] as { messages: Array<{ role: string }> }).messages[0]!.role).toBe("user")
  })

  it("splits deterministically: the same items land in validation on every export", async () => {
    const a = await exportWith("alpaca", join(tmp.dir, "a", "train.jsonl"), 0.3)
    const b = await exportWith("alpaca", join(tmp.dir, "b", "train.jsonl"), 0.3)
    expect(readFileSync(a.files.validation!, "utf8")).toBe(readFileSync(b.files.validation!, "utf8"))
    expect(readFileSync(a.files.train, "utf8")).toBe(readFileSync(b.files.train, "utf8"))
  })

  it("writes preference pairs (aligned over original) and trainer configs that parse and point at the files", async () => {
    // Give two kept items an original trace, as a rewrite would.
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* RunStore
          for (const i of [0, 1]) {
            const current = Option.getOrThrow(yield* store.getItem(contentId("i_", i)))
            yield* store.saveItem(
              new Item({
                ...current,
                original: new Trace({ reasoning: `Long winding original ${i}.`, origin: "teacher" })
              })
            )
          }
        }).pipe(Effect.provide(SqliteRunStoreLive(db)))
      )
    )
    const out = join(tmp.dir, "pref", "pairs.jsonl")
    const report = await Effect.runPromise(
      Effect.scoped(
        exportDataset({ format: "preference", out, trainer: "llamafactory@0.9", baseModel: "Qwen/Qwen2.5-0.5B" }).pipe(
          Effect.provide(SqliteRunStoreLive(db)),
          Effect.provide(QwenTokenCounterLive)
        )
      )
    )
    const pairs = readJsonl(out).map((r) => Schema.decodeUnknownSync(PreferenceRecord)(r))
    expect(pairs).toHaveLength(2)
    for (const p of pairs) {
      expect(p.rejected.value).toMatch(/^Long winding original \d\.$/)
      expect(p.chosen.value).toContain("Step 2: compute.")
    }
    const config = parseYaml(readFileSync(join(tmp.dir, "pref", "llamafactory_dpo.yaml"), "utf8")) as Record<
      string,
      unknown
    >
    // Paths relative to the config's own folder (the launch script changes to it first).
    expect(config).toMatchObject({
      stage: "dpo",
      model_name_or_path: "Qwen/Qwen2.5-0.5B",
      template: "qwen",
      dataset: "fastcot_train",
      dataset_dir: "."
    })
    const info = JSON.parse(readFileSync(join(dirname(out), "dataset_info.json"), "utf8"))
    expect(info[config["dataset"] as string]).toMatchObject({ file_name: "pairs.jsonl", ranking: true })
    expect(
      JSON.parse(readFileSync(join(dirname(out), config["deepspeed"] as string), "utf8")).zero_optimization.stage
    ).toBe(3)
    expect(readFileSync(join(dirname(out), "train_llamafactory.sh"), "utf8")).toContain(
      "llamafactory-cli train llamafactory_dpo.yaml"
    )
    expect(report.files.trainer.map((f) => f.split("/").pop()).sort()).toEqual([
      "ds_z3_config.json",
      "llamafactory_dpo.yaml",
      "train_llamafactory.sh"
    ])

    const swift = await Effect.runPromise(
      Effect.scoped(
        exportDataset({
          format: "openai",
          out: join(tmp.dir, "swift", "train.jsonl"),
          valFraction: 0.25,
          trainer: "swift@4"
        }).pipe(Effect.provide(SqliteRunStoreLive(db)), Effect.provide(QwenTokenCounterLive))
      )
    )
    const script = readFileSync(join(tmp.dir, "swift", "train_swift.sh"), "utf8")
    expect(script).toContain("--dataset train.jsonl")
    expect(script).toContain("--val_dataset train.validation.jsonl")
    expect(script).toContain("--deepspeed")
    for (const path of [...script.matchAll(/--(?:dataset|val_dataset|deepspeed) (\S+)/g)].map((m) => m[1]!))
      expect(existsSync(join(dirname(swift.files.train), path))).toBe(true)
  })

  it("does not repeat a final answer the reasoning already ends with", () => {
    const p = problem(1)
    expect(
      assistantContent(p, new Trace({ reasoning: "So 1+1 = \\boxed{2}.", finalAnswer: "2", origin: "teacher" }))
    ).toBe("So 1+1 = \\boxed{2}.")
    expect(
      assistantContent(p, new Trace({ reasoning: "Compute.", finalAnswer: "The answer is 2.", origin: "teacher" }))
    ).toBe("Compute.\n\nThe answer is 2.")
  })
})
