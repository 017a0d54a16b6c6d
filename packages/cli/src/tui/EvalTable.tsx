import { Box, render, Text } from "ink"
import type { ReactElement } from "react"
import { color } from "./color.js"
import { bar, formatDuration } from "@fastcot/core"

export interface BenchRow {
  readonly bench: string
  done: number
  total: number
  correct: number
  tokens: number
  startedAt: number
}

/** `fastcot eval`'s live table: per benchmark, answers graded, running accuracy and mean output tokens. */
export const EvalTable = ({
  model,
  rows,
  now
}: {
  model: string
  rows: ReadonlyArray<BenchRow>
  now: number
}): ReactElement => (
  <Box flexDirection="column">
    <Text bold wrap="truncate">
      fastcot eval · {model}
    </Text>
    <Text bold>
      {"benchmark".padEnd(14)} {"graded".padEnd(28)} {"accuracy".padStart(9)} {"tokens/answer".padStart(14)}{" "}
      {"eta".padStart(7)}
    </Text>
    {rows.map((r) => {
      const elapsed = (now - r.startedAt) / 1000
      const rate = elapsed > 0 ? r.done / elapsed : 0
      const eta = r.done >= r.total ? "done" : rate > 0 ? formatDuration((r.total - r.done) / rate) : "-"
      return (
        <Text key={r.bench}>
          {r.bench.padEnd(14)}{" "}
          <Text color={color(r.done >= r.total ? "green" : "cyan")}>
            {bar(r.total > 0 ? r.done / r.total : undefined, 14)}
          </Text>{" "}
          {`${r.done}/${r.total}`.padStart(13)}{" "}
          {(r.done > 0 ? `${((100 * r.correct) / r.done).toFixed(1)}%` : "-").padStart(9)}{" "}
          {(r.done > 0 ? (r.tokens / r.done).toFixed(0) : "-").padStart(14)} {eta.padStart(7)}
        </Text>
      )
    })}
  </Box>
)

/** Mounts the table on the terminal; `update` records progress, redrawn ten times a second at most. */
export const startEvalTable = (model: string) => {
  const rows: Array<BenchRow> = []
  let dirty = false
  const instance = render(<EvalTable model={model} rows={rows} now={Date.now()} />, {
    exitOnCtrlC: false,
    patchConsole: false
  })
  const timer = setInterval(() => {
    if (!dirty) return
    dirty = false
    instance.rerender(<EvalTable model={model} rows={rows} now={Date.now()} />)
  }, 100)
  return {
    update: (bench: string, done: number, total: number, correct: number, tokens: number) => {
      let r = rows.find((x) => x.bench === bench)
      if (r === undefined) rows.push((r = { bench, done, total, correct, tokens, startedAt: Date.now() }))
      Object.assign(r, { done, total, correct, tokens })
      dirty = true
    },
    close: () => {
      clearInterval(timer)
      instance.rerender(<EvalTable model={model} rows={rows} now={Date.now()} />)
      instance.unmount()
    }
  }
}
