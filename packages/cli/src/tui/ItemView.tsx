import { describeReason, type Item, type Problem, type Trace } from "@fastcot/core"
import { diffWords } from "diff"
import { Box, Text } from "ink"
import type { ReactElement } from "react"
import { color } from "./color.js"

/** Lines of text cut to a width (no wrapping inside the dashboard's fixed panes). */
const clip = (text: string, width: number) => (text.length > width ? text.slice(0, Math.max(0, width - 1)) + "…" : text)

/** A word-level diff of two traces: removed words in red (struck), added ones in green. */
export const WordDiff = ({
  before,
  after,
  maxChars = 1600
}: {
  before: string
  after: string
  maxChars?: number
}): ReactElement => {
  const parts = diffWords(before.slice(0, maxChars), after.slice(0, maxChars))
  return (
    <Text wrap="wrap">
      {parts.map((p, i) =>
        p.added ? (
          <Text key={i} color={color("green")} underline={color("green") === undefined}>
            {p.value}
          </Text>
        ) : p.removed ? (
          <Text key={i} color={color("red")} strikethrough>
            {p.value}
          </Text>
        ) : (
          <Text key={i}>{p.value}</Text>
        )
      )}
    </Text>
  )
}

const traceTitle = (t: Trace) =>
  `${t.origin}${t.model !== undefined ? ` (${t.model})` : ""}${t.tokens !== undefined ? `, ${t.tokens.reasoning} tokens` : ""}`

/**
 * One item: its fate, each round (verdicts with the judge's raw reply, verification results,
 * calls), and the selected round's trace against the one before it as a word-level diff.
 */
export const ItemView = ({
  item,
  problem,
  round,
  width
}: {
  item: Item
  problem?: Problem | undefined
  round: number
  width: number
}): ReactElement => {
  const rounds = item.rounds
  const selected = rounds[Math.max(0, Math.min(round, rounds.length - 1))]
  // The trace a round produced, and the one it started from.
  const output = selected?.output ?? selected?.input
  const previous = selected?.input ?? item.original
  return (
    <Box flexDirection="column" width={width}>
      <Text bold>
        item {item.id} · problem {item.problemId}
      </Text>
      <Text>
        fate{" "}
        <Text color={color(item.fate === "kept" ? "green" : item.fate === "dropped" ? "red" : "yellow")}>
          {item.fate}
        </Text>
        {item.keptAs !== undefined ? ` (${item.keptAs})` : ""}
        {item.reason !== undefined ? ` — ${clip(describeReason(item.reason), width - 30)}` : ""}
      </Text>
      {problem !== undefined ? <Text>{clip(`question: ${problem.question.replace(/\s+/g, " ")}`, width)}</Text> : null}
      {problem !== undefined ? <Text>{clip(`reference: ${problem.answer ?? "(none)"}`, width)}</Text> : null}
      <Text bold>rounds (←/→ to choose)</Text>
      {rounds.map((r) => (
        <Text key={r.index} inverse={r.index === selected?.index}>
          {clip(
            `${String(r.index).padStart(2)} ${r.action.padEnd(9)}` +
              (r.verdict !== undefined
                ? ` verdict ${r.verdict.level} (raw ${JSON.stringify(r.verdict.raw.slice(0, 40))})`
                : "") +
              (r.verification !== undefined
                ? ` ${r.verification.ok ? "verified" : "NOT verified"}: ${r.verification.reason}`
                : "") +
              r.calls
                .map((c) => ` ${c.role} ${c.promptTokens}+${c.completionTokens} tok${c.cached ? " cached" : ""}`)
                .join("") +
              (r.note !== undefined ? ` (${r.note})` : ""),
            width
          )}
        </Text>
      ))}
      {selected !== undefined && output !== undefined ? (
        <Box flexDirection="column" marginTop={1}>
          <Text bold>
            {previous !== undefined && previous.reasoning !== output.reasoning
              ? `${traceTitle(previous)} → ${traceTitle(output)}`
              : traceTitle(output)}
          </Text>
          {previous !== undefined && previous.reasoning !== output.reasoning ? (
            <WordDiff before={previous.reasoning} after={output.reasoning} />
          ) : (
            <Text wrap="wrap">{output.reasoning.slice(0, 1600)}</Text>
          )}
          {selected.verdict !== undefined ? (
            <Text>{clip(`judge's reply: ${JSON.stringify(selected.verdict.raw)}`, width)}</Text>
          ) : null}
        </Box>
      ) : null}
    </Box>
  )
}
