import { useState } from "react"
import type { Reply } from "../contract.js"
import { call } from "./api.js"
import { Action, Choice, FieldRow, TextInput } from "./controls.js"
import { ErrorNote, useAsync } from "./shared.js"

export const ExportPanel = () => {
  const [format, setFormat] = useState<"openai" | "sharegpt" | "alpaca" | "preference">("openai")
  const [val, setVal] = useState("0.05")
  const [done, setDone] = useState<Reply<"export.run"> | undefined>(undefined)
  const { error, busy, run } = useAsync()
  return (
    <section aria-labelledby="export-title">
      <h2 id="export-title">Export for SFT</h2>
      <FieldRow>
        <Choice
          label="Format"
          value={format}
          options={[
            ["openai", "OpenAI messages"],
            ["sharegpt", "ShareGPT"],
            ["alpaca", "Alpaca"],
            ["preference", "Preference pairs"]
          ]}
          onChange={setFormat}
        />
        <TextInput label="Validation fraction" inputMode="decimal" value={val} onChange={setVal} />
      </FieldRow>
      <Action
        className="button primary"
        isDisabled={busy}
        onPress={() => void run(async () => setDone(await call("export.run", { format, valFraction: Number(val) })))}
      >
        Export
      </Action>
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
