import { useEffect, useState } from "react"
import type { Reply } from "../contract.js"
import { call } from "./api.js"
import { AccuracyChart, AccuracyTokensCharts, type BenchPoint } from "./charts.js"
import { Action, Checks, FieldRow, TextInput } from "./controls.js"
import { ErrorNote, useAsync } from "./shared.js"

/** How often the saved runs are read again while the panel is open. */
const RUNS_REFRESH_MS = 5000

const ALL = ["math500", "aime24", "gpqa_diamond", "mmlu_pro", "livecodebench"] as const

export const EvalPanel = () => {
  const [runs, setRuns] = useState<Reply<"eval.runs">>([])
  const [form, setForm] = useState({
    model: "",
    dataDir: "",
    limit: "",
    maxTokens: "",
    benches: ["math500"] as Array<(typeof ALL)[number]>
  })
  const [state, setState] = useState<Reply<"eval.state"> | undefined>(undefined)
  const { error, busy, run } = useAsync()
  // The list's reads have their own error and busy state: a refresh neither disables Start nor hides its error.
  const listing = useAsync()
  // Read at once, then every few seconds while the panel is open: a `fastcot eval` run elsewhere
  // into this workspace shows when it ends, and a read that failed is made again.
  useEffect(() => {
    const refresh = () => void listing.run(async () => setRuns(await call("eval.runs", {})))
    refresh()
    const t = setInterval(refresh, RUNS_REFRESH_MS)
    return () => clearInterval(t)
  }, [])
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
  const start = () =>
    run(async () => {
      await call("eval.start", {
        model: form.model,
        dataDir: form.dataDir,
        benches: form.benches,
        ...(form.limit !== "" ? { limit: Number(form.limit) } : {}),
        ...(form.maxTokens !== "" ? { maxTokens: Number(form.maxTokens) } : {})
      })
      setState(await call("eval.state", {}))
    })
  const benches = [...new Set(runs.flatMap((r) => r.benchmarks.map((b) => b.name)))]
  // Scored benchmarks only: a run whose every generation failed has no accuracy to draw.
  const points: Array<BenchPoint> = runs.flatMap((r) =>
    r.benchmarks
      .filter((b) => b.scored > 0)
      .map((b) => ({ model: r.model, bench: b.name, accuracy: b.accuracy, tokens: b.meanOutputTokens, ci95: b.ci95 }))
  )
  return (
    <section aria-labelledby="eval-title">
      <h2 id="eval-title">Evaluation runs</h2>
      <fieldset>
        <legend>Evaluate a model</legend>
        <TextInput
          label="Model (onnx:DIR for a local folder, or openai:MODEL@BASE_URL)"
          value={form.model}
          onChange={(model) => setForm({ ...form, model })}
          className="field wide"
        />
        <TextInput
          label="Benchmark data folder (math500/test.jsonl, aime24/test.jsonl, …)"
          value={form.dataDir}
          onChange={(dataDir) => setForm({ ...form, dataDir })}
          className="field wide"
        />
        <Checks
          label="Benchmarks"
          value={form.benches}
          options={ALL}
          onChange={(benches) => setForm({ ...form, benches })}
        />
        <FieldRow>
          <TextInput
            label="Only the first N questions"
            inputMode="numeric"
            value={form.limit}
            placeholder="all"
            onChange={(limit) => setForm({ ...form, limit })}
          />
          <TextInput
            label="Max new tokens"
            inputMode="numeric"
            value={form.maxTokens}
            placeholder="the benchmark's"
            onChange={(maxTokens) => setForm({ ...form, maxTokens })}
          />
        </FieldRow>
        <Action
          className="button primary"
          isDisabled={busy || state?.state === "running" || form.model === "" || form.dataDir === ""}
          onPress={() => void start()}
        >
          Start evaluation
        </Action>
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
      <ErrorNote error={listing.error} />
      {runs.length === 0 ? (
        <p className="empty-state">
          No evaluation runs yet: evaluate a model above, or run `fastcot eval` into this workspace.
        </p>
      ) : null}
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
          <div className="charts">
            <AccuracyChart points={points} />
            <AccuracyTokensCharts points={points} />
          </div>
        </>
      ) : null}
    </section>
  )
}
