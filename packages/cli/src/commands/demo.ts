import { Command, Options } from "@effect/cli"
import {
  ensureDirSync,
  applyOverrides,
  checkLocalModel,
  defaultPipelineText,
  EvalModel,
  exportDataset,
  LanguageModel,
  parseModelSpec,
  parsePipeline,
  QwenTokenCounterLive,
  RunSession,
  RunStore,
  sha256Hex,
  workspacePaths
} from "@fastcot/core"
import { buildQwen2Model, type ScriptedRequest, startScriptedServer } from "@fastcot/core/testing"
import { evaluate, makeSandbox, SandboxLive, verifierFor } from "@fastcot/evaluator"
import * as Exit from "effect/Exit"
import { writeFileSync } from "node:fs"
import { liveRun } from "../tui/liveRun.js"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { readFileSync } from "node:fs"
import { rm } from "node:fs/promises"
import { join, relative } from "node:path"
import * as Option from "effect/Option"
import { usage } from "../failure.js"
import { dashboardTerminal, stdout, storeFromEnv, workspaceStoreLayer } from "../shared.js"
import { initWorkspace, SAMPLE_PROBLEMS } from "./init.js"

const workspace = Options.text("workspace").pipe(
  Options.withDefault(".fastcot-demo"),
  Options.withDescription("The demo's workspace (recreated on every run).")
)

/**
 * The demo's SCRIPTED models (no model behind them): a teacher that knows the sample problems'
 * answers (and gets one wrong on purpose), a judge whose verdicts follow a hash of the trace, and
 * rewriters that keep the answer. Their text is canned; the pipeline around them is the real one.
 */
const demoScript = () => {
  const answers = new Map<string, string>()
  for (const line of readFileSync(SAMPLE_PROBLEMS, "utf8").trim().split("\n")) {
    const row = JSON.parse(line) as { problem?: string; question?: string; answer?: string }
    if (row.answer !== undefined) answers.set((row.problem ?? row.question)!, row.answer)
  }
  return (r: ScriptedRequest) => {
    const system = r.messages[0]?.content ?? ""
    const user = r.messages[r.messages.length - 1]?.content ?? ""
    if (system.includes("highly capable evaluator")) {
      const rewritten = /Reasoning process:\n\(rewritten/.test(user)
      const h = parseInt(sha256Hex(user).slice(0, 2), 16)
      return { content: rewritten ? "medium" : (["easy", "medium", "hard", "medium"] as const)[h % 4]! }
    }
    if (system.includes("extending") || system.includes("simplifying")) {
      const answer = /Answer:\n(.*)\n/.exec(user)?.[1] ?? ""
      const verb = system.includes("extending") ? "expanded" : "simplified"
      return {
        content: `(rewritten, ${verb}; scripted text)\n\nStep 1: restate what is asked.\n\nStep 2: work it out.\n\nSo the answer is \\boxed{${answer}}.`
      }
    }
    if (user.includes("Fibonacci")) {
      return {
        content:
          "(scripted teacher) Iterate the recurrence.\n\n```python\nn = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nprint(a)\n```"
      }
    }
    if (user.includes("print their sum")) {
      // Wrong on purpose: the sandbox's tests catch it.
      return {
        content: "(scripted teacher) Read and add.\n\n```python\na, b = map(int, input().split())\nprint(a - b)\n```"
      }
    }
    const question = [...answers.keys()].find((q) => user.startsWith(q))
    const answer = question === undefined ? "?" : question.includes("hexagon") ? "540" : answers.get(question)!
    return {
      content: `(scripted teacher, canned text) Step 1: read the problem.\n\nStep 2: compute.\n\nThe answer is \\boxed{${answer}}.`
    }
  }
}

const judgeModel = Options.text("judge-model").pipe(
  Options.optional,
  Options.withDescription(
    "The local judge: onnx:DIR[#variant] (default: a tiny Qwen2 model the demo builds, with random weights)."
  )
)

export const demoCommand = Command.make("demo", { workspace, judgeModel }, (args) =>
  Effect.scoped(
    Effect.gen(function* () {
      const paths = workspacePaths(args.workspace)
      yield* Effect.promise(() => rm(paths.root, { recursive: true, force: true }))
      const rel = (p: string) => relative(process.cwd(), p) || p
      yield* stdout(
        `fastcot demo: a fresh workspace in ${rel(paths.root)}, on the embedded defaults (SQLite store, sample problems)`
      )
      const { report } = yield* initWorkspace(args.workspace)
      yield* stdout(
        `1. import   ${report.rows} sample problems (math, science multiple choice, code) -> ${report.problemsAdded} problems`
      )
      const models = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startScriptedServer({
            latencyMs: 30,
            faultRate: 0.15,
            faults: ["429", "500"],
            retryAfterSeconds: 0.05,
            script: demoScript()
          })
        ),
        (server) => Effect.promise(() => server.close())
      )
      yield* stdout(
        `2. models   SCRIPTED teacher and rewriter on ${models.baseUrl}: canned text, no model behind them,`
      )
      yield* stdout("           15% injected 429/500 faults to show the retries")
      let judge = Option.getOrUndefined(args.judgeModel)
      if (judge === undefined) {
        const dir = join(paths.root, "models", "tiny-qwen2")
        buildQwen2Model({ dir, variants: ["fp32"], seed: 1 })
        judge = `onnx:${dir}`
        yield* stdout(
          `           judge: a LOCAL ONNX model run by onnxruntime-node (${rel(dir)}, built now: a tiny Qwen2 with`
        )
        yield* stdout(
          "           random weights, so its verdicts are meaningless; decoding is constrained to easy/medium/hard)"
        )
      } else {
        const parsed = parseModelSpec(judge)
        if (Either.isLeft(parsed) || parsed.right.kind !== "onnx")
          return yield* usage("--judge-model: give onnx:DIR[#variant]")
        yield* checkLocalModel(parsed.right).pipe(Effect.mapError((m) => usage(`--judge-model: ${m}`)))
        yield* stdout(`           judge: the local model ${judge}`)
      }
      const base = Either.getOrThrow(parsePipeline(defaultPipelineText(), "built-in pipeline"))
      const spec = `openai:scripted@${models.baseUrl}`
      const overridden = applyOverrides(base, { teacher: spec, rewriter: spec, judge, concurrency: 4 })
      // The random-weight judge samples (T=1) so that its verdicts vary from round to round.
      const judgeRole = overridden.models.judge!
      const config = {
        ...overridden,
        models: { ...overridden.models, judge: { ...judgeRole, sampling: { ...judgeRole.sampling, temperature: 1 } } }
      }
      const sandbox = makeSandbox()
      const tui = dashboardTerminal({ keys: true })
      const run = yield* Effect.gen(function* () {
        const session = yield* RunSession.make({ config, holder: "fastcot demo", env: {} })
        const { lm } = session
        const store = yield* RunStore
        // On a terminal the demo shows the run's dashboard (p, q, i and ? work as in `fastcot run`).
        const { exit } = yield* liveRun({
          tui,
          title: `demo · ${config.name}`,
          stages: session.stages,
          lm,
          gate: session.gate,
          store,
          onEvent: () => {},
          pipeline: session.pipeline
        })
        if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
        const stats = yield* lm.stats
        const status = yield* store.status
        return { result: exit.value, retries: stats.reduce((n, s) => n + s.retries, 0), status }
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.mergeAll(workspaceStoreLayer(args.workspace), verifierFor(sandbox), QwenTokenCounterLive)),
        Effect.orDie
      )
      const { result, status } = run
      yield* stdout(
        `3. teacher  ${result.teacher?.done ?? 0} traces sampled (${run.retries} retries after injected faults)`
      )
      yield* stdout(
        `4. verify   ${result.verify?.advanced ?? 0} reach the reference answer or pass their tests (code sandbox: ${sandbox.isolation}); ${result.verify?.dropped ?? 0} dropped`
      )
      yield* stdout(
        `5. align    ${status.kept} kept: ${Object.entries(status.keptAs)
          .map(([k, n]) => `${n} ${k}`)
          .join(", ")}; ${result.align?.dropped ?? 0} dropped`
      )
      if (status.dropped > 0)
        yield* stdout(
          `           why items were dropped: ${Object.entries(status.dropReasons)
            .map(([k, n]) => `${n} ${k}`)
            .join(", ")}`
        )
      const exported = yield* exportDataset({
        format: "openai",
        out: join(paths.exports, "openai", "train.jsonl")
      }).pipe(Effect.provide(Layer.merge(workspaceStoreLayer(args.workspace), QwenTokenCounterLive)))
      yield* stdout(
        `6. export   ${exported.counts.train} SFT examples -> ${rel(exported.files.train)} (card: ${rel(exported.files.card)})`
      )
      // 7. An evaluation of the local model on the sample math problems (a MATH-500-style file).
      const data = join(paths.root, "bench-data")
      const samples = readFileSync(SAMPLE_PROBLEMS, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { problem?: string; answer?: string; domain?: string })
      const math = samples
        .filter((x) => x.domain === "math" && x.problem !== undefined)
        .map((x, i) =>
          JSON.stringify({
            problem: x.problem,
            answer: x.answer,
            solution: "",
            subject: "demo",
            level: 1,
            unique_id: `demo/${i}.json`
          })
        )
      ensureDirSync(join(data, "math500"))
      writeFileSync(join(data, "math500", "test.jsonl"), math.join("\n") + "\n")
      if (judge.startsWith("onnx:")) {
        const outDir = join(paths.root, "eval", "demo-judge-model")
        const results = yield* Effect.gen(function* () {
          const { name, lm } = yield* EvalModel.make({ spec: judge, concurrency: 8 })
          return yield* evaluate({
            benches: ["math500"],
            dataDir: data,
            outDir,
            model: name,
            samples: 1,
            preset: "greedy",
            maxTokens: 24,
            concurrency: 8
          }).pipe(Effect.provideService(LanguageModel, lm))
        }).pipe(
          Effect.scoped,
          Effect.provide(Layer.mergeAll(workspaceStoreLayer(args.workspace), QwenTokenCounterLive, SandboxLive())),
          Effect.orDie
        )
        const m = results.benchmarks[0]!.summary
        yield* stdout(
          `7. eval     the local model on ${m.items} sample math problems: ${(100 * m.accuracy).toFixed(1)}% correct, ${m.meanOutputTokens.toFixed(0)} output tokens per answer`
        )
        yield* stdout(
          `           (random weights: 0% is the expected score) -> ${rel(join(outDir, "results.json"))}; npx fastcot report ${rel(outDir)}`
        )
      }
      // FASTCOT_STORE would send the next commands to the database it names: the demo's store is the folder's file.
      const here = `--workspace ${rel(paths.root)}${storeFromEnv() !== undefined ? ` --store ${rel(paths.db)}` : ""}`
      yield* stdout(`done. Look around: npx fastcot status ${here}; npx fastcot inspect ${here}`)
    })
  )
).pipe(
  Command.withDescription(
    "Run the whole recipe offline on the embedded defaults, in a fresh demo workspace, with a scripted teacher and rewriter and a local ONNX judge.\nExamples:\n  fastcot demo\n  fastcot demo --judge-model onnx:./models/Qwen2.5-0.5B-Instruct#q4"
  )
)
