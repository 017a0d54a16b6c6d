import { useState } from "react"
import type { Reply } from "../contract.js"
import { call } from "./api.js"
import { ErrorNote, Select, useAsync } from "./shared.js"

export const ExportPanel = () => {
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
