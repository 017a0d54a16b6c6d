import { diffWords } from "diff"
import { type DragEvent, type ReactElement, useEffect, useState } from "react"
import type { ItemDetail, ItemRow, Reply, RunView, StatusView } from "../contract.js"
import { ApiError, call, onPush } from "./api.js"
import { Bars, Histogram, Line, Scatter } from "./charts.js"

const TABS = ["Workspace", "Run", "Items", "Export", "Evaluation"] as const
type Tab = (typeof TABS)[number]

const useAsync = () => {
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const run = async <A,>(f: () => Promise<A>): Promise<A | undefined> => {
    setBusy(true)
    setError(undefined)
    try {
      return await f()
    } catch (e) {
      setError(e instanceof ApiError || e instanceof Error ? e.message : String(e))
      return undefined
    } finally {
      setBusy(false)
    }
  }
  return { error, busy, run }
}

/** A <select> over a fixed list of values, each [value] or [value, label]. */
const Select = <V extends string>(props: {
  id: string
  value: V
  options: ReadonlyArray<readonly [V] | readonly [V, string]>
  onChange: (value: V) => void
}) => (
  <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.target.value as V)}>
    {props.options.map(([value, label]) => (
      <option key={value} value={value}>
        {label ?? value}
      </option>
    ))}
  </select>
)

const ErrorNote = ({ error }: { error: string | undefined }) =>
  error === undefined ? null : (
    <p role="alert" className="error">
      {error}
    </p>
  )

export const App = (): ReactElement => {
  const [tab, setTab] = useState<Tab>("Workspace")
  const [status, setStatus] = useState<StatusView | undefined>(undefined)
  const [view, setView] = useState<RunView | undefined>(undefined)
  useEffect(() => onPush((p) => (p._tag === "view" ? setView(p.view) : undefined)), [])
  const refreshStatus = () =>
    void call("workspace.status", {})
      .then(setStatus)
      .catch(() => undefined)
  // A backend started with a workspace (`fastcot ui --workspace DIR`, or a window reloaded) has
  // one open already: ask once on load; with none open the request is refused and nothing changes.
  useEffect(refreshStatus, [])
  useEffect(() => {
    if (status === undefined) return
    const t = setInterval(refreshStatus, 2000)
    return () => clearInterval(t)
  }, [status === undefined])
  // When this app's own run changes state (it ends, say), the status is read again at once, so
  // that its lock, now released, is not taken for another run's until the next poll.
  useEffect(() => {
    if (status !== undefined) refreshStatus()
  }, [view?.state])
  return (
    <div className="app">
      <header>
        <h1>fastcot</h1>
        <nav aria-label="Sections" role="tablist">
          {TABS.map((t) => (
            <button
              key={t}
              role="tab"
              aria-selected={t === tab}
              aria-controls={`panel-${t}`}
              id={`tab-${t}`}
              onClick={() => setTab(t)}
              disabled={t !== "Workspace" && status === undefined}
            >
              {t}
            </button>
          ))}
        </nav>
        <p className="where" aria-live="polite">
          {status === undefined
            ? "no workspace open"
            : `${status.workspace}: ${status.problems} problems, ${status.items} items, ${status.kept} kept, ${status.dropped} dropped, ${status.pending} pending${status.running !== null ? ` · at work: ${status.running.what} (pid ${status.running.pid}, since ${status.running.startedAt})` : ""}`}
        </p>
      </header>
      <main id={`panel-${tab}`} role="tabpanel" aria-labelledby={`tab-${tab}`}>
        {tab === "Workspace" ? <WorkspacePanel status={status} onStatus={setStatus} /> : null}
        {tab === "Run" ? <RunPanel view={view} onView={setView} holder={status?.running ?? null} /> : null}
        {tab === "Items" ? <ItemsPanel /> : null}
        {tab === "Export" ? <ExportPanel /> : null}
        {tab === "Evaluation" ? <EvalPanel /> : null}
      </main>
    </div>
  )
}

const WorkspacePanel = ({
  status,
  onStatus
}: {
  status: StatusView | undefined
  onStatus: (s: StatusView) => void
}) => {
  const [path, setPath] = useState(status?.workspace ?? "")
  const [report, setReport] = useState<Reply<"import.content"> | undefined>(undefined)
  const [over, setOver] = useState(false)
  const { error, busy, run } = useAsync()
  const importFiles = (files: FileList | null) =>
    run(async () => {
      for (const f of Array.from(files ?? [])) {
        setReport(await call("import.content", { name: f.name, content: await f.text() }))
      }
      onStatus(await call("workspace.status", {}))
    })
  return (
    <section aria-labelledby="ws-title">
      <h2 id="ws-title">Workspace</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void run(async () => onStatus(await call("workspace.open", { path, create: true })))
        }}
      >
        <label htmlFor="ws-path">Workspace folder (the same fastcot.db the command line uses)</label>
        <input
          id="ws-path"
          value={path}
          onChange={(e) => setPath(e.target.value)}
          placeholder="/data/my-run"
          required
        />
        <button type="submit" disabled={busy}>
          Open or create
        </button>
      </form>
      <ErrorNote error={error} />
      {status !== undefined ? (
        <>
          <div
            className={over ? "drop over" : "drop"}
            onDragOver={(e: DragEvent) => (e.preventDefault(), setOver(true))}
            onDragLeave={() => setOver(false)}
            onDrop={(e: DragEvent) => (e.preventDefault(), setOver(false), void importFiles(e.dataTransfer.files))}
          >
            <label htmlFor="import-file">
              Import problems or traces (JSONL, JSON, CSV, Parquet): drop files here or choose
            </label>
            <input
              id="import-file"
              type="file"
              multiple
              accept=".jsonl,.json,.csv,.parquet"
              onChange={(e) => void importFiles(e.target.files)}
            />
          </div>
          {report !== undefined ? (
            <div className="report" aria-live="polite">
              <p>
                {report.file}: {report.rows} rows, {report.problemsAdded} new problems, {report.itemsAdded} new traces,{" "}
                {report.rejected} rejected
              </p>
              {report.rejects.length > 0 ? (
                <ul aria-label="Rejected rows">
                  {report.rejects.map((r) => (
                    <li key={r.line}>
                      line {r.line}: {r.reason}
                    </li>
                  ))}
                </ul>
              ) : null}
            </div>
          ) : null}
          <h3>Composition</h3>
          <Bars
            label="Kept and dropped"
            data={[
              ...Object.entries(status.keptAs).map(([k, v]) => ({ label: `kept: ${k}`, value: v })),
              ...Object.entries(status.dropReasons).map(([k, v]) => ({ label: `dropped: ${k}`, value: v }))
            ]}
          />
        </>
      ) : null}
    </section>
  )
}

const RunPanel = ({
  view,
  onView,
  holder
}: {
  view: RunView | undefined
  onView: (v: RunView) => void
  holder: StatusView["running"]
}) => {
  const [specs, setSpecs] = useState({ teacher: "", rewriter: "", judge: "", limit: "", budgetTokens: "" })
  const { error, busy, run } = useAsync()
  const active = view?.state === "running" || view?.state === "paused" || view?.state === "stopping"
  // Another process's run holds the workspace (this app's own run shows as `active` instead).
  const elsewhere = active ? null : holder
  const field = (
    name: "teacher" | "rewriter" | "judge" | "limit" | "budgetTokens",
    label: string,
    placeholder: string
  ) => (
    <div className="field">
      <label htmlFor={`spec-${name}`}>{label}</label>
      <input
        id={`spec-${name}`}
        value={specs[name]}
        placeholder={placeholder}
        onChange={(e) => setSpecs({ ...specs, [name]: e.target.value })}
      />
    </div>
  )
  const start = () =>
    run(async () =>
      onView(
        await call("run.start", {
          ...(specs.teacher !== "" ? { teacher: specs.teacher } : {}),
          ...(specs.rewriter !== "" ? { rewriter: specs.rewriter } : {}),
          ...(specs.judge !== "" ? { judge: specs.judge } : {}),
          ...(specs.limit !== "" ? { limit: Number(specs.limit) } : {}),
          ...(specs.budgetTokens !== "" ? { budgetTokens: Number(specs.budgetTokens) } : {})
        })
      )
    )
  const total = (view?.stages ?? []).reduce((n, s) => n + s.done + s.dropped + s.failed, 0)
  return (
    <section aria-labelledby="run-title">
      <h2 id="run-title">Run the recipe</h2>
      <p>
        Models: openai:MODEL@BASE_URL for an endpoint, onnx:DIR for a local model folder. Empty fields keep the recipe's
        models.
      </p>
      {field("teacher", "Teacher", "openai:deepseek-chat@https://api.deepseek.com/v1")}
      {field("rewriter", "Rewriter", "onnx:/models/qwen2.5-7b#q4")}
      {field("judge", "Judge", "openai:qwq-32b@http://127.0.0.1:8000/v1")}
      {field("limit", "Only the first N problems", "all")}
      {field("budgetTokens", "Token budget (the workspace's calls in all)", "none")}
      <ModelCheck />
      <div className="buttons">
        <button onClick={() => void start()} disabled={busy || active || elsewhere !== null}>
          Start
        </button>
        <button
          onClick={() => void run(async () => onView(await call("run.pause", {})))}
          disabled={view?.state !== "running"}
        >
          Pause
        </button>
        <button
          onClick={() => void run(async () => onView(await call("run.resume", {})))}
          disabled={view?.state !== "paused"}
        >
          Resume
        </button>
        <button onClick={() => void run(async () => onView(await call("run.stop", {})))} disabled={!active}>
          Stop
        </button>
      </div>
      {elsewhere !== null ? (
        <p role="status" data-testid="run-holder">
          Another run is at work on this workspace: {elsewhere.what} (pid {elsewhere.pid} on {elsewhere.host}, since{" "}
          {elsewhere.startedAt}). Start is available when it ends; one on another machine that has ended can be taken
          over with <code>fastcot run --take-over</code>.
        </p>
      ) : null}
      <ErrorNote error={error} />
      <p aria-live="polite" className="state">
        State: <strong data-testid="run-state">{view?.state ?? "idle"}</strong>
        {view?.message !== undefined ? ` — ${view.message}` : ""}
      </p>
      <table aria-label="Stages">
        <thead>
          <tr>
            <th scope="col">Stage</th>
            <th scope="col">Progress</th>
            <th scope="col">Done</th>
            <th scope="col">Dropped</th>
            <th scope="col">Failed</th>
          </tr>
        </thead>
        <tbody>
          {(view?.stages ?? []).map((s) => (
            <tr key={s.name} data-stage={s.name}>
              <th scope="row">{s.name}</th>
              <td>
                <progress
                  aria-label={`${s.name} progress`}
                  max={s.total ?? 1}
                  value={s.total === null ? 0 : s.done + s.dropped + s.failed}
                />
              </td>
              <td className="num">{s.done}</td>
              <td className="num">{s.dropped}</td>
              <td className="num">{s.failed}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <table aria-label="Models">
        <thead>
          <tr>
            <th scope="col">Role</th>
            <th scope="col">Model</th>
            <th scope="col">In flight</th>
            <th scope="col">Retries</th>
            <th scope="col">Errors</th>
            <th scope="col">Cache hits</th>
            <th scope="col">Output tokens</th>
            <th scope="col">Cost</th>
          </tr>
        </thead>
        <tbody>
          {(view?.models ?? []).map((m) => (
            <tr key={`${m.role}-${m.model}`}>
              <th scope="row">{m.role}</th>
              <td>{m.model}</td>
              <td className="num">{m.inFlight}</td>
              <td className="num">{m.retries}</td>
              <td className="num">{m.errors}</td>
              <td className="num">{m.cacheHits}</td>
              <td className="num">{m.completionTokens}</td>
              <td className="num">${m.costUsd.toFixed(4)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="charts">
        <Line
          label={`Items finished over time (${total})`}
          points={(view?.timeline ?? []).map((p) => ({ x: p.t, y: p.done }))}
        />
        <Bars label="Verdicts" data={Object.entries(view?.verdicts ?? {}).map(([k, v]) => ({ label: k, value: v }))} />
        <Bars
          label="Fates this run"
          data={[
            ...Object.entries(view?.kept ?? {}).map(([k, v]) => ({ label: `kept: ${k}`, value: v })),
            ...Object.entries(view?.dropped ?? {}).map(([k, v]) => ({ label: `dropped: ${k}`, value: v }))
          ]}
        />
        <Histogram
          label="Reasoning tokens of kept items, before and after alignment"
          before={view?.tokensBefore ?? []}
          after={view?.tokensAfter ?? []}
        />
      </div>
    </section>
  )
}

/** Checks a local model folder the way `fastcot models inspect` does. */
const ModelCheck = () => {
  const [path, setPath] = useState("")
  const [report, setReport] = useState<Reply<"models.inspect"> | undefined>(undefined)
  const { error, busy, run } = useAsync()
  return (
    <details>
      <summary>Check a local model folder</summary>
      <label htmlFor="model-path">Model folder (config.json, tokenizer.json, onnx/)</label>
      <input id="model-path" value={path} onChange={(e) => setPath(e.target.value)} />
      <button
        disabled={busy || path === ""}
        onClick={() => void run(async () => setReport(await call("models.inspect", { path })))}
      >
        Check
      </button>
      <ErrorNote error={error} />
      {report !== undefined ? (
        <div aria-live="polite" className="model-report">
          <p>
            {report.architecture},{" "}
            {report.parameters !== null ? `~${(report.parameters / 1e6).toFixed(1)}M parameters` : "parameters unknown"}
            , chat template {report.chatTemplate ? "present" : "missing"}
          </p>
          <ul aria-label="Weight variants">
            {report.variants.map((v) => (
              <li key={v.name}>
                {v.name}: {(v.bytes / 2 ** 20).toFixed(1)} MiB,{" "}
                {v.runnable === true ? "runnable" : v.runnable === false ? "not runnable" : "unchecked"} (use onnx:
                {path}#{v.name})
              </li>
            ))}
          </ul>
          {report.missing.length > 0 ? <p>Missing: {report.missing.join(", ")}</p> : null}
        </div>
      ) : null}
    </details>
  )
}

const WordDiff = ({ before, after }: { before: string; after: string }) => (
  <p className="diff">
    {diffWords(before, after).map((p, i) =>
      p.added ? <ins key={i}>{p.value}</ins> : p.removed ? <del key={i}>{p.value}</del> : <span key={i}>{p.value}</span>
    )}
  </p>
)

const ItemsPanel = () => {
  const [filter, setFilter] = useState<{
    fate: "" | "kept" | "dropped" | "pending" | "failed"
    verdict: "" | "easy" | "medium" | "hard"
    search: string
    maxTokens: string
  }>({ fate: "", verdict: "", search: "", maxTokens: "" })
  const [rows, setRows] = useState<ReadonlyArray<ItemRow>>([])
  const [open, setOpen] = useState<ItemDetail | undefined>(undefined)
  const { error, run } = useAsync()
  useEffect(() => {
    void run(async () =>
      setRows(
        await call("items.list", {
          ...(filter.fate !== "" ? { fate: filter.fate } : {}),
          ...(filter.verdict !== "" ? { verdict: filter.verdict } : {}),
          ...(filter.search !== "" ? { search: filter.search } : {}),
          ...(filter.maxTokens !== "" ? { maxTokens: Number(filter.maxTokens) } : {}),
          limit: 500
        })
      )
    )
  }, [filter.fate, filter.verdict, filter.search, filter.maxTokens])
  return (
    <section aria-labelledby="items-title">
      <h2 id="items-title">Dataset</h2>
      <div className="filters">
        <label htmlFor="f-fate">Fate</label>
        <Select
          id="f-fate"
          value={filter.fate}
          options={[["", "all"], ["kept"], ["dropped"], ["pending"], ["failed"]]}
          onChange={(fate) => setFilter({ ...filter, fate })}
        />
        <label htmlFor="f-verdict">Verdict</label>
        <Select
          id="f-verdict"
          value={filter.verdict}
          options={[["", "any"], ["easy"], ["medium"], ["hard"]]}
          onChange={(verdict) => setFilter({ ...filter, verdict })}
        />
        <label htmlFor="f-search">Search</label>
        <input
          id="f-search"
          type="search"
          value={filter.search}
          onChange={(e) => setFilter({ ...filter, search: e.target.value })}
        />
        <label htmlFor="f-tokens">At most this many reasoning tokens</label>
        <input
          id="f-tokens"
          type="number"
          min="0"
          value={filter.maxTokens}
          onChange={(e) => setFilter({ ...filter, maxTokens: e.target.value })}
        />
      </div>
      <ErrorNote error={error} />
      <table aria-label="Items">
        <thead>
          <tr>
            <th scope="col">Item</th>
            <th scope="col">Fate</th>
            <th scope="col">Rounds</th>
            <th scope="col">Tokens before → after</th>
            <th scope="col">Question</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id}>
              <td>
                <button
                  className="link"
                  onClick={() => void run(async () => setOpen(await call("items.get", { id: r.id })))}
                >
                  {r.id}
                </button>
              </td>
              <td>
                {r.fate} {r.what}
              </td>
              <td className="num">{r.rounds}</td>
              <td className="num">
                {r.tokensBefore ?? "-"} → {r.tokensAfter ?? "-"}
              </td>
              <td>{r.question.slice(0, 120)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {open !== undefined ? (
        <article aria-labelledby="item-title" className="item">
          <h3 id="item-title">
            Item {open.id}: {open.fate}
            {open.keptAs !== null ? ` (${open.keptAs})` : ""}
            {open.reason !== null ? ` — ${open.reason}` : ""}
          </h3>
          <p>Question: {open.question}</p>
          <p>Reference: {open.reference ?? "none"}</p>
          <div className="side">
            <div>
              <h4>Original</h4>
              <pre>{open.original ?? ""}</pre>
            </div>
            <div>
              <h4>Final</h4>
              <pre>{open.final ?? ""}</pre>
            </div>
          </div>
          <h4>Rounds</h4>
          <ol start={0}>
            {open.rounds.map((r) => (
              <li key={r.index}>
                <strong>{r.action}</strong>
                {r.verdict !== null
                  ? ` — verdict ${r.verdict.level} (judge replied ${JSON.stringify(r.verdict.raw.slice(0, 200))})`
                  : ""}
                {r.verification !== null
                  ? ` — ${r.verification.ok ? "verified" : "not verified"}: ${r.verification.reason}`
                  : ""}
                {r.calls.length > 0 ? <span className="calls"> · {r.calls.join(" · ")}</span> : null}
                {r.before !== null && r.after !== null && r.before !== r.after ? (
                  <WordDiff before={r.before} after={r.after} />
                ) : null}
              </li>
            ))}
          </ol>
        </article>
      ) : null}
    </section>
  )
}

const ExportPanel = () => {
  const [format, setFormat] = useState<"openai" | "sharegpt" | "alpaca" | "preference">("openai")
  const [val, setVal] = useState("0.05")
  const [done, setDone] = useState<Reply<"export.run"> | undefined>(undefined)
  const { error, busy, run } = useAsync()
  return (
    <section aria-labelledby="export-title">
      <h2 id="export-title">Export for SFT</h2>
      <label htmlFor="x-format">Format</label>
      <Select
        id="x-format"
        value={format}
        options={[
          ["openai", "OpenAI messages"],
          ["sharegpt", "ShareGPT"],
          ["alpaca", "Alpaca"],
          ["preference", "Preference pairs"]
        ]}
        onChange={setFormat}
      />
      <label htmlFor="x-val">Validation fraction</label>
      <input
        id="x-val"
        type="number"
        min="0"
        max="0.5"
        step="0.01"
        value={val}
        onChange={(e) => setVal(e.target.value)}
      />
      <button
        disabled={busy}
        onClick={() => void run(async () => setDone(await call("export.run", { format, valFraction: Number(val) })))}
      >
        Export
      </button>
      <ErrorNote error={error} />
      {done !== undefined ? (
        <div aria-live="polite">
          <p>
            {done.train} training and {done.validation} validation examples
          </p>
          <ul aria-label="Exported files">
            {done.files.map((f) => (
              <li key={f}>{f}</li>
            ))}
          </ul>
        </div>
      ) : null}
    </section>
  )
}

const EvalPanel = () => {
  const [runs, setRuns] = useState<Reply<"eval.runs">>([])
  const [form, setForm] = useState({
    model: "",
    dataDir: "",
    limit: "",
    maxTokens: "",
    benches: ["math500"] as Array<string>
  })
  const [state, setState] = useState<Reply<"eval.state"> | undefined>(undefined)
  const { error, busy, run } = useAsync()
  useEffect(() => void run(async () => setRuns(await call("eval.runs", {}))), [])
  useEffect(() => {
    if (state?.state !== "running") return
    const t = setInterval(
      () =>
        void call("eval.state", {}).then(async (s) => {
          setState(s)
          if (s.state !== "running") setRuns(await call("eval.runs", {}))
        }),
      500
    )
    return () => clearInterval(t)
  }, [state?.state])
  const ALL = ["math500", "aime24", "gpqa_diamond", "mmlu_pro", "livecodebench"] as const
  const start = () =>
    run(async () => {
      await call("eval.start", {
        model: form.model,
        dataDir: form.dataDir,
        benches: form.benches as Array<(typeof ALL)[number]>,
        ...(form.limit !== "" ? { limit: Number(form.limit) } : {}),
        ...(form.maxTokens !== "" ? { maxTokens: Number(form.maxTokens) } : {})
      })
      setState(await call("eval.state", {}))
    })
  const benches = [...new Set(runs.flatMap((r) => r.benchmarks.map((b) => b.name)))]
  return (
    <section aria-labelledby="eval-title">
      <h2 id="eval-title">Evaluation runs</h2>
      <fieldset>
        <legend>Evaluate a model</legend>
        <label htmlFor="e-model">Model (onnx:DIR for a local folder, or openai:MODEL@BASE_URL)</label>
        <input id="e-model" value={form.model} onChange={(e) => setForm({ ...form, model: e.target.value })} />
        <label htmlFor="e-data">Benchmark data folder (math500/test.jsonl, aime24/test.jsonl, …)</label>
        <input id="e-data" value={form.dataDir} onChange={(e) => setForm({ ...form, dataDir: e.target.value })} />
        <div role="group" aria-label="Benchmarks">
          {ALL.map((b) => (
            <label key={b} className="check">
              <input
                type="checkbox"
                checked={form.benches.includes(b)}
                onChange={(e) =>
                  setForm({
                    ...form,
                    benches: e.target.checked ? [...form.benches, b] : form.benches.filter((x) => x !== b)
                  })
                }
              />{" "}
              {b}
            </label>
          ))}
        </div>
        <label htmlFor="e-limit">Only the first N questions</label>
        <input
          id="e-limit"
          type="number"
          min="1"
          value={form.limit}
          onChange={(e) => setForm({ ...form, limit: e.target.value })}
        />
        <label htmlFor="e-max">Max new tokens</label>
        <input
          id="e-max"
          type="number"
          min="1"
          value={form.maxTokens}
          onChange={(e) => setForm({ ...form, maxTokens: e.target.value })}
        />
        <button
          disabled={busy || state?.state === "running" || form.model === "" || form.dataDir === ""}
          onClick={() => void start()}
        >
          Start evaluation
        </button>
        {state !== undefined ? (
          <p aria-live="polite" data-testid="eval-state">
            {state.state}
            {state.message !== undefined ? `: ${state.message}` : ""}
            {state.progress.map((p) => ` · ${p.bench} ${p.done}/${p.total}, ${p.correct} correct`).join("")}
          </p>
        ) : null}
      </fieldset>
      <p>Runs of `fastcot eval` saved in this workspace (eval/RUN/results.json).</p>
      <ErrorNote error={error} />
      {runs.length === 0 ? <p>No evaluation runs yet.</p> : null}
      {runs.length > 0 ? (
        <>
          <table aria-label="Accuracy and output tokens">
            <thead>
              <tr>
                <th scope="col">Model</th>
                {benches.map((b) => (
                  <th key={b} scope="col">
                    {b} accuracy / tokens
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.dir}>
                  <th scope="row">{r.model}</th>
                  {r.error !== undefined ? (
                    <td colSpan={Math.max(1, benches.length)} role="alert">
                      {r.error}
                    </td>
                  ) : null}
                  {r.error !== undefined
                    ? null
                    : benches.map((b) => {
                        const x = r.benchmarks.find((y) => y.name === b)
                        return (
                          <td key={b} className="num">
                            {x === undefined
                              ? "-"
                              : `${x.scored === 0 ? "none scored" : `${(100 * x.accuracy).toFixed(1)}% / ${x.meanOutputTokens.toFixed(0)}`}${x.failed > 0 ? ` (${x.failed} failed)` : ""}`}
                          </td>
                        )
                      })}
                </tr>
              ))}
            </tbody>
          </table>
          <Bars
            label="Accuracy per benchmark (%)"
            data={runs.flatMap((r) =>
              r.benchmarks.map((b) => ({ label: `${r.model} ${b.name}`, value: Math.round(1000 * b.accuracy) / 10 }))
            )}
          />
          <Scatter
            label="Accuracy against output tokens"
            points={runs.flatMap((r) =>
              r.benchmarks.map((b) => ({ x: b.meanOutputTokens, y: 100 * b.accuracy, label: `${r.model} ${b.name}` }))
            )}
          />
        </>
      ) : null}
    </section>
  )
}
