import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { execFileSync, spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { parse as parseYaml } from "yaml"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { Item } from "../schema/item.js"
import { Problem } from "../schema/problem.js"
import { makeRound } from "../schema/round.js"
import { Trace } from "../schema/trace.js"
import { Verdict } from "../schema/verdict.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { tempDir } from "../test-support/fixtures.js"
import { finishedImport } from "../testing/workspaceRecords.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { contentId } from "../util/hash.js"
import { type ExportFormat, exportDataset, type ExportOptions } from "./exportDataset.js"
import { chatTemplateFor, parseTrainer, TRAINER_VERSIONS, type TrainerVersion, yamlNumber } from "./trainerConfigs.js"
import { trainerTemplateLoss } from "./trainerTemplates.js"

/**
 * The exports read back as the trainers read them (LLaMA-Factory at its current head, ms-swift 3.x
 * and 4.x, from their dataset loaders and argument classes): columns, preference layouts, launch
 * arguments, paths, length limits, templates and YAML numbers.
 */
describe("exports that LLaMA-Factory and ms-swift train on as intended", () => {
  let tmp: ReturnType<typeof tempDir>
  let db: string
  beforeEach(async () => {
    tmp = tempDir()
    db = join(tmp.dir, "fastcot.db")
    await seed()
  })
  afterEach(() => tmp.cleanup())

  const now = "2026-12-01T00:00:00Z"
  const judged = (index: number, input: Trace, level: "easy" | "medium" | "hard") =>
    makeRound({
      index,
      action: "judge",
      input,
      verdict: new Verdict({ level, raw: level, model: "judge", promptVersion: "judge/v1" }),
      calls: [],
      startedAt: now,
      finishedAt: now
    })
  /** Three kept items: one medium from the start, one hard simplified twice (a hard rewrite between), and one with a 6,000-token trace. */
  const seed = () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* RunStore
          const problems = [0, 1, 2].map(
            (i) =>
              new Problem({
                id: contentId("p_", i) as Problem["id"],
                domain: "math",
                question: `What is ${i} + ${i}?`,
                answer: String(2 * i),
                source: "t",
                metadata: {}
              })
          )
          yield* store.commitImportBatch(finishedImport(problems))
          const t = (text: string) => new Trace({ reasoning: text, finalAnswer: undefined, origin: "simplify" })
          const hard = t("A long and winding way there: 1 + 1, by Peano's axioms, is \\boxed{2}.")
          const stillHard = t("Still winding: the successor of the successor of zero is \\boxed{2}.")
          const medium = t("1 + 1 = \\boxed{2}.")
          const long = t(`${"Consider the next step in detail once more. ".repeat(700)}So \\boxed{4}.`)
          const items = [
            new Item({
              id: contentId("i_", 0) as Item["id"],
              problemId: problems[0]!.id,
              stage: "done",
              fate: "kept",
              keptAs: "initial-medium",
              trace: t("0 + 0 = \\boxed{0}."),
              rounds: [judged(0, t("0 + 0 = \\boxed{0}."), "medium")],
              createdAt: now,
              updatedAt: now
            }),
            new Item({
              id: contentId("i_", 1) as Item["id"],
              problemId: problems[1]!.id,
              stage: "done",
              fate: "kept",
              keptAs: "hard-to-medium",
              trace: medium,
              original: hard,
              rounds: [judged(0, hard, "hard"), judged(1, stillHard, "hard"), judged(2, medium, "medium")],
              createdAt: now,
              updatedAt: now
            }),
            new Item({
              id: contentId("i_", 2) as Item["id"],
              problemId: problems[2]!.id,
              stage: "done",
              fate: "kept",
              keptAs: "initial-medium",
              trace: long,
              rounds: [],
              createdAt: now,
              updatedAt: now
            })
          ]
          yield* store.addItems(items)
        }).pipe(Effect.provide(SqliteRunStoreLive(db)))
      )
    )
  const exportWith = (options: Partial<ExportOptions> & { readonly format: ExportFormat }) =>
    Effect.runPromise(
      Effect.scoped(
        exportDataset({ out: join(tmp.dir, "out", "train.jsonl"), ...options }).pipe(
          Effect.provide(SqliteRunStoreLive(db)),
          Effect.provide(QwenTokenCounterLive)
        )
      )
    )
  const rows = (file: string) =>
    readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  const version = (text: string): TrainerVersion => Either.getOrThrow(parseTrainer(text))

  it("every column dataset_info.json declares is in every row, with a system prompt or without (LLaMA-Factory indexes them)", async () => {
    for (const format of ["openai", "sharegpt", "alpaca", "preference"] as const) {
      for (const systemPrompt of [undefined, ""]) {
        const out = join(tmp.dir, `${format}-${systemPrompt === "" ? "nosystem" : "system"}`, "train.jsonl")
        await exportWith({ format, out, systemPrompt })
        const info = JSON.parse(readFileSync(join(out, "..", "dataset_info.json"), "utf8")) as Record<
          string,
          { file_name: string; columns: Record<string, string> }
        >
        const entry = info["fastcot_train"]!
        const data = rows(join(out, "..", entry.file_name))
        expect(data.length).toBeGreaterThan(0)
        for (const row of data)
          for (const column of Object.values(entry.columns))
            expect(row, `${format} ${JSON.stringify(systemPrompt)}: ${column}`).toHaveProperty(column)
        if (systemPrompt === "") expect(entry.columns["system"]).toBeUndefined()
      }
    }
  })

  it("ms-swift's preference export is its DPO layout: messages ending in the chosen turn, and rejected_response; pairs from the judge's history", async () => {
    const report = await exportWith({ format: "preference", trainer: version("swift@4") })
    const data = rows(report.files.train)
    // The hard item gives two pairs (its start and a rewrite that was still hard); the medium-from-the-start items none.
    expect(data).toHaveLength(2)
    expect(report.pairs).toEqual({ items: 1, pairs: 2 })
    for (const row of data) {
      const messages = row["messages"] as Array<{ role: string; content: string }>
      expect(messages.at(-1)).toMatchObject({ role: "assistant", content: "1 + 1 = \\boxed{2}." })
      expect(messages.map((m) => m.role)).toEqual(["system", "user", "assistant"])
      expect(typeof row["rejected_response"]).toBe("string")
      expect(row["conversations"]).toBeUndefined()
    }
    expect(data.map((r) => r["rejected_response"])).toEqual([
      expect.stringContaining("Peano"),
      expect.stringContaining("successor")
    ])
    expect(readFileSync(report.files.card, "utf8")).toContain("## How the preference pairs were made")
    // LLaMA-Factory's own layout for it: ranking conversations with chosen and rejected.
    const lf = await exportWith({
      format: "preference",
      out: join(tmp.dir, "lf", "train.jsonl"),
      trainer: version("llamafactory")
    })
    expect(rows(lf.files.train)[0]).toMatchObject({
      conversations: [{ from: "human" }],
      chosen: { from: "gpt" },
      rejected: { from: "gpt" }
    })
  })

  it("the swift scripts carry no argument the named version does not take (train_type in 3.x, tuner_type in 4.x)", async () => {
    for (const v of ["swift@3", "swift@4"] as const) {
      for (const format of ["openai", "preference"] as const) {
        const out = join(tmp.dir, `${v}-${format}`, "train.jsonl")
        await exportWith({ format, out, trainer: v, valFraction: 0.5 })
        const script = readFileSync(join(out, "..", "train_swift.sh"), "utf8")
        const args = [...script.matchAll(/^\s+--([a-z_]+)\s/gm)].map((m) => m[1]!)
        expect(args.length).toBeGreaterThan(10)
        for (const arg of args) expect(TRAINER_VERSIONS[v].accepted, `${v}: --${arg}`).toContain(arg)
        expect(args).toContain(v === "swift@3" ? "train_type" : "tuner_type")
        expect(script).toContain(format === "preference" ? "swift rlhf" : "swift sft")
      }
    }
    const lf = await exportWith({
      format: "openai",
      out: join(tmp.dir, "lf", "train.jsonl"),
      trainer: version("llamafactory@0.9.3"),
      valFraction: 0.5
    })
    const config = parseYaml(readFileSync(join(tmp.dir, "lf", "llamafactory_sft.yaml"), "utf8")) as Record<
      string,
      unknown
    >
    for (const key of Object.keys(config)) expect(TRAINER_VERSIONS["llamafactory@0.9"].accepted, key).toContain(key)
    expect(lf.files.trainer).toHaveLength(3)
    expect(parseTrainer("swift@5")).toMatchObject({ left: expect.stringContaining("no config for swift@5") })
    expect(parseTrainer("axolotl")).toMatchObject({ left: expect.stringContaining("unknown trainer") })
    // As people write the names: the package (ms-swift), the repository (LLaMA-Factory).
    expect(parseTrainer("ms-swift")).toEqual(Either.right("swift@4"))
    expect(parseTrainer("ms-swift@3.12")).toEqual(Either.right("swift@3"))
    expect(parseTrainer("LLaMA-Factory")).toEqual(Either.right("llamafactory@0.9"))
    expect(parseTrainer("llama_factory@0.9.3")).toEqual(Either.right("llamafactory@0.9"))
  })

  it("the launch scripts work from any folder with a relative --out (trainers stood in for by scripts that check what they are given)", async () => {
    const bin = join(tmp.dir, "bin")
    mkdirSync(bin)
    // Stand-ins for the trainers' commands: they check that every path they are given exists from where they run.
    writeFileSync(
      join(bin, "swift"),
      `#!/usr/bin/env bash\nset -e\nwhile [ $# -gt 0 ]; do case "$1" in --dataset|--val_dataset|--deepspeed) test -f "$2" || { echo "missing $2 in $PWD"; exit 3; };; esac; shift; done\necho "swift ok"\n`
    )
    writeFileSync(
      join(bin, "llamafactory-cli"),
      `#!/usr/bin/env bash\nset -e\ntest -f "$2"\ndir=$(grep '^dataset_dir:' "$2" | cut -d' ' -f2 | tr -d '"')\nds=$(grep '^deepspeed:' "$2" | cut -d' ' -f2 | tr -d '"')\ntest -f "$dir/dataset_info.json" || { echo "no dataset_info in $dir from $PWD"; exit 3; }\ntest -f "$ds" || { echo "no $ds"; exit 3; }\necho "llamafactory ok"\n`
    )
    chmodSync(join(bin, "swift"), 0o755)
    chmodSync(join(bin, "llamafactory-cli"), 0o755)
    const work = join(tmp.dir, "work")
    mkdirSync(join(work, "elsewhere"), { recursive: true })
    for (const [trainer, script] of [
      ["swift", "train_swift.sh"],
      ["llamafactory", "train_llamafactory.sh"]
    ] as const) {
      // --out as a user types it: relative to where they stand.
      const cwd = process.cwd()
      process.chdir(work)
      try {
        await exportWith({ format: "openai", out: `exports/${trainer}/`, trainer: version(trainer), valFraction: 0.5 })
      } finally {
        process.chdir(cwd)
      }
      const run = spawnSync("bash", [join("..", "exports", trainer, script)], {
        cwd: join(work, "elsewhere"),
        env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}`, NPROC_PER_NODE: "1" },
        encoding: "utf8"
      })
      expect(run.status, run.stdout + run.stderr).toBe(0)
      expect(run.stdout).toContain(`${trainer} ok`)
    }
  })

  it("the length limit covers the longest example; a lower --cutoff-len is kept and warned about with counts", async () => {
    const measured = await exportWith({
      format: "openai",
      out: join(tmp.dir, "m", "train.jsonl"),
      trainer: version("llamafactory")
    })
    expect(measured.cutoff!.longest).toBeGreaterThan(6000)
    expect(measured.cutoff).toMatchObject({ measured: true, over: 0 })
    expect(measured.cutoff!.cutoffLen).toBeGreaterThan(measured.cutoff!.longest)
    expect(measured.cutoff!.cutoffLen % 512).toBe(0)
    const config = parseYaml(readFileSync(join(tmp.dir, "m", "llamafactory_sft.yaml"), "utf8")) as Record<
      string,
      unknown
    >
    expect(config["cutoff_len"]).toBe(measured.cutoff!.cutoffLen)
    const set = await exportWith({
      format: "openai",
      out: join(tmp.dir, "s", "train.jsonl"),
      trainer: version("swift"),
      cutoffLen: 4096
    })
    expect(set.cutoff).toMatchObject({
      cutoffLen: 4096,
      measured: false,
      over: 1,
      examples: [{ itemId: contentId("i_", 2) }]
    })
    expect(readFileSync(join(tmp.dir, "s", "train_swift.sh"), "utf8")).toContain("--max_length 4096")
    expect(readFileSync(set.files.card, "utf8")).toContain("**1 examples are longer**")
  })

  it("takes the chat template from the base model, and checks each example survives it as the trainer renders it", async () => {
    expect(chatTemplateFor("Qwen/Qwen2.5-7B")).toMatchObject({ llamafactory: "qwen", swift: "qwen2_5" })
    expect(chatTemplateFor("Qwen/Qwen2.5-Math-7B")).toMatchObject({ llamafactory: "qwen", swift: "qwen2_5_math" })
    expect(chatTemplateFor("Qwen/Qwen3-8B")).toMatchObject({ llamafactory: "qwen3_nothink", swift: "qwen3_nothinking" })
    expect(chatTemplateFor("Qwen/Qwen3-4B-Thinking-2507")).toMatchObject({
      llamafactory: "qwen3",
      swift: "qwen3_thinking",
      reasoning: true
    })
    expect(chatTemplateFor("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")).toMatchObject({
      llamafactory: "deepseekr1",
      swift: "deepseek_r1"
    })
    const qwen3 = await exportWith({
      format: "sharegpt",
      out: join(tmp.dir, "q3", "train.jsonl"),
      trainer: version("llamafactory"),
      baseModel: "Qwen/Qwen3-8B"
    })
    expect(
      (parseYaml(readFileSync(join(tmp.dir, "q3", "llamafactory_sft.yaml"), "utf8")) as Record<string, unknown>)[
        "template"
      ]
    ).toBe("qwen3_nothink")
    expect(qwen3.trainerTemplate).toMatchObject({ template: "qwen3_nothink", checked: 3, lossy: 0 })
    const swift3 = await exportWith({
      format: "openai",
      out: join(tmp.dir, "q3s", "train.jsonl"),
      trainer: version("swift"),
      baseModel: "Qwen/Qwen3-8B"
    })
    expect(readFileSync(join(tmp.dir, "q3s", "train_swift.sh"), "utf8")).toContain("--template qwen3_nothinking")
    expect(swift3.trainerTemplate!.lossy).toBe(0)
    // A trace holding the template's end-of-turn token would end its turn there.
    const messages = [
      { role: "user" as const, content: "q" },
      { role: "assistant" as const, content: "first part<|im_end|> and the rest" }
    ]
    expect(trainerTemplateLoss(chatTemplateFor("Qwen/Qwen2.5-7B"), messages)).toContain("<|im_end|>")
    expect(
      trainerTemplateLoss(chatTemplateFor("Qwen/Qwen2.5-7B"), [messages[0]!, { role: "assistant", content: "fine" }])
    ).toBeUndefined()
  })

  it("writes numbers in the YAML that every supported version reads as numbers (PyYAML reads 5e-7 as a string)", async () => {
    expect(yamlNumber(5e-7)).toBe("5.0e-07")
    expect(yamlNumber(1e-5)).toBe("1.0e-05")
    expect(yamlNumber(0.1)).toBe("0.1")
    expect(yamlNumber(3)).toBe("3")
    expect(yamlNumber(2.5e-6)).toBe("2.5e-06")
    await exportWith({
      format: "preference",
      out: join(tmp.dir, "dpo", "train.jsonl"),
      trainer: version("llamafactory")
    })
    const file = join(tmp.dir, "dpo", "llamafactory_dpo.yaml")
    const text = readFileSync(file, "utf8")
    expect(text).toMatch(/^learning_rate: 5\.0e-07$/m)
    // YAML 1.1's float form, which PyYAML resolves: a point and a signed exponent.
    for (const m of text.matchAll(/^\w+: ([-+]?\d[\d.]*e[-+]?\d+)$/gm)) expect(m[1]).toMatch(/^[-+]?\d+\.\d*e[-+]\d+$/)
    expect((parseYaml(text) as Record<string, unknown>)["learning_rate"]).toBe(5e-7)
    // PyYAML itself, where the machine has it, as an independent reader.
    const python = spawnSync("python3", ["-c", "import yaml"], { encoding: "utf8" })
    if (python.status === 0) {
      const types = execFileSync(
        "python3",
        [
          "-c",
          "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])); print(type(c['learning_rate']).__name__, type(c['warmup_ratio']).__name__, type(c['cutoff_len']).__name__)",
          file
        ],
        { encoding: "utf8" }
      )
      expect(types.trim()).toBe("float float int")
    }
    expect(existsSync(join(tmp.dir, "dpo", "ds_z3_config.json"))).toBe(true)
  })
})
