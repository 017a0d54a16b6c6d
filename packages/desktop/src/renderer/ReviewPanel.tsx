import { useEffect, useRef, useState } from "react"
import { ListBox, ListBoxItem } from "react-aria-components"
import type { ItemDetail, Reply } from "../contract.js"
import { call } from "./api.js"
import { Action, Choice, FieldRow, TextBox, TextInput } from "./controls.js"
import { ErrorNote, useAsync } from "./shared.js"
import { WordDiff } from "./WordDiff.js"

type Order = "random" | "longest"
type KeptAs = "" | "initial-medium" | "easy-to-medium" | "hard-to-medium"
type Origin = "" | "teacher" | "long-to-short" | "expand" | "simplify" | "imported"
type Mode = "view" | "reject" | "other" | "edit"

/** The choice in the reasons list that asks for a typed reason. */
const OTHER = "other (type it)"

const REVIEWER_KEY = "fastcot.reviewer"

/** Whether a key press belongs to a field being typed in (then it is not a shortcut). */
const typing = (target: EventTarget | null) =>
  target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))

/**
 * The review room: a queue of kept items for the reviewer named here, one at a time with its
 * original and final traces and the judge's replies, decided with the keyboard: a accept, r reject
 * (a reason from the list or typed), e edit the final trace (Ctrl+Enter saves, Escape cancels),
 * n / p next and previous. An edit whose answer fails the check is shown and refused.
 */
export const ReviewPanel = () => {
  const [reviewer, setReviewer] = useState(() => localStorage.getItem(REVIEWER_KEY) ?? "")
  const [order, setOrder] = useState<Order>("random")
  const [keptAs, setKeptAs] = useState<KeptAs>("")
  const [origin, setOrigin] = useState<Origin>("")
  const [queue, setQueue] = useState<Reply<"review.queue"> | undefined>(undefined)
  const [at, setAt] = useState(0)
  const [mode, setMode] = useState<Mode>("view")
  const [otherReason, setOtherReason] = useState("")
  const [draft, setDraft] = useState("")
  const [said, setSaid] = useState("")
  const { error, busy, run } = useAsync()
  const editor = useRef<HTMLTextAreaElement>(null)
  const card = useRef<HTMLElement>(null)
  const items = queue?.items ?? []
  const current: ItemDetail | undefined = items[at]

  const load = () =>
    run(async () => {
      const name = reviewer.trim()
      if (name === "") throw new Error("Enter your name as reviewer first: each decision records it.")
      localStorage.setItem(REVIEWER_KEY, name)
      const next = await call("review.queue", {
        reviewer: name,
        order,
        ...(keptAs !== "" ? { keptAs } : {}),
        ...(origin !== "" ? { origin } : {}),
        seed: Math.floor(Math.random() * 0xffffffff)
          .toString(16)
          .padStart(8, "0")
      })
      setQueue(next)
      setAt(0)
      setMode("view")
    })

  const decide = (decision: "accept" | "reject" | "edit", reason = "") =>
    run(async () => {
      if (current === undefined) return
      const text = decision === "reject" ? reason.trim() : ""
      if (decision === "reject" && text === "") throw new Error("Pick a reason for the rejection, or type one.")
      const done = await call("review.decide", {
        id: current.id,
        reviewer: reviewer.trim(),
        decision,
        ...(decision === "reject" ? { reason: text } : {}),
        ...(decision === "edit" ? { reasoning: draft } : {})
      })
      setSaid(`${done.id} ${done.review?.decision ?? decision}${text !== "" ? `: ${text}` : ""}`)
      setMode("view")
      setOtherReason("")
      const rest = items.filter((i) => i.id !== current.id)
      if (queue !== undefined) setQueue({ ...queue, items: rest, mine: queue.mine + 1, waiting: queue.waiting - 1 })
      setAt((i) => Math.min(i, Math.max(0, rest.length - 1)))
      if (rest.length === 0) await load()
    })

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (mode === "edit") {
        if (e.key === "Escape") setMode("view")
        else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault()
          void decide("edit")
        }
        return
      }
      if (mode === "reject" || mode === "other") {
        if (e.key === "Escape") setMode("view")
        return
      }
      if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey || current === undefined || busy) return
      if (e.key === "a") void decide("accept")
      else if (e.key === "r") setMode("reject")
      else if (e.key === "e") {
        setDraft(current.final ?? "")
        setMode("edit")
      } else if (e.key === "n" || e.key === "j") setAt((i) => Math.min(i + 1, items.length - 1))
      else if (e.key === "p" || e.key === "k") setAt((i) => Math.max(i - 1, 0))
      else return
      e.preventDefault()
    }
    document.addEventListener("keydown", onKey)
    return () => document.removeEventListener("keydown", onKey)
  })
  // Focus follows the work: the editor while editing (the reasons list and the typed reason take
  // it themselves), else the item, so that the shortcuts work at once after starting, deciding or
  // cancelling.
  useEffect(() => {
    if (mode === "edit") editor.current?.focus()
    else if (mode === "view") card.current?.focus()
  }, [mode, queue, current?.id])

  return (
    <section aria-labelledby="review-title">
      <h2 id="review-title">Review</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void load()
        }}
      >
        <FieldRow label="Review queue">
          <TextInput label="Reviewer" value={reviewer} onChange={setReviewer} autoComplete="name" />
          <Choice
            label="Order"
            value={order}
            options={[
              ["random", "random sample"],
              ["longest", "longest first"]
            ]}
            onChange={setOrder}
          />
          <Choice
            label="The judge's first verdict"
            value={keptAs}
            options={[
              ["", "any"],
              ["initial-medium", "medium (kept as written)"],
              ["easy-to-medium", "easy (expanded)"],
              ["hard-to-medium", "hard (simplified)"]
            ]}
            onChange={setKeptAs}
          />
          <Choice
            label="Written by"
            value={origin}
            options={[
              ["", "any stage"],
              ["teacher", "the teacher (fast thinking)"],
              ["long-to-short", "long-to-short"],
              ["expand", "expand (alignment)"],
              ["simplify", "simplify (alignment)"],
              ["imported", "an import"]
            ]}
            onChange={setOrigin}
          />
          <Action type="submit" isDisabled={busy} className="button primary">
            Start reviewing
          </Action>
        </FieldRow>
      </form>
      <ErrorNote error={error} />
      <p aria-live="polite" className="review-count">
        {queue === undefined
          ? "Name yourself and start: kept items nobody has reviewed come one at a time."
          : `${queue.mine} reviewed by you · ${queue.waiting} waiting in the workspace${said !== "" ? ` · last: ${said}` : ""}`}
      </p>
      {queue !== undefined && current === undefined ? (
        <p>Nothing left to review here: every kept item has a decision, or is with another reviewer.</p>
      ) : null}
      {current !== undefined ? (
        <article aria-labelledby="review-item" className="item" tabIndex={-1} ref={card}>
          <h3 id="review-item">
            {current.id} ({at + 1} of {items.length}){current.keptAs !== null ? `: kept as ${current.keptAs}` : ""}
          </h3>
          <p>Question: {current.question}</p>
          <p>Reference: {current.reference ?? "none"}</p>
          <div className="side">
            <div>
              <h4>Original</h4>
              <pre>{current.original ?? ""}</pre>
            </div>
            <div>
              <h4>Final</h4>
              <pre>{current.final ?? ""}</pre>
            </div>
          </div>
          {current.original !== null && current.final !== null && current.original !== current.final ? (
            <>
              <h4>What the rewrites changed</h4>
              <WordDiff before={current.original} after={current.final} />
            </>
          ) : null}
          <h4>The judge</h4>
          {current.rounds.some((r) => r.verdict !== null) ? (
            <ul>
              {current.rounds
                .filter((r) => r.verdict !== null)
                .map((r) => (
                  <li key={r.index}>
                    {r.verdict!.level}: replied {JSON.stringify(r.verdict!.raw.slice(0, 200))}
                  </li>
                ))}
            </ul>
          ) : (
            <p>No judge's reply is recorded for this item.</p>
          )}
          <div className="actions" role="group" aria-label="Decision">
            <Action
              aria-keyshortcuts="a"
              isDisabled={busy}
              onPress={() => void decide("accept")}
              className="button primary"
            >
              Accept (a)
            </Action>
            <Action aria-keyshortcuts="r" isDisabled={busy} onPress={() => setMode("reject")}>
              Reject (r)
            </Action>
            <Action
              aria-keyshortcuts="e"
              isDisabled={busy}
              onPress={() => {
                setDraft(current.final ?? "")
                setMode("edit")
              }}
            >
              Edit (e)
            </Action>
            <Action aria-keyshortcuts="n" onPress={() => setAt((i) => Math.min(i + 1, items.length - 1))}>
              Next (n)
            </Action>
            <Action aria-keyshortcuts="p" onPress={() => setAt((i) => Math.max(i - 1, 0))}>
              Previous (p)
            </Action>
          </div>
          {mode === "reject" ? (
            <div className="field">
              <p id="r-reasons">Why reject it? Arrows move, Enter rejects, Escape cancels.</p>
              <ListBox
                aria-labelledby="r-reasons"
                className="listbox inline"
                autoFocus="first"
                onAction={(key) => {
                  if (String(key) === OTHER) setMode("other")
                  else void decide("reject", String(key))
                }}
              >
                {[...(queue?.reasons ?? []), OTHER].map((r) => (
                  <ListBoxItem key={r} id={r} className="option">
                    {r}
                  </ListBoxItem>
                ))}
              </ListBox>
            </div>
          ) : null}
          {mode === "other" ? (
            <form
              aria-label="Reject"
              onSubmit={(e) => {
                e.preventDefault()
                void decide("reject", otherReason)
              }}
            >
              <TextInput
                label="Your reason (Enter rejects, Escape cancels)"
                value={otherReason}
                onChange={setOtherReason}
                autoFocus
              />
              <Action type="submit" isDisabled={busy || otherReason.trim() === ""}>
                Reject
              </Action>
            </form>
          ) : null}
          {mode === "edit" ? (
            <form
              aria-label="Edit"
              onSubmit={(e) => {
                e.preventDefault()
                void decide("edit")
              }}
            >
              <TextBox
                label="Final trace (Ctrl+Enter saves; it must still reach the reference answer; Escape cancels)"
                value={draft}
                onChange={setDraft}
                rows={12}
                inputRef={editor}
              />
              <Action type="submit" isDisabled={busy} className="button primary">
                Save edit
              </Action>
            </form>
          ) : null}
        </article>
      ) : null}
    </section>
  )
}
