import { useEffect, useState } from "react"
import type { ItemDetail, ItemRow } from "../contract.js"
import { call } from "./api.js"
import { ErrorNote, Select, useAsync } from "./shared.js"
import { WordDiff } from "./WordDiff.js"

type Order = "id" | "tokens-asc" | "tokens-desc"
type PageStart = { afterId: string; afterTokens?: number }

/** Items a page holds: the store reads one page at a time, whatever the workspace's size. */
const PAGE = 200

export const ItemsPanel = () => {
  const [filter, setFilter] = useState<{
    fate: "" | "kept" | "dropped" | "pending" | "failed"
    verdict: "" | "easy" | "medium" | "hard"
    search: string
    maxTokens: string
  }>({ fate: "", verdict: "", search: "", maxTokens: "" })
  const [rows, setRows] = useState<ReadonlyArray<ItemRow>>([])
  const [order, setOrder] = useState<Order>("id")
  // Keyset paging: where each page starts after (the first page's is undefined).
  const [pages, setPages] = useState<ReadonlyArray<PageStart | undefined>>([undefined])
  const after = pages[pages.length - 1]
  const [open, setOpen] = useState<ItemDetail | undefined>(undefined)
  const { error, run } = useAsync()
  useEffect(() => {
    void run(async () =>
      setRows(
        await call("items.list", {
          ...(filter.fate !== "" ? { fate: filter.fate } : {}),
          ...(filter.verdict !== "" ? { verdict: filter.verdict } : {}),
          ...(filter.search !== "" ? { search: filter.search } : {}),
          ...(filter.maxTokens !== "" ? { maxTokens: Number(filter.maxTokens) } : {}),
          ...(order !== "id" ? { order } : {}),
          ...(after !== undefined ? after : {}),
          limit: PAGE
        })
      )
    )
  }, [filter.fate, filter.verdict, filter.search, filter.maxTokens, order, after])
  const sortByTokens = () => {
    setOrder(order === "id" ? "tokens-desc" : order === "tokens-desc" ? "tokens-asc" : "id")
    setPages([undefined])
  }
  const nextPage = () => {
    const last = rows[rows.length - 1]!
    setPages([
      ...pages,
      order === "id" || last.tokensAfter === null
        ? { afterId: last.id }
        : { afterId: last.id, afterTokens: last.tokensAfter }
    ])
  }
  const refilter = (next: typeof filter) => {
    setFilter(next)
    setPages([undefined])
  }
  return (
    <section aria-labelledby="items-title">
      <h2 id="items-title">Dataset</h2>
      <div className="filters">
        <label htmlFor="f-fate">Fate</label>
        <Select
          id="f-fate"
          value={filter.fate}
          options={[["", "all"], ["kept"], ["dropped"], ["pending"], ["failed"]]}
          onChange={(fate) => refilter({ ...filter, fate })}
        />
        <label htmlFor="f-verdict">Verdict</label>
        <Select
          id="f-verdict"
          value={filter.verdict}
          options={[["", "any"], ["easy"], ["medium"], ["hard"]]}
          onChange={(verdict) => refilter({ ...filter, verdict })}
        />
        <label htmlFor="f-search">Search</label>
        <input
          id="f-search"
          type="search"
          value={filter.search}
          onChange={(e) => refilter({ ...filter, search: e.target.value })}
        />
        <label htmlFor="f-tokens">At most this many reasoning tokens</label>
        <input
          id="f-tokens"
          type="number"
          min="0"
          value={filter.maxTokens}
          onChange={(e) => refilter({ ...filter, maxTokens: e.target.value })}
        />
      </div>
      <ErrorNote error={error} />
      <table aria-label="Items">
        <thead>
          <tr>
            <th scope="col">Item</th>
            <th scope="col">Fate</th>
            <th scope="col">Rounds</th>
            <th
              scope="col"
              aria-sort={order === "tokens-desc" ? "descending" : order === "tokens-asc" ? "ascending" : "none"}
            >
              <button className="link" onClick={sortByTokens}>
                Tokens before → after{order === "tokens-desc" ? " ▼" : order === "tokens-asc" ? " ▲" : ""}
              </button>
            </th>
            <th scope="col">Review</th>
            <th scope="col">Question</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id}>
              <td>
                <button
                  className="link"
                  onClick={() => void run(async () => setOpen(await call("items.get", { id: r.id })))}
                >
                  {r.id}
                </button>
              </td>
              <td>
                {r.fate} {r.what}
              </td>
              <td className="num">{r.rounds}</td>
              <td className="num">
                {r.tokensBefore ?? "-"} → {r.tokensAfter ?? "-"}
              </td>
              <td>{r.review ?? "-"}</td>
              <td>{r.question.slice(0, 120)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="actions" role="group" aria-label="Pages">
        <span>
          Page {pages.length}: {rows.length} items
        </span>
        <button disabled={pages.length === 1} onClick={() => setPages(pages.slice(0, -1))}>
          Previous page
        </button>
        <button disabled={rows.length < PAGE} onClick={nextPage}>
          Next page
        </button>
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
