import { spawn, spawnSync } from "node:child_process"
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { GRADER_VERSION } from "@fastcot/evaluator"
import { importFile, openSqliteStore, RunStore } from "@fastcot/core"
import { buildQwen2Checkpoint, finishedImport, keptSumItems, sumProblems } from "@fastcot/core/testing"
import * as Effect from "effect/Effect"

const BIN = join(__dirname, "..", "dist", "bin.js")

describe("fastcot command line", () => {
  let cwd: string
  beforeEach(() => {
    cwd = mkdtempSync(join(tmpdir(), "fastcot-cli-"))
  })
  afterEach(() => rmSync(cwd, { recursive: true, force: true }))

  // Asynchronous: a blocking spawn would starve the test worker's event loop on long commands.
  const fastcotWith = (
    env: NodeJS.ProcessEnv,
    ...args: Array<string>
  ): Promise<{ code: number | null; out: string; err: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd, env })
      let out = ""
      let err = ""
      child.stdout.on("data", (d) => (out += d))
      child.stderr.on("data", (d) => (err += d))
      child.on("close", (code) => resolve({ code, out, err }))
    })
  const fastcot = (...args: Array<string>) => fastcotWith({ ...process.env, NO_COLOR: "1" }, ...args)

  it("is built", async () => expect(existsSync(BIN)).toBe(true))

  it("init makes a working workspace with sample problems", async () => {
    const r = await fastcot("init", "ws")
    expect(r.code).toBe(0)
    expect(r.out).toContain("workspace ready: ws")
    expect(existsSync(join(cwd, "ws", "fastcot.db"))).toBe(true)
    const status = JSON.parse((await fastcot("status", "--json", "--workspace", "ws")).out)
    expect(status.problems).toBe(13)
    expect(status.domains).toEqual({ math: 8, science: 3, code: 2 })
    // --workspace, as every other command takes it, works too; two different folders are refused.
    const named = await fastcot("init", "--workspace", "ws2")
    expect(named.code, named.err).toBe(0)
    expect(existsSync(join(cwd, "ws2", "fastcot.db"))).toBe(true)
    const both = await fastcot("init", "ws3", "--workspace", "ws4")
    expect(both.code).toBe(2)
    expect(both.err).toContain("two workspaces given: ws3 and --workspace ws4")
    expect(existsSync(join(cwd, "ws3")) || existsSync(join(cwd, "ws4"))).toBe(false)
  })

  it("import --dry-run shows the layout it detects, the mapping and the first rows, and makes no workspace; a dataset folder imports its split", async () => {
    const rows = [
      {
        problem: "What is 1+1?",
        answer: "2",
        generations: ["<think>one and one</think>\n\nSo \\boxed{2}.", "<think>one and"],
        is_reasoning_complete: [true, false],
        correctness_math_verify: [true, false]
      },
      { problem: "What is 2+2?", answer: "4", generations: ["<think>two and two</think>\n\nSo \\boxed{4}."] }
    ]
    writeFileSync(join(cwd, "r1.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"))
    const dry = await fastcot("import", "r1.jsonl", "--dry-run")
    expect(dry.code, dry.err).toBe(0)
    expect(dry.out).toContain("r1.jsonl: layout openr1-math (open-r1/OpenR1-Math-220k)")
    expect(dry.out).toMatch(/question\s+<- problem/)
    expect(dry.out).toContain(
      "would create 2 problems and 3 traces (0 long, 1 cut off inside their reasoning) from 2 rows; 0 rejected"
    )
    expect(dry.out).toContain("question: What is 1+1?")
    expect(dry.out).toContain("nothing was written (--dry-run)")
    expect(existsSync(join(cwd, ".fastcot"))).toBe(false)
    // A named layout can be asked for; a wrong name is refused with the list.
    expect((await fastcot("import", "r1.jsonl", "--dry-run", "--layout", "numina")).code).toBe(2)
    // A dataset folder as the Hugging Face cache keeps it: refs/main names the snapshot, the card the split's files.
    const repo = join(cwd, "datasets--org--name")
    mkdirSync(join(repo, "refs"), { recursive: true })
    mkdirSync(join(repo, "snapshots", "abc123", "data"), { recursive: true })
    writeFileSync(join(repo, "refs", "main"), "abc123")
    writeFileSync(
      join(repo, "snapshots", "abc123", "data", "train-00000-of-00001.jsonl"),
      rows.map((r) => JSON.stringify(r)).join("\n")
    )
    writeFileSync(
      join(repo, "snapshots", "abc123", "data", "test-00000-of-00001.jsonl"),
      JSON.stringify({ problem: "held out?", answer: "0", generations: [] })
    )
    const imported = await fastcot("import", repo)
    expect(imported.code, imported.err).toBe(0)
    expect(imported.out).toMatch(
      /train-00000-of-00001\.jsonl: 2 rows \(layout openr1-math\), 2 new problems, 3 new traces/
    )
    const status = JSON.parse((await fastcot("status", "--json")).out)
    expect(status).toMatchObject({ problems: 2, items: 3 })
    const missing = await fastcot("import", repo, "--split", "validation")
    expect(missing.code).toBe(2)
    expect(missing.err).toContain("no files of split `validation`")
  })

  it("imports good rows, names each bad row's file, line and reason, and exits 0", async () => {
    writeFileSync(join(cwd, "data.jsonl"), '{"question":"1+1?","answer":"2"}\n{broken\n{"answer":"5"}\n')
    const r = await fastcot("import", "data.jsonl")
    expect(r.code).toBe(0)
    expect(r.out).toContain("data.jsonl: 3 rows, 1 new problems")
    expect(r.err).toContain("data.jsonl:2: malformed JSON")
    expect(r.err).toContain("data.jsonl:3: missing a question")
    expect(r.err).toMatch(/rejected rows are listed in \.fastcot\/rejects\/data\.jsonl\.[0-9a-f]{8}\.rejects\.jsonl/)
    const again = await fastcot("import", "data.jsonl")
    expect(again.code).toBe(0)
    expect(again.out).toContain("already imported")
    const status = JSON.parse((await fastcot("status", "--json")).out)
    expect(status).toMatchObject({ problems: 1, kept: 0, dropped: 0, stages: { collect: 0 } })
  })

  it("run's filter leaves out duplicates and problems without a reference before any call; status lists them", async () => {
    writeFileSync(
      join(cwd, "refs.jsonl"),
      '{"question":"What is 2+2?","answer":"4"}\n{"question":"What is 2+2?","answer":"4.0"}\n{"question":"Name a prime."}\n'
    )
    expect((await fastcot("import", "refs.jsonl", "--workspace", "flt")).code).toBe(0)
    // No model is configured: the filter alone makes no call.
    const run = await fastcot("run", "--stages", "filter", "--no-tui", "--workspace", "flt")
    expect(run.code, run.err).toBe(0)
    expect(run.out).toMatch(/filter +3 problems: 1 duplicates, .*, 1 without a reference answer/)
    // Nothing was given to decontaminate against: the run says so, rather than "0 overlapping".
    expect(run.out).toContain("not checked against any benchmark")
    expect(run.err).toMatch(/warn: not decontaminated: no evaluation benchmark was given \(--benchmarks/)
    const status = await fastcot("status", "--workspace", "flt")
    expect(status.out).toMatch(/ left out by filter +2\n +duplicate +1\n +no-reference +1\n/)
    // The folder `eval --data` reads: its benchmarks' files are the ones decontaminated against.
    mkdirSync(join(cwd, "data", "math500"), { recursive: true })
    writeFileSync(
      join(cwd, "data", "math500", "test.jsonl"),
      '{"problem":"What is 2+2?","answer":"4","unique_id":"test/x.json"}\n{"problem":"What is 3+5?","answer":"8","unique_id":"test/y.json"}\n'
    )
    const checked = await fastcot("run", "--stages", "filter", "--no-tui", "--workspace", "flt", "--benchmarks", "data")
    expect(checked.code, checked.err).toBe(0)
    expect(checked.out).toMatch(/filter +3 problems: .*, 2 overlapping 2 benchmark problems,/)
    expect(checked.err).not.toContain("not decontaminated")
    mkdirSync(join(cwd, "empty"))
    const empty = await fastcot("run", "--stages", "filter", "--no-tui", "--workspace", "flt", "--benchmarks", "empty")
    expect(empty.code).toBe(2)
    expect(empty.err).toContain(
      "--benchmarks: empty: a folder with none of the evaluation benchmarks' files (math500/test.jsonl"
    )
  })

  it("exits 2 when no row could be imported, when a file is missing, or on bad usage", async () => {
    writeFileSync(join(cwd, "bad.jsonl"), "{oops\n")
    const none = await fastcot("import", "bad.jsonl")
    expect(none.code).toBe(2)
    expect(none.err).toContain("bad.jsonl:1: malformed JSON")
    expect(none.err).toContain("no row was imported")
    const missing = await fastcot("import", "nope.jsonl")
    expect(missing.code).toBe(2)
    expect(missing.err).toContain("nope.jsonl: cannot read the file: ENOENT")
    const badMap = await fastcot("import", "bad.jsonl", "--map", "question")
    expect(badMap.code).toBe(2)
    expect(badMap.err).toContain("--map: `question` is not of the form target=source")
    expect((await fastcot("import")).code).toBe(2)
    expect((await fastcot("export", "--format", "xml")).code).toBe(2)
    expect((await fastcot("export", "--val-fraction", "1.5")).code).toBe(2)
    const batch = await fastcot("run", "--batch", "teacher,critic")
    expect(batch.code).toBe(2)
    expect(batch.err).toContain("--batch takes roles (teacher, rewriter, judge), not critic")
  })

  it("takes no misspelt option or option without its value for a file name", async () => {
    const typo = await fastcot("run", "--concurency", "3")
    expect(typo.code).toBe(2)
    expect(typo.err).toContain("The flag '--concurency' is not recognized. Did you mean '--concurrency'?")
    expect(typo.err).not.toContain("pipeline file")
    const noValue = await fastcot("run", "--teacher")
    expect(noValue.code).toBe(2)
    expect(noValue.err).toContain("Expected a value following option: '--teacher'")
    expect(noValue.err).not.toContain("pipeline file")
    // Out-of-range numbers are refused by name, before any workspace or model is touched.
    const zero = await fastcot("run", "--concurrency", "0", "--no-tui")
    expect(zero.code).toBe(2)
    expect(zero.err).toContain("--concurrency must be from 1 to 4096")
    const negative = await fastcot("run", "--limit", "-2", "--no-tui")
    expect(negative.code).toBe(2)
    expect(negative.err).toContain("--limit must be at least 1")
    const evalZero = await fastcot("eval", "--concurrency", "0")
    expect(evalZero.code).toBe(2)
    expect(evalZero.err).toContain("--concurrency must be from 1 to 4096")
    const evalLimit = await fastcot("eval", "--limit", "0")
    expect(evalLimit.code).toBe(2)
    expect(evalLimit.err).toContain("--limit must be at least 1")
    // A value of the wrong kind is refused naming its flag (the parser's own line names only the value or the choices).
    const badChoice = await fastcot("import", "--format", "xml", "x.jsonl")
    expect([badChoice.code, badChoice.err]).toEqual([
      2,
      expect.stringContaining('--format: "xml" is not one of jsonl, json, csv, parquet')
    ])
    // A flag without a value (a boolean) before the bad one is not taken for it.
    const afterBoolean = await fastcot("eval", "--pack-products", "--q4-compute", "both")
    expect([afterBoolean.code, afterBoolean.err]).toEqual([
      2,
      expect.stringContaining('--q4-compute: "both" is not one of int8, as-exported')
    ])
    const badInteger = await fastcot("eval", "--samples=two")
    expect([badInteger.code, badInteger.err]).toEqual([
      2,
      expect.stringContaining('--samples: "two" is not a whole number')
    ])
    const badFloat = await fastcot("export", "--val-fraction", "half")
    expect([badFloat.code, badFloat.err]).toEqual([
      2,
      expect.stringContaining('--val-fraction: "half" is not a number')
    ])
    const unknown = await fastcot("import", "--bogus", "x.jsonl")
    expect(unknown.code).toBe(2)
    expect(unknown.err).toContain("--bogus is not an option of `fastcot import`")
    expect(unknown.err).not.toContain("cannot tell the format")
    // --map may be given more than once (its mappings add up).
    writeFileSync(join(cwd, "qa.csv"), "q,a\nWhat is 1?,1\n")
    const mapped = await fastcot("import", "qa.csv", "--map", "question=q", "--map", "answer=a")
    expect(mapped.code).toBe(0)
    expect(mapped.out).toContain("qa.csv: 1 rows, 1 new problems")
    // A file whose name starts with "-" is still reachable.
    writeFileSync(join(cwd, "-odd.jsonl"), '{"question":"1+1?","answer":"2"}\n')
    const odd = await fastcot("import", "./-odd.jsonl")
    expect(odd.code).toBe(0)
    expect(odd.out).toContain("1 new problems")
  })

  it("does not create a workspace for a command that only reads one (a mistyped --workspace)", async () => {
    for (const command of [["status"], ["export"], ["inspect"]]) {
      const r = await fastcot(...command, "--workspace", "wrokspace")
      expect(r.code, command[0]).toBe(2)
      expect(r.err).toContain("no workspace at wrokspace (no fastcot.db there); make one with `fastcot init wrokspace`")
    }
    expect(existsSync(join(cwd, "wrokspace"))).toBe(false)
    // Their help says so; the commands that make one say that instead.
    for (const command of ["status", "export", "inspect", "review"])
      expect((await fastcot(command, "--help")).out, command).toContain("it must exist: a mistyped path is refused")
    for (const command of ["import", "run", "eval"])
      expect((await fastcot(command, "--help")).out, command).toContain("(created when missing)")
  })

  it("names the pipeline file and its line when --pipeline cannot give a store", async () => {
    writeFileSync(join(cwd, "team.yaml"), "name: team\nstore: postgres://team:secret@127.0.0.1:1/db\n")
    writeFileSync(join(cwd, "one.jsonl"), '{"question":"1+1?","answer":"2"}\n')
    for (const command of [["status"], ["ui", "--port", "0"], ["import", "one.jsonl"]]) {
      const leaked = await fastcot(...command, "--pipeline", "team.yaml")
      expect(leaked.code, command[0]).toBe(2)
      expect(leaked.err).toContain("team.yaml:2: store: has a password in it")
      expect(leaked.err).not.toContain("secret")
    }
    const missing = await fastcot("export", "--pipeline", "nowhere.yaml")
    expect(missing.code).toBe(2)
    expect(missing.err).toContain("nowhere.yaml: cannot read the pipeline file: ENOENT")
    // A file that names no store leaves the usual default: the workspace's own file.
    writeFileSync(join(cwd, "nostore.yaml"), "name: local\nmodels:\n  teacher: openai:m@http://127.0.0.1:1/v1\n")
    const local = await fastcot("inspect", "--pipeline", "nostore.yaml", "--workspace", "wrokspace")
    expect(local.code).toBe(2)
    expect(local.err).toContain("no workspace at wrokspace (no fastcot.db there)")
  })

  it("takes a list option comma-separated or given more than once", async () => {
    const built = await fastcot("models", "build", "m", "--variants", "fp32", "--variants", "q4")
    expect(built.code).toBe(0)
    expect(existsSync(join(cwd, "m", "onnx", "model.onnx"))).toBe(true)
    expect(existsSync(join(cwd, "m", "onnx", "model_q4.onnx"))).toBe(true)
    const bad = await fastcot("models", "build", "m2", "--variants", "fp32,q3")
    expect(bad.code).toBe(2)
    expect(bad.err).toContain("--variants: unknown q3")
  })

  it("prints help and usage errors without escape codes when they are piped, with or without NO_COLOR", async () => {
    const { NO_COLOR: _, FASTCOT_NO_COLOR: __, ...env } = process.env
    const help = await fastcotWith(env, "--help")
    expect(help.code).toBe(0)
    expect(help.out).toContain("USAGE")
    expect(help.out).not.toContain("\x1b[")
    const bad = await fastcotWith(env, "status", "--bogus")
    expect(bad.code).toBe(2)
    expect(bad.err).toContain("--bogus")
    expect(bad.err).not.toContain("\x1b[")
  })

  it("exports (nothing kept yet) with a card and says what to do next", async () => {
    await fastcot("init")
    const r = await fastcot("export", "--format", "sharegpt", "--out", "out/sft.jsonl")
    expect(r.code).toBe(0)
    expect(r.out).toContain("no item is kept yet")
    expect(readFileSync(join(cwd, "out", "README.md"), "utf8")).toContain("Format: **sharegpt**")
    expect(JSON.parse(readFileSync(join(cwd, "out", "dataset_info.json"), "utf8")).fastcot_train.file_name).toBe(
      "sft.jsonl"
    )
  })

  it("runs the demo end to end, then inspects an item by id prefix", async () => {
    // A team machine's FASTCOT_STORE (here a database nothing serves) is not where the demo's samples go.
    const demo = await fastcotWith(
      { ...process.env, NO_COLOR: "1", FASTCOT_STORE: "postgres://team@127.0.0.1:9/shared" },
      "demo"
    )
    expect(demo.code, demo.err).toBe(0)
    expect(demo.out).toContain(
      "done. Look around: npx fastcot status --workspace .fastcot-demo --store .fastcot-demo/fastcot.db;"
    )
    expect(demo.out).toMatch(/5\. align +\d+ kept/)
    expect(demo.out).toContain("judge: a LOCAL ONNX model")
    // The local judge has random weights: which items it keeps varies, but every verified item is judged and rewritten.
    const kept = JSON.parse(
      (await fastcot("inspect", "--fate", "kept", "--json", "--workspace", ".fastcot-demo")).out
    ) as Array<{ id: string; keptAs: string }>
    const dropped = JSON.parse(
      (await fastcot("inspect", "--fate", "dropped", "--json", "--workspace", ".fastcot-demo")).out
    ) as Array<{ id: string; reason: { code: string } }>
    expect(kept.length + dropped.length).toBe(13)
    // Each stage's line counts its own drops; together they are every dropped item.
    const stageDrops = [/4\. verify .*; (\d+) dropped/, /5\. align .*; (\d+) dropped/].map((re) =>
      Number(re.exec(demo.out)?.[1])
    )
    expect(stageDrops[0]! + stageDrops[1]!).toBe(dropped.length)
    const rewritten =
      kept.find((i) => i.keptAs !== "initial-medium") ?? dropped.find((i) => i.reason.code === "max-rounds")!
    const shown = await fastcot("inspect", rewritten.id.slice(0, 8), "--workspace", ".fastcot-demo")
    expect(shown.code).toBe(0)
    expect(shown.out).toContain(`item ${rewritten.id}`)
    expect(shown.out).toMatch(/judge +verdict (easy|hard)/)
    expect(shown.out).toContain("original: teacher")
    const json = JSON.parse((await fastcot("inspect", rewritten.id, "--json", "--workspace", ".fastcot-demo")).out)
    expect(json.item.rounds.length).toBeGreaterThanOrEqual(4)
    expect((await fastcot("inspect", "i_nope", "--workspace", ".fastcot-demo")).code).toBe(2)
    // The export checks every example against a chat template: the demo model's own (ChatML) keeps
    // them whole; one that keeps only an assistant turn's last paragraph fails the export by name.
    const model = join(".fastcot-demo", "models", "tiny-qwen2")
    const checked = await fastcot("export", "--chat-template", model, "--out", "ok/", "--workspace", ".fastcot-demo")
    expect(checked.code, checked.err).toBe(0)
    expect(checked.out).toContain(
      `chat template ${join(model, "tokenizer_config.json")}: all ${kept.length} examples keep their whole assistant turn`
    )
    const template = (
      JSON.parse(readFileSync(join(cwd, model, "tokenizer_config.json"), "utf8")) as { chat_template: string }
    ).chat_template
    writeFileSync(
      join(cwd, "lossy.jinja"),
      template.replace(
        "message['content']",
        "(message['content'].split('\\n\\n') | last if message['role'] == 'assistant' else message['content'])"
      )
    )
    const lossy = await fastcot(
      "export",
      "--chat-template",
      "lossy.jinja",
      "--out",
      "lossy/",
      "--workspace",
      ".fastcot-demo"
    )
    expect(lossy.code).toBe(1)
    expect(lossy.err).toMatch(
      new RegExp(
        `the chat template \\(lossy\\.jinja\\) would drop part of the assistant turn in ${kept.length} of ${kept.length} examples, e\\.g\\. i_`
      )
    )
    expect((await fastcot("export", "--chat-template", "nothing-here", "--workspace", ".fastcot-demo")).err).toContain(
      "--chat-template nothing-here: cannot use it as a chat template: no such file or folder"
    )
    // A trainer version: its arguments, the measured limit, and a lower one warned about with counts.
    const swift = await fastcot(
      "export",
      "--trainer",
      "swift@3",
      "--base-model",
      "Qwen/Qwen3-8B",
      "--out",
      "sw/",
      "--workspace",
      ".fastcot-demo"
    )
    expect(swift.code, swift.err).toBe(0)
    expect(swift.out).toMatch(/cutoff\s+\d+ tokens \(the longest example, \d+ tokens, rounded up\)/)
    expect(swift.out).toContain("template    qwen3_nothink: all")
    const script = readFileSync(join(cwd, "sw", "train_swift.sh"), "utf8")
    expect(script).toContain("--train_type full")
    expect(script).toContain("--template qwen3_nothinking")
    const tight = await fastcot(
      "export",
      "--trainer",
      "llamafactory",
      "--cutoff-len",
      "64",
      "--out",
      "lf/",
      "--workspace",
      ".fastcot-demo"
    )
    expect(tight.code, tight.err).toBe(0)
    expect(tight.err).toMatch(
      new RegExp(`warn: ${kept.length} examples are longer than the trainer's limit of 64 tokens`)
    )
    expect((await fastcot("export", "--trainer", "swift@9", "--workspace", ".fastcot-demo")).err).toContain(
      "--trainer: no config for swift@9"
    )
  }, 150_000)

  it("grades saved predictions with eval, then compares runs with report (Markdown and HTML)", async () => {
    const shared = join(__dirname, "..", "..", "..", "..", "shared", "data")
    const rows = readFileSync(join(shared, "aime24", "test.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: number; answer: string })
    writeFileSync(
      join(cwd, "p.jsonl"),
      rows
        .map((r, i) => JSON.stringify({ id: r.id, output: i < 15 ? `\\boxed{${r.answer}}` : "\\boxed{-1}" }))
        .join("\n")
    )
    /** Grades p.jsonl on `bench` from the shared data into `out`. */
    const gradeSaved = (bench: string, out: string) =>
      fastcot("eval", "--predictions", "p.jsonl", "--bench", bench, "--data", shared, "--out", out, "--no-tui")
    const r = await gradeSaved("aime24", "run1")
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain("| predictions | 50.0 ± ")
    const report = await fastcot("report", "run1", "run1/results.json", "--html", "r.html")
    expect(report.code).toBe(0)
    expect(readFileSync(join(cwd, "r.html"), "utf8")).toContain("<svg")
    expect((await fastcot("eval", "--bench", "aime24")).code).toBe(2)
    // A mistyped benchmark gets a suggestion; a --data folder without its file is named before any work.
    const typo = await fastcot("eval", "--predictions", "p.jsonl", "--bench", "gpqa")
    expect(typo.code).toBe(2)
    expect(typo.err).toContain("--bench: unknown gpqa (did you mean gpqa_diamond?)")
    // The names as people write them are the benchmarks they name.
    const named = await gradeSaved("AIME 2024", "named")
    expect(named.code, named.err).toBe(0)
    expect(named.out).toContain("| predictions | 50.0 ± ")
    const noData = await fastcot(
      "eval",
      "--predictions",
      "p.jsonl",
      "--bench",
      "aime24,mmlu_pro",
      "--data",
      shared,
      "--no-tui"
    )
    expect(noData.code).toBe(2)
    expect(noData.err).toContain(`--data ${shared}: no file for mmlu_pro (mmlu_pro/test.jsonl`)
    expect(noData.err).not.toContain("aime24 (")
    const missing = await fastcot("report", "missing")
    expect(missing.code).toBe(2)
    expect(missing.err).toContain("missing: no such results file")
    // Files edited by hand are read through their Schemas: the error names the file, line and field.
    mkdirSync(join(cwd, "run2"))
    const results = JSON.parse(readFileSync(join(cwd, "run1", "results.json"), "utf8")) as {
      benchmarks: Array<{ summary: Record<string, unknown> }>
    }
    results.benchmarks[0]!.summary["meanOutputTokens"] = "many"
    writeFileSync(join(cwd, "run2", "results.json"), JSON.stringify(results))
    const edited = await fastcot("report", "run1", "run2")
    expect(edited.code).toBe(2)
    expect(edited.err).toMatch(
      /run2\/results\.json: field `benchmarks\.\[0\]\.summary\.meanOutputTokens`: Expected number, actual "many"/
    )
    cpSync(join(cwd, "run1"), join(cwd, "run3"), { recursive: true })
    writeFileSync(
      join(cwd, "run3", "generations.jsonl"),
      readFileSync(join(cwd, "run1", "generations.jsonl"), "utf8") + '{"bench": "aime24", "id": 7}\n'
    )
    const gens = await fastcot("report", "run1", "run3")
    expect(gens.code).toBe(2)
    expect(gens.err).toMatch(/run3\/generations\.jsonl:31: field `id`/)
    // --regrade grades an earlier run's stored outputs again, with this grader, and calls no model.
    const again = await fastcot("eval", "--regrade", "run1", "--data", shared, "--no-tui")
    expect(again.code, again.err).toBe(0)
    expect(again.out).toContain("| predictions | 50.0 ± ")
    const regraded = JSON.parse(
      readFileSync(join(cwd, "run1", `regraded-${GRADER_VERSION.replace(/[^\w.-]+/g, "_")}`, "results.json"), "utf8")
    ) as { settings: { graderVersion: string; extraction: string } }
    expect(regraded.settings).toMatchObject({ graderVersion: GRADER_VERSION, extraction: "fastcot" })
    expect((await fastcot("eval", "--regrade", "nowhere", "--data", shared)).err).toContain(
      "--regrade nowhere: no generations.jsonl there"
    )
    expect(
      (await fastcot("eval", "--regrade", "run1", "--model", "openai:m@http://127.0.0.1:9/v1", "--data", shared)).err
    ).toContain("--regrade grades an earlier run's outputs")
    expect(
      (await fastcot("eval", "--predictions", "p.jsonl", "--bench", "aime24", "--lcb-window", "may", "--data", shared))
        .err
    ).toContain("--lcb-window may: expected YYYY-MM..YYYY-MM")
    expect(
      (
        await fastcot(
          "eval",
          "--predictions",
          "p.jsonl",
          "--bench",
          "aime24",
          "--extraction",
          "lenient",
          "--data",
          shared
        )
      ).code
    ).toBe(2)
    // --extraction official reads MMLU-Pro as its own script does, and results.json says so.
    mkdirSync(join(cwd, "mc", "mmlu_pro"), { recursive: true })
    writeFileSync(
      join(cwd, "mc", "mmlu_pro", "test.jsonl"),
      [1, 2]
        .map((id) =>
          JSON.stringify({
            question_id: id,
            question: `q${id}`,
            options: ["a", "b", "c", "d"],
            answer: "B",
            category: "math"
          })
        )
        .join("\n")
    )
    // Official: the first "answer is (X)" (B), then the last standalone letter (B); fastcot: the last committed answer (C), then none.
    writeFileSync(
      join(cwd, "mc.jsonl"),
      [
        JSON.stringify({ id: 1, output: "The answer is (B). Wait, the answer is (C)." }),
        JSON.stringify({ id: 2, output: "I lean to B" })
      ].join("\n")
    )
    const official = await fastcot(
      "eval",
      "--predictions",
      "mc.jsonl",
      "--bench",
      "mmlu_pro",
      "--extraction",
      "official",
      "--data",
      "mc",
      "--out",
      "mc-official",
      "--no-tui"
    )
    expect(official.code, official.err).toBe(0)
    expect(official.out).toContain("| predictions | 100.0 ± ")
    expect(JSON.parse(readFileSync(join(cwd, "mc-official", "results.json"), "utf8"))).toMatchObject({
      settings: { extraction: "official" },
      benchmarks: [{ officialScorer: expect.stringContaining("MMLU-Pro") }]
    })
    const ours = await fastcot(
      "eval",
      "--predictions",
      "mc.jsonl",
      "--bench",
      "mmlu_pro",
      "--data",
      "mc",
      "--out",
      "mc-fastcot",
      "--no-tui"
    )
    expect(ours.out).toContain("| predictions | 0.0 ± ")
  })

  it("models convert turns a checkpoint into a folder inspect calls converted; a broken one names its file and tensor", async () => {
    buildQwen2Checkpoint({ dir: join(cwd, "ckpt"), seed: 3, dtype: "BF16", shards: 2, tiedEmbeddings: false })
    const converted = await fastcot("models", "convert", "ckpt", "out", "--variants", "fp32,q4", "--threads", "2")
    expect(converted.code, converted.err).toBe(0)
    expect(converted.out.split("\n")).toEqual(
      expect.arrayContaining([join("out", "onnx", "model.onnx"), join("out", "onnx", "model_q4.onnx")])
    )
    expect(converted.err).toContain("writing onnx/model_q4.onnx")
    const text = (await fastcot("models", "inspect", "out")).out
    expect(text).toContain("converted by fastcot from")
    expect((await fastcot("models", "convert", "ckpt", "out2", "--threads", "0")).err).toContain(
      "--threads: 0: at least 1"
    )
    // One shard cut short: refused before any tensor is read, naming the file and the tensor.
    const shard = join(cwd, "ckpt", "model-00002-of-00002.safetensors")
    truncateSync(shard, statSync(shard).size - 64)
    const broken = await fastcot("models", "convert", "ckpt", "out3", "--variants", "q4", "--threads", "2")
    expect(broken.code).toBe(2)
    expect(broken.err).toMatch(
      /model-00002-of-00002\.safetensors: tensor \S+: its data .* runs past the end of the file/
    )
    // It leaves nothing behind: no folder, no half-written files beside it.
    expect(readdirSync(cwd).filter((f) => f.includes("out3"))).toEqual([])
  })

  it("builds a local model, inspects it, and evaluates it on MATH-500 offline", async () => {
    const built = await fastcot("models", "build", "tiny", "--variants", "fp32,q4")
    expect(built.code, built.err).toBe(0)
    expect(built.err).toContain("random weights")
    const report = JSON.parse((await fastcot("models", "inspect", "tiny", "--json")).out) as {
      architecture: string
      variants: Array<{ name: string; graph: { runnable: boolean } }>
      missing: Array<string>
    }
    expect(report.architecture).toBe("Qwen2ForCausalLM")
    expect(report.variants.map((v) => [v.name, v.graph.runnable])).toEqual([
      ["fp32", true],
      ["q4", true]
    ])
    const text = (await fastcot("models", "inspect", "tiny")).out
    expect(text).toContain("chat template    yes")
    // The builder leaves q4's arithmetic unset, as the common quantization scripts do: 2 layers x 7 products + the LM head.
    expect(text).toContain("15 4-bit products on integer kernels")
    // Two layers, a query and a key rotary in each, fused as generation fuses them.
    expect(text).toContain("4 rotary embeddings fused")
    expect((await fastcot("models", "inspect", "nowhere")).code).toBe(2)
    // Timed variant by variant, q4 both ways.
    const timed = await fastcot(
      "models",
      "bench",
      "tiny",
      "--prompt",
      "8",
      "--new",
      "4",
      "--rounds",
      "1",
      "--batch",
      "2",
      "--q4-compute",
      "both",
      "--threads",
      "1",
      "--json"
    )
    expect(timed.code, timed.err).toBe(0)
    const rows = JSON.parse(timed.out) as Array<{
      variant: string
      q4Compute?: string
      int8Products: number
      residentMiB?: number
      decodeTokensPerSecond: number
      batchTokensPerSecond: number
    }>
    expect(rows.map((r) => [r.variant, r.q4Compute, r.int8Products])).toEqual([
      ["fp32", undefined, 0],
      ["q4", "int8", 15],
      ["q4", "as-exported", 0]
    ])
    expect(rows.every((r) => r.decodeTokensPerSecond > 0 && r.batchTokensPerSecond > 0)).toBe(true)
    // Each variant ran in a process of its own, which reports its resident memory.
    expect(rows.every((r) => typeof r.residentMiB === "number" && r.residentMiB > 10)).toBe(true)
    expect((await fastcot("models", "bench", "tiny", "--prompt", "8", "--new", "4", "--rounds", "1")).out).toMatch(
      /variant +load +RSS +TTFT[^\n]*\n(fp32|q4) +[\d.]+ s +\d+ MiB/
    )
    // Packed products, without and with, side by side: 2 layers x (key and value into query, up into gate).
    const packed = await fastcot(
      "models",
      "bench",
      "tiny",
      "--variants",
      "q4",
      "--prompt",
      "8",
      "--new",
      "4",
      "--rounds",
      "1",
      "--batch",
      "0",
      "--pack-products",
      "both",
      "--threads",
      "1",
      "--json"
    )
    expect(packed.code, packed.err).toBe(0)
    expect((JSON.parse(packed.out) as Array<{ packedProducts?: number }>).map((r) => r.packedProducts)).toEqual([0, 6])
    // Rotary embeddings fused and as exported, side by side: a query and a key rotary in each of 2 layers.
    const rotary = await fastcot(
      "models",
      "bench",
      "tiny",
      "--variants",
      "fp32",
      "--prompt",
      "8",
      "--new",
      "4",
      "--rounds",
      "1",
      "--batch",
      "0",
      "--rotary",
      "both",
      "--threads",
      "1"
    )
    expect(rotary.code, rotary.err).toBe(0)
    expect(rotary.out).toMatch(/\nfp32 +[\d.]+ s[^\n]*\nfp32 rotary as exported +[\d.]+ s/)
    // A misspelt variant stops the bench before any variant is timed.
    const unknown = await fastcot("models", "bench", "tiny", "--variants", "q4,fp16")
    expect(unknown.code).toBe(2)
    expect(unknown.err).toContain('no variant "fp16"')
    expect(unknown.err).not.toContain("q4 (int8): loading")
    const shared = join(__dirname, "..", "..", "..", "..", "shared", "data")
    const r = await fastcot(
      "eval",
      "--model",
      "onnx:tiny#q4",
      "--bench",
      "math500",
      "--limit",
      "4",
      "--max-tokens",
      "12",
      "--data",
      shared,
      "--out",
      "ev",
      "--threads",
      "1"
    )
    expect(r.code, r.err).toBe(0)
    const results = JSON.parse(readFileSync(join(cwd, "ev", "results.json"), "utf8")) as {
      model: string
      benchmarks: Array<{ name: string; questions: number }>
    }
    expect(results.model).toBe("tiny-q4")
    const gens = readFileSync(join(cwd, "ev", "generations.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { outputTokens?: number })
    expect(gens).toHaveLength(4)
    const exported = await fastcot(
      "eval",
      "--model",
      "onnx:tiny#q4",
      "--q4-compute",
      "as-exported",
      "--bench",
      "math500",
      "--limit",
      "2",
      "--max-tokens",
      "4",
      "--data",
      shared,
      "--out",
      "ev-exported",
      "--threads",
      "1"
    )
    expect(exported.code, exported.err).toBe(0)
    expect(
      (JSON.parse(readFileSync(join(cwd, "ev-exported", "results.json"), "utf8")) as { model: string }).model
    ).toBe("tiny-q4-as-exported")
    expect(
      (
        await fastcot(
          "eval",
          "--model",
          "onnx:tiny#q4",
          "--q4-compute",
          "float",
          "--bench",
          "math500",
          "--data",
          shared
        )
      ).code
    ).toBe(2)
    // The file's own rotary nodes, on request: results under another name.
    const unfused = await fastcot(
      "eval",
      "--model",
      "onnx:tiny#q4",
      "--rotary",
      "as-exported",
      "--bench",
      "math500",
      "--limit",
      "2",
      "--max-tokens",
      "4",
      "--data",
      shared,
      "--out",
      "ev-rotary",
      "--threads",
      "1"
    )
    expect(unfused.code, unfused.err).toBe(0)
    expect((JSON.parse(readFileSync(join(cwd, "ev-rotary", "results.json"), "utf8")) as { model: string }).model).toBe(
      "tiny-q4-rotary-as-exported"
    )
    expect(
      (await fastcot("eval", "--model", "onnx:tiny#q4", "--rotary", "off", "--bench", "math500", "--data", shared)).code
    ).toBe(2)
    // A model file that cannot load fails every generation: the command says so and exits 1,
    // instead of reporting a score of 0.
    cpSync(join(cwd, "tiny"), join(cwd, "tinybad"), { recursive: true })
    writeFileSync(join(cwd, "tinybad", "onnx", "model_q4.onnx"), "not a model")
    const bad = await fastcot(
      "eval",
      "--model",
      "onnx:tinybad#q4",
      "--bench",
      "math500",
      "--limit",
      "2",
      "--max-tokens",
      "4",
      "--data",
      shared,
      "--out",
      "evbad",
      "--threads",
      "1"
    )
    expect(bad.code).toBe(1)
    expect(bad.err).toContain("2 of 2 generations failed")
    expect(bad.err).toContain("model_q4.onnx")
    expect(bad.out).toContain("Failed generations")
  })

  it("float16 variants are built, inspected and evaluated, computed in float32 unless asked otherwise", async () => {
    const built = await fastcot("models", "build", "tiny16", "--variants", "fp16,q4f16")
    expect(built.code, built.err).toBe(0)
    const text = (await fastcot("models", "inspect", "tiny16")).out
    // Widened, their rotary tables are float32 and fused.
    expect(text).toMatch(
      /fp16 .*float16, runnable \(2 layers, float32 cache; float16 computed in float32, --f16-compute as-exported keeps float16; 4 rotary embeddings fused, [^)]*\)/
    )
    expect(text).toMatch(
      /q4f16 .*runnable \(2 layers, float32 cache; float16 computed in float32, [^;]*; 15 4-bit products on integer kernels/
    )
    const timed = await fastcot(
      "models",
      "bench",
      "tiny16",
      "--prompt",
      "8",
      "--new",
      "4",
      "--rounds",
      "1",
      "--batch",
      "0",
      "--threads",
      "1",
      "--json"
    )
    expect(timed.code, timed.err).toBe(0)
    expect(
      (JSON.parse(timed.out) as Array<{ variant: string; f16Widened?: number }>).map((r) => [
        r.variant,
        (r.f16Widened ?? 0) > 0
      ])
    ).toEqual([
      ["q4f16", true],
      ["fp16", true]
    ])
    // Both arithmetics side by side, each in a process of its own.
    const both = await fastcot(
      "models",
      "bench",
      "tiny16",
      "--variants",
      "fp16",
      "--f16-compute",
      "both",
      "--prompt",
      "8",
      "--new",
      "4",
      "--rounds",
      "1",
      "--batch",
      "0",
      "--threads",
      "1"
    )
    expect(both.code, both.err).toBe(0)
    expect(both.out).toMatch(/\nfp16 \(in float32\) +[\d.]+ s[^\n]*\nfp16 +[\d.]+ s/)
    const shared = join(__dirname, "..", "..", "..", "..", "shared", "data")
    for (const [flags, name] of [
      [[], "tiny16-q4f16"],
      [["--f16-compute", "as-exported"], "tiny16-q4f16-f16-as-exported"]
    ] as const) {
      const out = `ev16-${flags.length}`
      const r = await fastcot(
        "eval",
        "--model",
        "onnx:tiny16#q4f16",
        ...flags,
        "--bench",
        "math500",
        "--limit",
        "2",
        "--max-tokens",
        "4",
        "--data",
        shared,
        "--out",
        out,
        "--threads",
        "1"
      )
      expect(r.code, r.err).toBe(0)
      expect((JSON.parse(readFileSync(join(cwd, out, "results.json"), "utf8")) as { model: string }).model).toBe(name)
    }
    const wrong = await fastcot(
      "eval",
      "--model",
      "onnx:tiny16#fp16",
      "--f16-compute",
      "half",
      "--bench",
      "math500",
      "--data",
      shared
    )
    expect([wrong.code, wrong.err]).toEqual([
      2,
      expect.stringContaining('--f16-compute: "half" is not one of auto, float32, as-exported')
    ])
    expect((await fastcot("models", "build", "tiny17", "--variants", "fp8")).err).toContain(
      "known: fp32, int8, q4, fp16, q4f16"
    )
  })

  it("a tiny local ONNX model drives the pipeline (teacher, k=3 judges by guided choice, the rewriter when a verdict asks), counting with its tokenizer", async () => {
    expect((await fastcot("models", "build", "tiny")).code).toBe(0)
    const rows = [
      { question: "What is 2+3?", answer: "5" },
      { question: "What is 4+4?", answer: "8" },
      { question: "What is 6+1?", answer: "7", solution: "Six plus one is seven, so the answer is \\boxed{7}." },
      { question: "What is 9-2?", answer: "7", solution: "Nine minus two is seven: \\boxed{7}." },
      { question: "What is 3*3?", answer: "9", solution: "Three threes make nine: \\boxed{9}." }
    ]
    writeFileSync(join(cwd, "mix.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"))
    expect((await fastcot("import", "mix.jsonl")).code).toBe(0)
    const local = "onnx:tiny"
    writeFileSync(
      join(cwd, "local.yaml"),
      [
        "name: all-local",
        "models:",
        ...["teacher", "rewriter", "judge"].flatMap((role) => [
          `  ${role}:`,
          "    endpoints:",
          `      - model: ${local}`,
          "        concurrency: 4",
          "    sampling: { temperature: 0.8, max_tokens: 24 }"
        ]),
        "stages:",
        "  align: { maxRounds: 2, judges: 3 }"
      ].join("\n")
    )
    const r = await fastcot("run", "local.yaml", "--no-tui", "--tokenizer", "tiny")
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain("onnx:tiny")
    const status = JSON.parse((await fastcot("status", "--json")).out) as {
      items: number
      pending: number
      dropReasons: Record<string, number>
      kept: number
      llm: { byRole: Record<string, { calls: number }> }
      tokens: { tokenizer: string | null }
    }
    // three imported traces, and one teacher sample per problem
    expect(status.items).toBe(8)
    expect(status.pending).toBe(0)
    // random weights: the teacher's answers run out of tokens or are wrong; the imported traces reach the judge
    const verifyDrops = ["truncated", "answer-mismatch", "no-answer"].reduce(
      (n, code) => n + (status.dropReasons[code] ?? 0),
      0
    )
    expect(verifyDrops, JSON.stringify(status.dropReasons)).toBe(5)
    expect(status.llm.byRole["teacher"]!.calls).toBe(5)
    expect(status.llm.byRole["judge"]!.calls).toBeGreaterThanOrEqual(9)
    if (status.kept > 0) expect(status.tokens.tokenizer).toBe("tiny")
    expect((await fastcot("run", "local.yaml", "--no-tui", "--tokenizer", "nowhere")).code).toBe(2)
    // A broken model folder stops the run before it starts, naming the file and the field.
    const config = JSON.parse(readFileSync(join(cwd, "tiny", "config.json"), "utf8")) as Record<string, unknown>
    writeFileSync(join(cwd, "tiny", "config.json"), JSON.stringify({ ...config, num_key_value_heads: "two" }))
    const broken = await fastcot("run", "local.yaml", "--no-tui")
    expect(broken.code).toBe(2)
    expect(broken.err).toMatch(
      /models\.teacher: .*tiny\/config\.json: field `num_key_value_heads`: Expected number, actual "two"/
    )
    expect(broken.err).not.toContain("Expected undefined")
    const evalBroken = await fastcot("eval", "--model", "onnx:tiny#int8", "--bench", "math500", "--data", "x")
    expect(evalBroken.code).toBe(2)
    expect(evalBroken.err).toContain("--model:")
  })

  it("prints bash and zsh completion scripts that complete the commands", async () => {
    const bash = await fastcot("--completions", "bash")
    expect(bash.code).toBe(0)
    writeFileSync(join(cwd, "c.bash"), bash.out)
    const r = spawnSync(
      "bash",
      [
        "-c",
        `source ${join(cwd, "c.bash")}; COMP_WORDS=(fastcot ex); COMP_CWORD=1; _fastcot_bash_completions fastcot ex fastcot; echo "\${COMPREPLY[@]}"`
      ],
      { encoding: "utf8" }
    )
    expect(r.stdout.split(/\s+/)).toEqual(expect.arrayContaining(["export"]))
    const zsh = await fastcot("--completions", "zsh")
    expect(zsh.code).toBe(0)
    expect(zsh.out).toContain("#compdef fastcot")
  })

  it("ui and serve require a token: refused without one beyond loopback; ui prints the address that signs in", async () => {
    const ui = await fastcot("ui", "--host", "0.0.0.0", "--no-token", "--port", "0")
    expect(ui.code).toBe(2)
    expect(ui.err).toContain("--no-token is refused on 0.0.0.0")
    const serve = await fastcot("serve", "--model", "onnx:./nowhere", "--host", "0.0.0.0", "--no-token")
    expect(serve.code).toBe(2)
    expect(serve.err).toContain("--no-token is refused on 0.0.0.0")
    const short = await fastcotWith({ ...process.env, NO_COLOR: "1", FASTCOT_TOKEN: "short" }, "ui", "--port", "0")
    expect(short.code).toBe(2)
    expect(short.err).toContain("FASTCOT_TOKEN must be at least 16 characters")

    const token = "a-token-from-the-environment-42"
    const child = spawn(process.execPath, [BIN, "ui", "--port", "0"], {
      cwd,
      env: { ...process.env, NO_COLOR: "1", FASTCOT_TOKEN: token }
    })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ""
        child.stdout.on("data", (d) => {
          out += d
          const m = /fastcot ui on (\S+)/.exec(out)
          if (m) resolve(m[1]!)
        })
        child.once("exit", (code) => reject(new Error(`fastcot ui exited with ${code}`)))
      })
      expect(url).toContain(`?token=${token}`)
      const origin = new URL(url).origin
      expect((await fetch(`${origin}/`)).status).toBe(401)
      const signedIn = await fetch(url, { redirect: "manual" })
      expect(signedIn.status).toBe(303)
      expect(signedIn.headers.get("set-cookie")).toMatch(/HttpOnly; SameSite=Strict/)
    } finally {
      child.kill("SIGTERM")
    }
  })

  it("two imports of one file at once into one SQLite workspace: each counts its own, the file's counts are right", async () => {
    const rows = 200_000
    writeFileSync(
      join(cwd, "many.jsonl"),
      Array.from({ length: rows }, (_, i) => JSON.stringify({ question: `${i} * 3?`, answer: String(3 * i) })).join(
        "\n"
      ) + "\n"
    )
    expect((await fastcot("init", "ws")).code).toBe(0)
    const both = await Promise.all([
      fastcot("import", "many.jsonl", "--workspace", "ws", "--json"),
      fastcot("import", "many.jsonl", "--workspace", "ws", "--json")
    ])
    const reports = both.map((r) => {
      expect(r.code, r.err).toBe(0)
      return JSON.parse(r.out).files[0]
    })
    // Both were at work on the file at once, and between them added each problem once.
    for (const r of reports) expect(r.byThisRun.problemsAdded).toBeGreaterThan(0)
    expect(reports[0].byThisRun.problemsAdded + reports[1].byThisRun.problemsAdded).toBe(rows)
    for (const r of reports) expect(r).toMatchObject({ rows, problemsAdded: rows, duplicates: 0, rejected: 0 })
    const status = JSON.parse((await fastcot("status", "--workspace", "ws", "--json")).out)
    expect(status.problems).toBe(rows + 13)
    expect(status.imports.find((i: { path: string }) => i.path.endsWith("many.jsonl"))).toMatchObject({
      rows,
      problemsAdded: rows,
      done: true
    })
  })

  it("a resumed import says how much of the file's count it added itself", async () => {
    writeFileSync(
      join(cwd, "six.jsonl"),
      Array.from({ length: 6 }, (_, i) => JSON.stringify({ question: `${i} + 1?`, answer: String(i + 1) })).join("\n") +
        "\n"
    )
    // An import stopped after its first batch of two rows, with the options the command uses.
    const { store, close } = openSqliteStore(join(cwd, "ws", "fastcot.db"))
    const stopped = await Effect.runPromiseExit(
      importFile(join(cwd, "six.jsonl"), {
        batchSize: 2,
        long: { above: 1024, count: (text: string) => text.length },
        onProgress: () => {
          throw new Error("stopped")
        }
      }).pipe(Effect.provideService(RunStore, store))
    )
    close()
    expect(stopped._tag).toBe("Failure")
    const r = await fastcot("import", "six.jsonl", "--workspace", "ws")
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain("six.jsonl: 6 rows (resumed), 6 new problems, 0 new traces, 0 duplicates, 0 rejected")
    expect(r.out).toContain(
      "; of these, this import added 4 problems and 0 traces, the rest the interrupted import it resumed"
    )
  })

  it("export warns when the validation split leaves the training split empty", async () => {
    const problems = sumProblems(1)
    const { store, close } = openSqliteStore(join(cwd, "one", "fastcot.db"))
    await Effect.runPromise(store.commitImportBatch(finishedImport(problems, keptSumItems(problems))))
    close()
    const all = await fastcot("export", "--val-fraction", "0.99", "--out", "one-out/", "--workspace", "one")
    expect(all.code, all.err).toBe(0)
    expect(all.out).toContain("exported 1 kept items (0 train, 1 validation)")
    expect(all.err).toContain("warn: the validation split took all 1 kept items and left the training split empty")
    const none = await fastcot("export", "--out", "one-out/", "--workspace", "one")
    expect(none.err).not.toContain("training split empty")
  })

  it("review accepts, rejects with a reason and edits kept items; status, inspect and export show each decision", async () => {
    // A workspace with five kept items ("What is i + i?", answer 2i), written through the store.
    const ws = join(cwd, "ws")
    const problems = sumProblems(5)
    const ids = keptSumItems(problems).map((i) => i.id as string)
    const { store, close } = openSqliteStore(join(ws, "fastcot.db"))
    await Effect.runPromise(store.commitImportBatch(finishedImport(problems, keptSumItems(problems))))
    close()
    const review = (...args: Array<string>) => fastcot("review", ...args, "--workspace", "ws")
    const accepted = await review(ids[0]!, "--accept", "--reviewer", "ana")
    expect(accepted.code, accepted.err).toBe(0)
    expect(accepted.out).toContain(`${ids[0]}: accepted by ana`)
    const rejected = await fastcotWith(
      { ...process.env, NO_COLOR: "1", FASTCOT_REVIEWER: "ben" },
      "review",
      ids[1]!,
      "--reject",
      "right answer, wrong reasoning",
      "--workspace",
      "ws"
    )
    expect(rejected.out).toContain(`${ids[1]}: rejected by ben (right answer, wrong reasoning)`)
    writeFileSync(join(cwd, "wrong.txt"), "Three and three make seven: \\boxed{7}.")
    const refused = await review(ids[2]!, "--edit", "wrong.txt", "--reviewer", "ana")
    expect(refused.code).toBe(1)
    expect(refused.err).toContain("the edited trace no longer reaches the answer")
    writeFileSync(join(cwd, "right.txt"), "Three and three make six: \\boxed{6}.")
    const edited = await review(ids[2]!, "--edit", "right.txt", "--reviewer", "ana")
    expect(edited.code, edited.err).toBe(0)
    expect(edited.out).toContain(`${ids[2]}: edited by ana; the edited trace reaches the reference answer`)
    expect((await review(ids[3]!, "--accept", "--reject", "x")).code).toBe(2)
    expect((await review("i_0000000000000099", "--accept")).code).toBe(1)

    const status = await fastcot("status", "--workspace", "ws")
    expect(status.out).toMatch(/reviewed by people +3 \(1 accepted, 1 edited, 1 rejected\)/)
    expect(status.out).toMatch(/ ana +2/)
    const shown = await fastcot("inspect", ids[2]!, "--workspace", "ws")
    expect(shown.out).toContain("review: edited by ana at ")
    expect(shown.out).toContain("Three and three make six")
    const all = await fastcot("export", "--out", "all/", "--workspace", "ws")
    expect(all.code, all.err).toBe(0)
    expect(all.out).toContain("exported 4 kept items")
    expect(all.out).toContain("1 accepted, 1 edited (the person's trace), 1 rejected and left out, 2 unreviewed")
    const reviewed = await fastcot("export", "--reviewed-only", "--out", "reviewed/", "--workspace", "ws")
    expect(reviewed.out).toContain("exported 2 kept items")
    const lines = readFileSync(join(cwd, "reviewed", "train.jsonl"), "utf8")
      .trim()
      .split("\n")
    expect(
      lines.map((l) => (JSON.parse(l) as { messages: Array<{ content: string }> }).messages.at(-1)!.content)
    ).toEqual(
      expect.arrayContaining([
        expect.stringContaining("Add 1 to itself"),
        expect.stringContaining("Three and three make six")
      ])
    )
  })

  it("prints help for each command", async () => {
    const commands = [
      "init",
      "import",
      "status",
      "run",
      "inspect",
      "review",
      "export",
      "eval",
      "report",
      "serve",
      "models inspect",
      "models bench",
      "models build",
      "demo"
    ]
    const results = await Promise.all(commands.map((cmd) => fastcot(...cmd.split(" "), "--help")))
    for (const [i, r] of results.entries()) {
      expect(r.code, commands[i]).toBe(0)
      expect(r.out, commands[i]).toContain("Examples:")
    }
  })
})
