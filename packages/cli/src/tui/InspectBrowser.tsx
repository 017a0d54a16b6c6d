import type { Item, Problem } from "@fastcot/core"
import { Box, Text, useApp, useInput } from "ink"
import { type ReactElement, useEffect, useState } from "react"
import { color } from "./color.js"
import { ItemView } from "./ItemView.js"

export const FATES = ["kept", "dropped", "pending", "failed"] as const
export type Fate = (typeof FATES)[number]

export interface ListedItem {
  readonly id: string
  readonly what: string
  readonly rounds: number
  readonly question: string
}

export interface InspectBrowserProps {
  readonly list: (fate: Fate) => Promise<ReadonlyArray<ListedItem>>
  readonly open: (id: string) => Promise<{ item: Item; problem?: Problem | undefined } | undefined>
  readonly counts: Readonly<Record<Fate, number>>
  readonly width: number
  readonly height: number
  readonly initialFate?: Fate | undefined
}

/**
 * `fastcot inspect` on a terminal: items by fate (tab / 1-3 switch), ↑↓ to choose, enter to open
 * one (its rounds, the judge's replies, verification, and each rewrite as a word-level diff).
 */
export const InspectBrowser = (props: InspectBrowserProps): ReactElement => {
  const app = useApp()
  const [fate, setFate] = useState<Fate>(props.initialFate ?? "kept")
  const [items, setItems] = useState<ReadonlyArray<ListedItem> | undefined>(undefined)
  const [cursor, setCursor] = useState(0)
  const [opened, setOpened] = useState<{ item: Item; problem?: Problem | undefined } | undefined>(undefined)
  const [round, setRound] = useState(0)

  useEffect(() => {
    let live = true
    setItems(undefined)
    setCursor(0)
    void props.list(fate).then((xs) => live && setItems(xs))
    return () => {
      live = false
    }
  }, [fate])

  useInput((input, key) => {
    if (opened !== undefined) {
      if (key.escape || key.backspace || key.delete) return setOpened(undefined)
      if (input === "q") return app.exit()
      if (key.leftArrow) return setRound((r) => Math.max(0, r - 1))
      if (key.rightArrow) return setRound((r) => Math.min(opened.item.rounds.length - 1, r + 1))
      return
    }
    if (input === "q" || key.escape) return app.exit()
    if (key.tab) return setFate((f) => FATES[(FATES.indexOf(f) + 1) % FATES.length]!)
    const n = Number(input)
    if (n >= 1 && n <= FATES.length) return setFate(FATES[n - 1]!)
    if (key.upArrow) return setCursor((c) => Math.max(0, c - 1))
    if (key.downArrow) return setCursor((c) => Math.min(Math.max(0, (items?.length ?? 1) - 1), c + 1))
    if (key.return && items !== undefined && items[cursor] !== undefined) {
      void props.open(items[cursor]!.id).then((found) => {
        setRound(0)
        setOpened(found)
      })
    }
  })

  if (opened !== undefined) {
    return (
      <Box flexDirection="column" width={props.width}>
        <ItemView item={opened.item} problem={opened.problem} round={round} width={props.width} />
        <Text dimColor>←→ rounds · esc back · q quit</Text>
      </Box>
    )
  }
  const rows = Math.max(3, props.height - 4)
  const start = Math.max(0, Math.min(cursor - Math.floor(rows / 2), (items?.length ?? 0) - rows))
  const visible = (items ?? []).slice(start, start + rows)
  return (
    <Box flexDirection="column" width={props.width}>
      <Text>
        {FATES.map((f, i) => (
          <Text key={f} inverse={f === fate} color={color(f === fate ? "cyan" : "")}>
            {` ${i + 1} ${f} (${props.counts[f]}) `}
          </Text>
        ))}
      </Text>
      {items === undefined ? (
        <Text dimColor>loading…</Text>
      ) : items.length === 0 ? (
        <Text dimColor>no {fate} items</Text>
      ) : null}
      {visible.map((it, i) => (
        <Text key={it.id} inverse={start + i === cursor} wrap="truncate">
          {it.id.slice(0, 18)} {it.what.padEnd(22).slice(0, 22)} {String(it.rounds).padStart(2)} rounds {it.question}
        </Text>
      ))}
      <Text dimColor>↑↓ choose · enter open · tab/1-3 fate · q quit</Text>
    </Box>
  )
}
