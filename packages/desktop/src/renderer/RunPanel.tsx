import { useState } from "react"
import type { Reply, RunView, StatusView } from "../contract.js"
import { call } from "./api.js"
import { CountsChart, FlowChart, ProgressChart, TokenHistogram } from "./charts.js"
import { Action, FieldRow, TextInput } from "./controls.js"
import { ErrorNote, useAsync } from "./shared.js"

export const RunPanel = ({
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
    <TextInput
      label={label}
      value={specs[name]}
      placeholder={placeholder}
      onChange={(value) => setSpecs({ ...specs, [name]: value })}
      className="field wide"
    />
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
      <FieldRow>
        {field("limit", "Only the first N problems", "all")}
        {field("budgetTokens", "Token budget (the workspace's calls in all)", "none")}
      </FieldRow>
      <ModelCheck />
      <div className="actions" role="group" aria-label="Run">
        <Action
          className="button primary"
          onPress={() => void start()}
          isDisabled={busy || active || elsewhere !== null}
        >
          Start
        </Action>
        <Action
          onPress={() => void run(async () => onView(await call("run.pause", {})))}
          isDisabled={view?.state !== "running"}
        >
          Pause
        </Action>
        <Action
          onPress={() => void run(async () => onView(await call("run.resume", {})))}
          isDisabled={view?.state !== "paused"}
        >
          Resume
        </Action>
        <Action onPress={() => void run(async () => onView(await call("run.stop", {})))} isDisabled={!active}>
          Stop
        </Action>
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
            <th scope="col">In flight / window</th>
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
              <td className="num">
                {m.inFlight} / {m.window}
              </td>
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
        <ProgressChart timeline={view?.timeline ?? []} />
        <FlowChart flow={view?.flow ?? []} />
        <CountsChart
          caption="Fates this run"
          unit="items"
          empty="No item has ended yet this run."
          data={[
            ...Object.entries(view?.kept ?? {}).map(([k, v]) => ({ label: `kept: ${k}`, value: v })),
            ...Object.entries(view?.dropped ?? {}).map(([k, v]) => ({ label: `dropped: ${k}`, value: v }))
          ]}
        />
        <TokenHistogram before={view?.tokensBefore ?? []} after={view?.tokensAfter ?? []} />
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
      <TextInput
        label="Model folder (config.json, tokenizer.json, onnx/)"
        value={path}
        onChange={setPath}
        className="field wide"
      />
      <Action
        isDisabled={busy || path === ""}
        onPress={() => void run(async () => setReport(await call("models.inspect", { path })))}
      >
        Check
      </Action>
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
