import { useEffect, useState } from "react"
import { Cell, Column, Row, Table, TableBody, TableHeader } from "react-aria-components"
import type { ItemCursor, ItemDetail, ItemPage, ItemSort } from "../contract.js"
import { call } from "./api.js"
import { Action, Choice, FieldRow, TextInput } from "./controls.js"
import { ErrorNote, useAsync } from "./shared.js"
import { WordDiff } from "./WordDiff.js"

/** Items a page holds: the store reads one page at a time, whatever the workspace's size. */
const PAGE = 200

/** The table's sortable columns and the store's sort key of each. */
const SORTABLE = { id: "id", fate: "fate", tokens: "tokens", review: "review" } as const
const FIRST: ItemSort = { by: "id", direction: "asc" }

/** How often the page shown is read again while a run works on the workspace. */
const LIVE_REFRESH_MS = 3000

/**
 * The item list: filters and sorting run in the store (SQL over the whole workspace), a page at a
 * time by keyset; click a row or press Enter on it to open the item. While a run works on the
 * workspace (`live`: this app's, or another process's that holds its lock) the page shown, and the
 * item open, are read again every few seconds, and once more when the run ends.
 */
export const ItemsPanel = ({ live }: { live: boolean }) => {
  const [filter, setFilter] = useState<{
    fate: "" | "kept" | "dropped" | "pending" | "failed"
    verdict: "" | "easy" | "medium" | "hard"
    search: string
    maxTokens: string
  }>({ fate: "", verdict: "", search: "", maxTokens: "" })
  const [page, setPage] = useState<ItemPage>({ rows: [], next: null })
  const [order, setOrder] = useState<ItemSort>(FIRST)
  // Keyset paging: where each page starts (the first page's is undefined).
  const [pages, setPages] = useState<ReadonlyArray<ItemCursor | undefined>>([undefined])
  const after = pages[pages.length - 1]
  const [open, setOpen] = useState<ItemDetail | undefined>(undefined)
  const { error, run } = useAsync()
  const [tick, setTick] = useState(0)
  useEffect(() => {
    if (!live) return
    const t = setInterval(() => setTick((n) => n + 1), LIVE_REFRESH_MS)
    return () => {
      clearInterval(t)
      // Once more when the run ends: its last items' fates.
      setTick((n) => n + 1)
    }
  }, [live])
  useEffect(() => {
    void run(async () =>
      setPage(
        await call("items.list", {
          ...(filter.fate !== "" ? { fate: filter.fate } : {}),
          ...(filter.verdict !== "" ? { verdict: filter.verdict } : {}),
          ...(filter.search !== "" ? { search: filter.search } : {}),
          ...(/^\d+$/.test(filter.maxTokens) ? { maxTokens: Number(filter.maxTokens) } : {}),
          ...(order !== FIRST ? { order } : {}),
          ...(after !== undefined ? { after } : {}),
          limit: PAGE
        })
      )
    )
  }, [filter.fate, filter.verdict, filter.search, filter.maxTokens, order, after, tick])
  // The item open below the table is read again with the page (its rounds grow while it is worked on).
  useEffect(() => {
    if (tick > 0 && open !== undefined) void run(async () => setOpen(await call("items.get", { id: open.id })))
  }, [tick])
  const refilter = (next: typeof filter) => {
    setFilter(next)
    setPages([undefined])
  }
  const rows = page.rows
  return (
    <section aria-labelledby="items-title">
      <h2 id="items-title">Dataset</h2>
      <FieldRow label="Filters">
        <Choice
          label="Fate"
          value={filter.fate}
          options={[["", "all"], ["kept"], ["dropped"], ["pending"], ["failed"]]}
          onChange={(fate) => refilter({ ...filter, fate })}
        />
        <Choice
          label="Verdict"
          value={filter.verdict}
          options={[["", "any"], ["easy"], ["medium"], ["hard"]]}
          onChange={(verdict) => refilter({ ...filter, verdict })}
        />
        <TextInput
          label="Search"
          type="search"
          value={filter.search}
          placeholder="question text or item id"
          onChange={(search) => refilter({ ...filter, search })}
        />
        <TextInput
          label="At most this many reasoning tokens"
          inputMode="numeric"
          value={filter.maxTokens}
          onChange={(maxTokens) => refilter({ ...filter, maxTokens })}
        />
      </FieldRow>
      <ErrorNote error={error} />
      <Table
        aria-label="Items"
        className="table"
        sortDescriptor={{ column: order.by, direction: order.direction === "asc" ? "ascending" : "descending" }}
        onSortChange={(d) => {
          setOrder({
            by: SORTABLE[String(d.column) as keyof typeof SORTABLE] ?? "id",
            direction: d.direction === "descending" ? "desc" : "asc"
          })
          setPages([undefined])
        }}
        onRowAction={(id) => void run(async () => setOpen(await call("items.get", { id: String(id) })))}
      >
        <TableHeader>
          <Column id="id" isRowHeader allowsSorting>
            Item
          </Column>
          <Column id="fate" allowsSorting>
            Fate
          </Column>
          <Column id="rounds">Rounds</Column>
          <Column id="tokens" allowsSorting>
            Tokens before → after
          </Column>
          <Column id="review" allowsSorting>
            Review
          </Column>
          <Column id="question">Question</Column>
        </TableHeader>
        <TableBody
          items={rows}
          renderEmptyState={() =>
            filter.fate !== "" || filter.verdict !== "" || filter.search !== "" || filter.maxTokens !== ""
              ? "No item matches these filters."
              : "No items yet: import problems or traces on the Workspace tab."
          }
        >
          {(r) => (
            <Row id={r.id} className="row">
              <Cell>{r.id}</Cell>
              <Cell>
                {r.fate} {r.what}
              </Cell>
              <Cell className="num">{r.rounds}</Cell>
              <Cell className="num">
                {r.tokensBefore ?? "-"} → {r.tokensAfter ?? "-"}
              </Cell>
              <Cell>{r.review ?? "-"}</Cell>
              <Cell>{r.question.slice(0, 120)}</Cell>
            </Row>
          )}
        </TableBody>
      </Table>
      <div className="actions" role="group" aria-label="Pages">
        <span>
          Page {pages.length}: {rows.length} items
        </span>
        <Action isDisabled={pages.length === 1} onPress={() => setPages(pages.slice(0, -1))}>
          Previous page
        </Action>
        <Action isDisabled={page.next === null} onPress={() => page.next !== null && setPages([...pages, page.next])}>
          Next page
        </Action>
      </div>
      {open !== undefined ? (
        <article aria-labelledby="item-title" className="item">
          <h3 id="item-title">
            Item {open.id}: {open.fate}
            {open.keptAs !== null ? ` (${open.keptAs})` : ""}
            {open.reason !== null ? ` — ${open.reason}` : ""}
          </h3>
          {open.review !== null ? (
            <p>
              Review: {open.review.decision} by {open.review.reviewer} at {open.review.at}
              {open.review.reason !== null ? ` — ${open.review.reason}` : ""}
            </p>
          ) : null}
          <p>Question: {open.question}</p>
          <p>Reference: {open.reference ?? "none"}</p>
          <div className="side">
            <div>
              <h4>Original</h4>
              <pre>{open.original ?? ""}</pre>
            </div>
            <div>
              <h4>Final</h4>
              <pre>{open.final ?? ""}</pre>
            </div>
          </div>
          <h4>Rounds</h4>
          <ol start={0}>
            {open.rounds.map((r) => (
              <li key={r.index}>
                <strong>{r.action}</strong>
                {r.verdict !== null
                  ? ` — verdict ${r.verdict.level} (judge replied ${JSON.stringify(r.verdict.raw.slice(0, 200))})`
                  : ""}
                {r.verification !== null
                  ? ` — ${r.verification.ok ? "verified" : "not verified"}: ${r.verification.reason}`
                  : ""}
                {r.calls.length > 0 ? <span className="calls"> · {r.calls.join(" · ")}</span> : null}
                {r.before !== null && r.after !== null && r.before !== r.after ? (
                  <WordDiff before={r.before} after={r.after} />
                ) : null}
              </li>
            ))}
          </ol>
        </article>
      ) : null}
    </section>
  )
}
