import { useEffect, useState } from "react"
import type { Reply } from "../contract.js"
import { call } from "./api.js"
import { AccuracyChart, AccuracyTokensCharts, type BenchPoint } from "./charts.js"
import { ErrorNote, useAsync } from "./shared.js"

export const EvalPanel = () => {
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
          <div className="charts">
            <AccuracyChart points={points} />
            <AccuracyTokensCharts points={points} />
          </div>
        </>
      ) : null}
    </section>
  )
}
