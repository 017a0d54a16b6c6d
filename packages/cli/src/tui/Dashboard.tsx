import type { BudgetState, EndpointStats, Item, Problem } from "@fastcot/core"
import { Box, Text, useInput } from "ink"
import { type ReactElement, useState } from "react"
import { color } from "./color.js"
import { ItemView } from "./ItemView.js"
import { bar, type DashboardState, formatDuration, histograms, median, stageFigures } from "@fastcot/core"

export interface DashboardControls {
  readonly onPause: () => void
  readonly onQuit: () => void
  /** Loads an item for the inspector (undefined while it loads or when it is gone). */
  readonly onInspect: (itemId: string) => void
  readonly onCloseInspector: () => void
}

export interface DashboardProps extends DashboardControls {
  readonly state: DashboardState
  readonly inspecting?: { readonly item: Item; readonly problem?: Problem | undefined } | undefined
  readonly width: number
  readonly height: number
  readonly now: number
}

const pad = (s: string, n: number) => (s.length >= n ? s.slice(0, n) : s + " ".repeat(n - s.length))
const lpad = (s: string, n: number) => (s.length >= n ? s.slice(0, n) : " ".repeat(n - s.length) + s)
const money = (x: number) => `$${x < 10 ? x.toFixed(4) : x.toFixed(2)}`

/** The spending limit: spent (the workspace's, earlier runs counted) of each limit, and what calls in flight have reserved. */
/** Batch-mode endpoints, summed: their jobs, the requests waiting on them, and what the batch price saved. */
const batchLine = (models: ReadonlyArray<EndpointStats>): ReactElement | null => {
  const batched = models.flatMap((m) => (m.batch === undefined ? [] : [m.batch]))
  if (batched.length === 0) return null
  const sum = (f: (b: (typeof batched)[number]) => number) => batched.reduce((n, b) => n + f(b), 0)
  return (
    <Text wrap="truncate">
      <Text bold>batches </Text>
      {sum((b) => b.submitted)} sent · {sum((b) => b.running)} at the provider · {sum((b) => b.done)} done ·{" "}
      <Text color={color(sum((b) => b.failed) > 0 ? "yellow" : "")}>{sum((b) => b.failed)} failed or expired</Text> ·{" "}
      {sum((b) => b.linesWaiting)} waiting · {money(sum((b) => b.savedUsd))} saved
    </Text>
  )
}

const budgetLine = (b: BudgetState): ReactElement => {
  const parts = [
    b.limits.usd !== undefined ? `${money(b.spentUsd)}/${money(b.limits.usd)}` : undefined,
    b.limits.tokens !== undefined ? `${b.spentTokens}/${b.limits.tokens} tokens` : undefined
  ].filter((x) => x !== undefined)
  const reserved = [
    b.limits.usd !== undefined ? money(b.reservedUsd) : undefined,
    b.limits.tokens !== undefined ? `${b.reservedTokens} tokens` : undefined
  ].filter((x) => x !== undefined)
  return (
    <Text wrap="truncate">
      <Text bold>budget </Text>
      <Text color={color(b.reached ? "yellow" : "")}>{parts.join(" · ")}</Text>
      {b.reached ? " · reached: no new calls" : ` · in flight ≤ ${reserved.join(", ")}`}
    </Text>
  )
}

/** The workers sharing the run: how many, and what each holds. */
const workersLine = (workers: DashboardState["workers"]): ReactElement => (
  <Text wrap="truncate">
    <Text bold>workers {workers.length} </Text>
    {workers.map((w) => `${w.host}:${w.pid} holds ${w.holds}`).join(" · ")}
  </Text>
)

const HELP = [
  "p        pause / resume: calls in flight finish, no new ones start",
  "q        quit cleanly: pause, let calls in flight finish, then stop (run again to resume)",
  "↑ / ↓    move the cursor over recent items",
  "i        open the inspector on the item under the cursor (←/→ rounds, esc closes)",
  "?        this help (any key closes it)"
]

/** The live dashboard of `fastcot run`: stages, models, verdicts, fates, token histograms, log. */
export const Dashboard = (props: DashboardProps): ReactElement => {
  const { state: s, width, height, now } = props
  const [cursor, setCursor] = useState(0)
  const [help, setHelp] = useState(false)
  const [round, setRound] = useState(0)

  useInput((input, key) => {
    if (help) return setHelp(false)
    if (props.inspecting !== undefined) {
      if (key.escape || input === "q" || input === "i") return props.onCloseInspector()
      if (key.leftArrow) return setRound((r) => Math.max(0, r - 1))
      if (key.rightArrow) return setRound((r) => Math.min(props.inspecting!.item.rounds.length - 1, r + 1))
      return
    }
    if (input === "p") return props.onPause()
    if (input === "q") return props.onQuit()
    if (input === "?") return setHelp(true)
    if (key.upArrow) return setCursor((c) => Math.max(0, c - 1))
    if (key.downArrow) return setCursor((c) => Math.min(Math.max(0, s.recentItems.length - 1), c + 1))
    if (input === "i") {
      const it = s.recentItems[Math.min(cursor, s.recentItems.length - 1)]
      if (it !== undefined) {
        setRound(0)
        props.onInspect(it.id)
      }
    }
  })

  const elapsed = formatDuration((now - s.startedAt) / 1000)
  const status = s.finished
    ? "done"
    : s.quitting
      ? "quitting: letting calls in flight finish"
      : s.paused
        ? "PAUSED (p resumes)"
        : "running"
  const header = (
    <Text wrap="truncate">
      <Text bold>fastcot run</Text> ·{" "}
      <Text color={color(s.paused || s.quitting ? "yellow" : s.finished ? "green" : "cyan")}>{status}</Text> · {elapsed}{" "}
      · {s.title}
    </Text>
  )
  const footer = (
    <Text dimColor>
      p pause · q quit · ↑↓ select · i inspect · ? help{s.message !== undefined ? `   ${s.message}` : ""}
    </Text>
  )

  if (help) {
    return (
      <Box flexDirection="column" width={width}>
        {header}
        <Text bold>keys</Text>
        {HELP.map((h) => (
          <Text key={h}>{h}</Text>
        ))}
      </Box>
    )
  }
  if (props.inspecting !== undefined) {
    return (
      <Box flexDirection="column" width={width} height={height}>
        {header}
        <ItemView item={props.inspecting.item} problem={props.inspecting.problem} round={round} width={width} />
        <Text dimColor>esc/q/i close · ←→ rounds</Text>
      </Box>
    )
  }

  const barWidth = Math.max(8, Math.min(30, width - 62))
  const stageRows = s.stages.map((r) => {
    const f = stageFigures(r, now)
    const pct = f.fraction === undefined ? "   " : lpad(`${Math.round(f.fraction * 100)}%`, 4)
    const count = r.total !== undefined ? `${f.finished + r.skipped}/${r.total}` : `${f.finished}`
    const eta =
      r.finishedAt !== undefined
        ? r.startedAt !== undefined
          ? "done"
          : ""
        : f.etaSeconds !== undefined
          ? formatDuration(f.etaSeconds)
          : r.startedAt === undefined
            ? "waiting"
            : "-"
    return (
      <Text key={r.name}>
        {pad(r.name, 14)}{" "}
        <Text color={color(r.finishedAt !== undefined ? "green" : "cyan")}>{bar(f.fraction, barWidth)}</Text> {pct}{" "}
        {lpad(count, 11)} {lpad(String(r.dropped), 5)}{" "}
        <Text color={color(r.failed > 0 ? "red" : "")}>{lpad(String(r.failed), 5)}</Text>{" "}
        {lpad(`${f.rate.toFixed(1)}/s`, 8)} {lpad(eta, 8)}
      </Text>
    )
  })

  const byRole = new Map<
    string,
    {
      inFlight: number
      window: number
      retries: number
      errors: number
      cache: number
      prompt: number
      completion: number
      cost: number
      models: Set<string>
    }
  >()
  for (const m of s.models) {
    const r = byRole.get(m.role) ?? {
      inFlight: 0,
      window: 0,
      retries: 0,
      errors: 0,
      cache: 0,
      prompt: 0,
      completion: 0,
      cost: 0,
      models: new Set<string>()
    }
    r.inFlight += m.inFlight
    r.window += m.window
    r.retries += m.retries
    r.errors += m.failed
    r.cache += m.cacheHits
    r.prompt += m.promptTokens
    r.completion += m.completionTokens
    r.cost += m.costUsd
    r.models.add(m.model)
    byRole.set(m.role, r)
  }
  const modelRows = [...byRole].map(([role, r]) => (
    <Text key={role}>
      {pad(role, 9)} {pad([...r.models].join(",").split(/[\\/]/).pop() ?? "", Math.max(8, width - 70))}{" "}
      {lpad(`${r.inFlight}/${r.window}`, 8)} {lpad(String(r.retries), 7)}{" "}
      <Text color={color(r.errors > 0 ? "red" : "")}>{lpad(String(r.errors), 6)}</Text> {lpad(String(r.cache), 6)}{" "}
      {lpad((s.tokensPerSecond[role] ?? 0).toFixed(0), 7)} {lpad(money(r.cost), 9)}
    </Text>
  ))

  const v = s.verdicts
  const keptTotal = Object.values(s.kept).reduce((a, b) => a + b, 0)
  const droppedTotal = Object.values(s.dropped).reduce((a, b) => a + b, 0)
  const h = histograms(s.tokensBefore, s.tokensAfter)
  const mb = median(s.tokensBefore)
  const ma = median(s.tokensAfter)
  // The log and the recent items share what is left of the screen.
  const used =
    1 +
    1 +
    s.stages.length +
    1 +
    byRole.size +
    4 +
    3 +
    1 +
    (s.budget !== undefined ? 1 : 0) +
    (s.models.some((m) => m.batch !== undefined) ? 1 : 0) +
    (s.workers.length > 0 ? 1 : 0)
  const paneHeight = Math.max(2, height - used)
  const logLines = s.log.slice(-paneHeight)
  const recent = s.recentItems.slice(0, paneHeight)
  const half = Math.floor(width / 2) - 1
  return (
    <Box flexDirection="column" width={width}>
      {header}
      <Text bold>
        {pad("stage", 14)} {pad("progress", barWidth + 5)} {lpad("done", 11)} {lpad("drop", 5)} {lpad("fail", 5)}{" "}
        {lpad("rate", 8)} {lpad("eta", 8)}
      </Text>
      {stageRows}
      <Text bold>
        {pad("role", 9)} {pad("model", Math.max(8, width - 70))} {lpad("busy/max", 8)} {lpad("retries", 7)}{" "}
        {lpad("errors", 6)} {lpad("cached", 6)} {lpad("tok/s", 7)} {lpad("cost", 9)}
      </Text>
      {modelRows.length > 0 ? modelRows : <Text dimColor>no model calls yet</Text>}
      {batchLine(s.models)}
      {s.budget !== undefined ? budgetLine(s.budget) : null}
      {s.workers.length > 0 ? workersLine(s.workers) : null}
      <Text>
        <Text bold>verdicts </Text>easy {v.easy} · <Text color={color("green")}>medium {v.medium}</Text> · hard {v.hard}{" "}
        · unparseable {v.unparseable}
      </Text>
      <Text>
        <Text bold>kept {keptTotal}</Text>
        {Object.entries(s.kept).length > 0
          ? `: ${Object.entries(s.kept)
              .map(([k, n]) => `${k} ${n}`)
              .join(" · ")}`
          : ""}
      </Text>
      <Text>
        <Text bold>dropped {droppedTotal}</Text>
        {Object.entries(s.dropped).length > 0
          ? `: ${Object.entries(s.dropped)
              .map(([k, n]) => `${k} ${n}`)
              .join(" · ")}`
          : ""}
      </Text>
      <Text>
        <Text bold>tokens </Text>before [{h.a}] {mb !== undefined ? `median ${mb}` : ""} · after [{h.b}]{" "}
        {ma !== undefined ? `median ${ma}` : ""}
        {width >= 96 ? <Text dimColor> (32…16k, log scale)</Text> : null}
      </Text>
      <Box flexDirection="row" width={width} height={paneHeight + 1}>
        <Box flexDirection="column" width={half}>
          <Text bold>log</Text>
          {logLines.length === 0 ? <Text dimColor>no warnings</Text> : null}
          {logLines.map((l, i) => (
            <Text
              key={i}
              color={color(l.level === "error" ? "red" : l.level === "warn" ? "yellow" : "")}
              wrap="truncate"
            >
              {l.itemId !== undefined ? `${l.itemId.slice(0, 10)} ` : ""}
              {l.message}
            </Text>
          ))}
        </Box>
        <Box flexDirection="column" width={width - half - 1} marginLeft={1}>
          <Text bold>recent items</Text>
          {recent.map((it, i) => (
            <Text key={`${it.id}-${i}`} inverse={i === cursor} wrap="truncate">
              {it.id.slice(0, 12)} {pad(it.stage, 13)} {it.what}
            </Text>
          ))}
        </Box>
      </Box>
      {footer}
    </Box>
  )
}
