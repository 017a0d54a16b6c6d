import { type DragEvent, useState } from "react"
import type { Reply, StatusView } from "../contract.js"
import { call } from "./api.js"
import { CountsChart } from "./charts.js"
import { Action, TextInput } from "./controls.js"
import { ErrorNote, useAsync } from "./shared.js"

export const WorkspacePanel = ({
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
        <TextInput
          label="Workspace folder (the same fastcot.db the command line uses)"
          value={path}
          onChange={setPath}
          placeholder="/data/my-run"
          isRequired
          className="field wide"
        />
        <Action type="submit" isDisabled={busy} className="button primary">
          Open or create
        </Action>
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
          <CountsChart
            caption="Kept and dropped items"
            unit="items"
            empty="No item is kept or dropped yet: import problems, then start a run on the Run tab."
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
