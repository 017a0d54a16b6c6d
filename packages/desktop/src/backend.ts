import {
  applyEvent,
  applyOverrides,
  applyStats,
  type DashboardState,
  defaultPipelineText,
  exportDataset,
  fateDetail,
  importFile,
  initialState,
  inspectModel,
  LanguageModel,
  type LanguageModelShape,
  parsePipeline,
  tokenizerFileCounter,
  QwenTokenCounterLive,
  type RunEvent,
  RunStore,
  runStoreLayer,
  isPostgresUrl,
  isLoopbackHost,
  parseModelSpec,
  STAGES,
  TokenCounter,
  type Verifier,
  workspacePaths,
  workspaceSpending,
  describeSpent,
  ensureDir,
  RunSession,
  EvalModel,
  itemSortValue
} from "@fastcot/core"
import { evalRunFolder, evaluate, makeSandbox, loadEvalResults, SandboxLive, verifierFor } from "@fastcot/evaluator"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { readdir, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import {
  type ApiFailure,
  type ChannelName,
  Channels,
  type ItemDetail,
  type ItemPage,
  type Push,
  type Reply,
  type RunView,
  type StatusView
} from "./contract.js"
import { BadRequest } from "./badRequest.js"
import { itemDetailOf } from "./itemViews.js"
import { makeReviewDesk } from "./reviewDesk.js"

export { BadRequest }

type Services = RunStore | TokenCounter
type Req<C extends ChannelName> = (typeof Channels)[C]["request"]["Type"]
type Runtime = ManagedRuntime.ManagedRuntime<Services, unknown>

/** How a backend that serves others (`fastcot ui`) is limited. */
export interface BackendOptions {
  /** Hosts (or host:port) that runs and evaluations may call besides loopback; unset: any. */
  readonly allowedEndpoints?: ReadonlyArray<string> | undefined
  /** Told of every request refused by the allow-list (the server logs it). */
  readonly onRefused?: ((message: string) => void) | undefined
}

/** What this backend pushes: the contract's pushes, with @fastcot/core's run events. */
export type BackendPush = Push<RunEvent>

/**
 * The desktop app's backend: one workspace (the same fastcot.db the CLI uses), the pipeline run,
 * imports, exports, models and evaluation runs, behind the channels of `contract.ts`. Electron's
 * main process and `fastcot ui` both host one.
 */
export class Backend {
  private workspace: string | undefined
  private runtime: Runtime | undefined
  private run:
    | {
        fiber: Fiber.RuntimeFiber<unknown, unknown>
        gate: Effect.Latch
        lm: LanguageModelShape
        state: DashboardState
        status: RunView["state"]
        timeline: Array<RunView["timeline"][number]>
      }
    | undefined
  private readonly listeners = new Set<(p: BackendPush) => void>()
  private readonly reviews = makeReviewDesk()
  private reviewVerifier: Layer.Layer<Verifier> | undefined
  private ticker: NodeJS.Timeout | undefined
  private evaluation: {
    state: "idle" | "running" | "done" | "failed"
    message?: string | undefined
    progress: Map<string, { bench: string; done: number; total: number; correct: number; tokens: number }>
  } = { state: "idle", progress: new Map() }

  constructor(
    private readonly env: Readonly<Record<string, string | undefined>> = process.env,
    private readonly options: BackendOptions = {}
  ) {}

  /**
   * Refuses a model spec whose endpoint is not on this server's allow-list (loopback is always
   * allowed): a person signed in to a shared `fastcot ui` cannot send the server's API key to a
   * host of their choosing. Without an allow-list (the Electron app) every endpoint is allowed.
   */
  private checkEndpoint(spec: string | undefined): void {
    const allowed = this.options.allowedEndpoints
    if (allowed === undefined || spec === undefined) return
    const parsed = parseModelSpec(spec)
    if (Either.isLeft(parsed) || parsed.right.kind !== "openai") return
    let url: URL
    try {
      url = new URL(parsed.right.baseUrl)
    } catch {
      return
    }
    const host = url.hostname.replace(/^\[|\]$/g, "")
    if (isLoopbackHost(host) || allowed.includes(host) || allowed.includes(url.host)) return
    const message = `the endpoint ${url.host} is not allowed by this server: its owner can allow it with \`fastcot ui --allow-endpoint ${url.host}\``
    this.options.onRefused?.(message)
    throw new BadRequest({ message })
  }

  subscribe(listener: (p: BackendPush) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
  private push(p: BackendPush) {
    for (const l of this.listeners) l(p)
  }

  /** Validates a request against its channel, serves it, validates the reply. Never throws. */
  async handle(channel: string, request: unknown): Promise<unknown | ApiFailure> {
    if (!Object.hasOwn(Channels, channel))
      return { error: { kind: "bad-request", message: `no channel ${JSON.stringify(channel)}` } }
    const c = Channels[channel as ChannelName]
    const decoded = Schema.decodeUnknownEither(c.request as Schema.Schema<unknown, unknown>)(request ?? {})
    if (Either.isLeft(decoded)) {
      return {
        error: {
          kind: "bad-request",
          message: `${channel}: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`
        }
      }
    }
    try {
      const reply = await this.serve(channel as ChannelName, decoded.right)
      return Schema.encodeUnknownSync(c.reply as Schema.Schema<unknown, unknown>)(reply)
    } catch (thrown) {
      // An Effect run by the backend rejects with its failure wrapped: the typed error inside says which kind.
      const e = Runtime.isFiberFailure(thrown) ? Cause.squash(thrown[Runtime.FiberFailureCauseId]) : thrown
      return {
        error: {
          kind: e instanceof BadRequest ? "bad-request" : "failed",
          message: e instanceof Error ? e.message : String(e)
        }
      }
    }
  }

  private async serve(channel: ChannelName, decoded: unknown): Promise<unknown> {
    // `decoded` has passed the channel's request Schema: each case reads it as that type.
    const req = <C extends ChannelName>(_: C) => decoded as Req<C>
    switch (channel) {
      case "workspace.open":
        return this.open(req("workspace.open").path, req("workspace.open").create)
      case "workspace.status":
        return this.status()
      case "import.content":
        return this.importContent(req("import.content").name, req("import.content").content)
      case "models.inspect":
        return this.inspect(req("models.inspect").path)
      case "run.start":
        return this.start(req("run.start"))
      case "run.pause":
        return this.pause(true)
      case "run.resume":
        return this.pause(false)
      case "run.stop":
        return this.stop()
      case "run.view":
        return this.view()
      case "items.list":
        return this.items(req("items.list"))
      case "items.get":
        return this.item(req("items.get").id)
      case "review.queue":
        return this.rt().runPromise(this.reviews.queue(req("review.queue")))
      case "review.decide":
        // The sandbox (for code problems' tests) is found once, on the first edit to verify.
        this.reviewVerifier ??= verifierFor(makeSandbox())
        return this.rt().runPromise(this.reviews.decide(req("review.decide")).pipe(Effect.provide(this.reviewVerifier)))
      case "export.run":
        return this.exportData(req("export.run").format, req("export.run").valFraction)
      case "eval.runs":
        return this.evalRuns()
      case "eval.start":
        return this.evalStart(req("eval.start"))
      case "eval.state":
        return {
          state: this.evaluation.state,
          message: this.evaluation.message,
          progress: [...this.evaluation.progress.values()]
        }
    }
  }

  private rt(): Runtime {
    if (this.runtime === undefined) throw new BadRequest({ message: "no workspace is open: open or create one first" })
    return this.runtime
  }

  async open(path: string, create: boolean): Promise<StatusView> {
    if (
      this.run !== undefined &&
      (this.run.status === "running" || this.run.status === "paused" || this.run.status === "stopping")
    ) {
      throw new BadRequest({ message: "a run is in progress in the current workspace: stop it first" })
    }
    const root = resolve(path)
    const paths = workspacePaths(root)
    // FASTCOT_STORE (fastcot ui --store) puts the run store on a PostgreSQL server several
    // machines share; the workspace folder still holds uploads, exports and evaluations.
    const shared = this.env["FASTCOT_STORE"]
    const location = shared !== undefined && shared !== "" ? shared : paths.db
    if (!create && !isPostgresUrl(location)) {
      const exists = await readdir(root)
        .then((f) => f.includes("fastcot.db"))
        .catch(() => false)
      if (!exists) throw new BadRequest({ message: `${root}: no fastcot workspace there (no fastcot.db)` })
    }
    await ensureDir(root)
    await this.runtime?.dispose()
    this.runtime = ManagedRuntime.make(Layer.mergeAll(runStoreLayer(location), QwenTokenCounterLive)) as Runtime
    this.workspace = root
    this.run = undefined
    return this.status()
  }

  async status(): Promise<StatusView> {
    const s = await this.rt().runPromise(Effect.flatMap(RunStore, (store) => store.status))
    return {
      workspace: this.workspace!,
      problems: s.problems,
      items: s.items,
      pending: s.pending,
      kept: s.kept,
      dropped: s.dropped,
      reviewed: s.reviews.reviewed,
      keptAs: s.keptAs,
      dropReasons: s.dropReasons,
      leftOut: s.flags,
      tokens: { tokenizer: s.tokens.tokenizer, histogram: s.tokens.histogram, ratio: s.tokens.ratio },
      calls: s.llm.calls,
      costUsd: s.llm.costUsd,
      paidTokens: workspaceSpending(s.llm).tokens,
      running: s.running
    }
  }

  async importContent(name: string, content: string) {
    const dir = join(workspacePaths(this.workspace ?? ".").root, "uploads")
    this.rt()
    await ensureDir(dir)
    const file = join(dir, name)
    await writeFile(file, content)
    const report = await this.rt().runPromise(
      importFile(file).pipe(
        Effect.catchTag("ImportError", (e) => Effect.fail(new BadRequest({ message: `${name}: ${e.message}` })))
      )
    )
    return {
      file: name,
      rows: report.rows,
      problemsAdded: report.problemsAdded,
      itemsAdded: report.itemsAdded,
      rejected: report.rejected,
      rejects: report.rejects.slice(0, 100).map((r) => ({ line: r.line, reason: r.reason }))
    }
  }

  async inspect(path: string) {
    const r = await Effect.runPromise(Effect.either(inspectModel(path, { graphs: true })))
    if (Either.isLeft(r)) throw new BadRequest({ message: r.left.message })
    return {
      architecture: r.right.architecture,
      parameters: r.right.parameters,
      variants: r.right.variants.map((v) => ({ name: v.name, bytes: v.bytes, runnable: v.graph?.runnable ?? null })),
      chatTemplate: r.right.chatTemplate,
      missing: r.right.missing
    }
  }

  async start(req: {
    teacher?: string
    rewriter?: string
    judge?: string
    limit?: number
    concurrency?: number
    budgetTokens?: number
  }): Promise<RunView> {
    const rt = this.rt()
    if (
      this.run !== undefined &&
      (this.run.status === "running" || this.run.status === "paused" || this.run.status === "stopping")
    )
      return this.view()
    for (const spec of [req.teacher, req.rewriter, req.judge]) this.checkEndpoint(spec)
    const base = Either.getOrThrow(parsePipeline(defaultPipelineText(), "built-in pipeline"))
    const config = applyOverrides(base, {
      teacher: req.teacher,
      rewriter: req.rewriter,
      judge: req.judge,
      concurrency: req.concurrency
    })
    // The session holds the workspace's run lock (a `fastcot run` here refuses this start, and this
    // run refuses it) and the run's local models, until the run ends and its scope is closed.
    const sessionScope = Effect.runSync(Scope.make())
    const made = await rt.runPromise(
      Effect.either(
        RunSession.make({
          config,
          holder: "the desktop app",
          env: this.env,
          limit: req.limit,
          budget: req.budgetTokens === undefined ? undefined : { tokens: req.budgetTokens }
        }).pipe(Scope.extend(sessionScope))
      )
    )
    if (Either.isLeft(made)) {
      await Effect.runPromise(Scope.close(sessionScope, Exit.void))
      throw new BadRequest({ message: made.left.message })
    }
    const session = made.right
    const { gate, lm } = session
    const state = initialState(config.name, session.stages)
    const sandbox = makeSandbox()
    const timeline: Array<RunView["timeline"][number]> = []
    const fiber = rt.runFork(
      session
        .pipeline((event) => (applyEvent(state, event), this.push({ _tag: "event", event })))
        .pipe(Effect.provide(verifierFor(sandbox)), Effect.ensuring(Scope.close(sessionScope, Exit.void)))
    )
    // A budget reached or a role out of quota stops the run the way Stop does (calls in flight
    // finish; the same start goes on later), with why.
    const watcher = Effect.runFork(session.stopWhen)
    watcher.addObserver((exit) => {
      if (exit._tag !== "Success") return
      const why = exit.value
      void this.stop().then(() => {
        if (this.run?.lm !== lm) return
        this.run.state.message =
          why._tag === "budget"
            ? `stopped at the token budget: ${describeSpent(why.state)} spent by the workspace; the next call could cost up to ${why.state.heldBack?.tokens ?? 0}. Raise the budget and start again to go on.`
            : `stopped: ${why.message}`
        this.push({ _tag: "view", view: this.view() })
      })
    })
    fiber.addObserver(() => Effect.runFork(Fiber.interrupt(watcher)))
    this.run = { fiber, gate, lm, state, status: "running", timeline }
    const run = this.run
    fiber.addObserver((exit) => {
      run.status =
        exit._tag === "Success"
          ? "done"
          : run.status === "stopping"
            ? "idle"
            : exit.cause._tag === "Interrupt"
              ? "idle"
              : "failed"
      if (exit._tag === "Success") applyEvent(run.state, { _tag: "pipeline-done", kept: 0, dropped: 0, failed: 0 })
      if (run.status === "failed") run.state.message = "the run failed; see the log"
      void this.tick()
    })
    this.ticker ??= setInterval(() => void this.tick(), 1000)
    return this.view()
  }

  private async tick() {
    const run = this.run
    if (run === undefined) return
    applyStats(run.state, await Effect.runPromise(run.lm.stats), 1000)
    const byStage = Object.fromEntries(run.state.stages.map((s) => [s.name, s.done + s.dropped + s.failed]))
    const done = Object.values(byStage).reduce((n, d) => n + d, 0)
    run.timeline.push({ t: Math.round((Date.now() - run.state.startedAt) / 1000), done, byStage })
    if (run.timeline.length > 3600) run.timeline.shift()
    this.push({ _tag: "view", view: this.view() })
    if (run.status === "done" || run.status === "idle" || run.status === "failed") {
      clearInterval(this.ticker)
      this.ticker = undefined
    }
  }

  async pause(paused: boolean): Promise<RunView> {
    const run = this.run
    if (run === undefined || (run.status !== "running" && run.status !== "paused"))
      throw new BadRequest({ message: "no run is in progress" })
    Effect.runSync(paused ? run.gate.close : run.gate.open)
    run.status = paused ? "paused" : "running"
    run.state.paused = paused
    return this.view()
  }

  /** Stops cleanly: no new calls, the ones in flight finish (into the cache), then the run ends; resumable. */
  async stop(): Promise<RunView> {
    const run = this.run
    if (run === undefined || (run.status !== "running" && run.status !== "paused")) return this.view()
    run.status = "stopping"
    run.state.quitting = true
    await Effect.runPromise(
      Effect.gen(function* () {
        yield* run.gate.close
        for (;;) {
          const inFlight = (yield* run.lm.stats).reduce((n, s) => n + s.inFlight, 0)
          if (inFlight === 0) break
          yield* Effect.sleep(Duration.millis(100))
        }
        yield* Fiber.interrupt(run.fiber)
      })
    )
    run.status = "idle"
    return this.view()
  }

  view(): RunView {
    const run = this.run
    if (run === undefined) {
      const s = initialState("", STAGES)
      return {
        state: "idle",
        stages: s.stages.map((r) => ({ name: r.name, total: null, done: 0, dropped: 0, failed: 0 })),
        verdicts: s.verdicts,
        kept: {},
        dropped: {},
        tokensBefore: [],
        tokensAfter: [],
        timeline: [],
        flow: [],
        models: []
      }
    }
    const s = run.state
    return {
      state: run.status,
      message: s.message,
      stages: s.stages.map((r) => ({
        name: r.name,
        total: r.total ?? null,
        done: r.done,
        dropped: r.dropped,
        failed: r.failed
      })),
      verdicts: { ...s.verdicts },
      kept: { ...s.kept },
      dropped: { ...s.dropped },
      tokensBefore: [...s.tokensBefore],
      tokensAfter: [...s.tokensAfter],
      timeline: [...run.timeline],
      flow: (["easy", "medium", "hard", "none"] as const).map((first) => ({ first, ...s.flow[first] })),
      models: s.models.map((m) => ({
        role: m.role,
        model: m.model,
        inFlight: m.inFlight,
        window: m.window,
        retries: m.retries,
        errors: m.failed,
        cacheHits: m.cacheHits,
        completionTokens: m.completionTokens,
        costUsd: m.costUsd
      }))
    }
  }

  async items(req: Req<"items.list">): Promise<ItemPage> {
    return this.rt().runPromise(
      Effect.gen(function* () {
        const store = yield* RunStore
        // Filters are the store's (SQL over the whole workspace), a page at a time after `afterId`.
        const items = yield* store.listItems({
          fate: req.fate,
          search: req.search,
          verdict: req.verdict,
          minTokens: req.minTokens,
          maxTokens: req.maxTokens,
          order: req.order,
          afterId: req.after?.afterId,
          afterValue: req.after?.afterValue,
          limit: req.limit
        })
        const problems = new Map(
          (yield* store.getProblems([...new Set(items.map((i) => i.problemId))])).map((p) => [p.id as string, p])
        )
        const last = items[items.length - 1]
        const by = req.order?.by ?? "id"
        const rows = items.map((i) => ({
          id: i.id,
          fate: i.fate,
          what: fateDetail(i),
          rounds: i.rounds.length,
          question: (problems.get(i.problemId)?.question ?? "").replace(/\s+/g, " ").slice(0, 300),
          tokensBefore: (i.original ?? i.trace)?.tokens?.reasoning ?? null,
          tokensAfter: i.trace?.tokens?.reasoning ?? null,
          verdicts: i.rounds.flatMap((r) => (r.verdict !== undefined ? [r.verdict.level] : [])),
          review: i.review !== undefined ? `${i.review.decision} by ${i.review.reviewer}` : null
        }))
        const afterValue = last !== undefined && by !== "id" ? itemSortValue(last, by) : undefined
        return {
          rows,
          next:
            last === undefined || items.length < req.limit
              ? null
              : { afterId: last.id, ...(afterValue !== undefined ? { afterValue } : {}) }
        }
      })
    )
  }

  async item(id: string): Promise<ItemDetail> {
    const found = await this.rt().runPromise(
      Effect.gen(function* () {
        const store = yield* RunStore
        const item = yield* store.getItem(id)
        if (Option.isNone(item)) return undefined
        return { item: item.value, problem: Option.getOrUndefined(yield* store.getProblem(item.value.problemId)) }
      })
    )
    if (found === undefined) throw new BadRequest({ message: `no item ${id} in this workspace` })
    return itemDetailOf(found.item, found.problem)
  }

  async exportData(
    format: "openai" | "sharegpt" | "alpaca" | "preference",
    valFraction: number
  ): Promise<Reply<"export.run">> {
    const out = join(workspacePaths(this.workspace ?? ".").exports, format, "train.jsonl")
    const report = await this.rt().runPromise(exportDataset({ format, out, valFraction }))
    return {
      files: [
        report.files.train,
        ...(report.files.validation !== undefined ? [report.files.validation] : []),
        report.files.card
      ],
      train: report.counts.train,
      validation: report.counts.validation
    }
  }

  async evalRuns(): Promise<Reply<"eval.runs">> {
    const dir = join(workspacePaths(this.workspace ?? ".").root, "eval")
    this.rt()
    const runs = await readdir(dir).catch(() => [] as Array<string>)
    const out: Array<Reply<"eval.runs">[number]> = []
    // Read together, without blocking the backend's event loop; listed in folder order.
    const read = await Promise.all(
      runs.sort().map(async (r) => ({ r, results: await loadEvalResults(join(dir, r, "results.json")) }))
    )
    for (const { r, results } of read) {
      if (Either.isLeft(results)) {
        // A run that has not written results.json yet, or is writing it, is skipped this time; one
        // whose file is wrong is shown as such.
        if (results.left.reason !== "not-json" && results.left.reason !== "missing")
          out.push({ dir: r, model: r, benchmarks: [], error: results.left.message })
        continue
      }
      out.push({
        dir: r,
        model: results.right.model,
        benchmarks: results.right.benchmarks.map((b) => ({
          name: b.bench,
          accuracy: b.summary.accuracy,
          meanOutputTokens: b.summary.meanOutputTokens,
          ci95: b.summary.ci95 ?? null,
          scored: b.summary.samples,
          failed: b.failed?.samples ?? 0
        }))
      })
    }
    return out
  }

  /** Evaluates a model (an endpoint or a local folder) on benchmarks, in the background; results land in WORKSPACE/eval. */
  async evalStart(req: {
    model: string
    benches: ReadonlyArray<string>
    dataDir: string
    limit?: number | undefined
    maxTokens?: number | undefined
    preset: "greedy" | "r1"
  }) {
    const rt = this.rt()
    if (this.evaluation.state === "running") throw new BadRequest({ message: "an evaluation is already running" })
    this.checkEndpoint(req.model)
    // The model is checked (a local folder read, not yet loaded) before the evaluation starts.
    const modelScope = Effect.runSync(Scope.make())
    const made = await rt.runPromise(
      Effect.either(
        EvalModel.make({ spec: req.model, apiKey: this.env["OPENAI_API_KEY"] || undefined, concurrency: 8 }).pipe(
          Scope.extend(modelScope)
        )
      )
    )
    if (Either.isLeft(made)) {
      await Effect.runPromise(Scope.close(modelScope, Exit.void))
      throw new BadRequest({ message: made.left.message })
    }
    const { name, lm, localPath } = made.right
    const dir = evalRunFolder(name)
    const outDir = join(workspacePaths(this.workspace ?? ".").root, "eval", dir)
    const counter =
      localPath !== undefined ? await Effect.runPromise(Effect.either(tokenizerFileCounter(localPath))) : undefined
    if (counter !== undefined && Either.isLeft(counter)) {
      await Effect.runPromise(Scope.close(modelScope, Exit.void))
      throw new BadRequest({ message: counter.left.message })
    }
    this.evaluation = { state: "running", progress: new Map() }
    const evaluation = this.evaluation
    const program = evaluate({
      benches: req.benches,
      dataDir: req.dataDir,
      outDir,
      model: name,
      samples: 1,
      limit: req.limit,
      preset: req.preset,
      maxTokens: req.maxTokens,
      concurrency: 8,
      onProgress: (bench, done, total, correct, tokens) =>
        evaluation.progress.set(bench, { bench, done, total, correct, tokens })
    }).pipe(
      Effect.provideService(LanguageModel, lm),
      Effect.provide(SandboxLive()),
      counter !== undefined && Either.isRight(counter) ? Effect.provideService(TokenCounter, counter.right) : (x) => x,
      Effect.ensuring(Scope.close(modelScope, Exit.void))
    )
    void rt.runPromise(program).then(
      () => (evaluation.state = "done"),
      (e: unknown) => {
        evaluation.state = "failed"
        evaluation.message = e instanceof Error ? e.message : String(e)
      }
    )
    return { state: "running" as const, dir }
  }

  async close(): Promise<void> {
    if (this.ticker !== undefined) clearInterval(this.ticker)
    if (this.run !== undefined && (this.run.status === "running" || this.run.status === "paused")) await this.stop()
    await this.runtime?.dispose()
    this.runtime = undefined
  }
}
