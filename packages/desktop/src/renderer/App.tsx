import { type ReactElement, useEffect, useState } from "react"
import type { RunView, StatusView } from "../contract.js"
import { call, onPush } from "./api.js"
import { EvalPanel } from "./EvalPanel.js"
import { ExportPanel } from "./ExportPanel.js"
import { ItemsPanel } from "./ItemsPanel.js"
import { ReviewPanel } from "./ReviewPanel.js"
import { RunPanel } from "./RunPanel.js"
import { WorkspacePanel } from "./WorkspacePanel.js"

const TABS = ["Workspace", "Run", "Items", "Review", "Export", "Evaluation"] as const
type Tab = (typeof TABS)[number]

export const App = (): ReactElement => {
  const [tab, setTab] = useState<Tab>("Workspace")
  const [status, setStatus] = useState<StatusView | undefined>(undefined)
  const [view, setView] = useState<RunView | undefined>(undefined)
  useEffect(() => onPush((p) => (p._tag === "view" ? setView(p.view) : undefined)), [])
  const refreshStatus = () =>
    void call("workspace.status", {})
      .then(setStatus)
      .catch(() => undefined)
  // A backend started with a workspace (`fastcot ui --workspace DIR`, or a window reloaded) has
  // one open already: ask once on load; with none open the request is refused and nothing changes.
  useEffect(refreshStatus, [])
  useEffect(() => {
    if (status === undefined) return
    const t = setInterval(refreshStatus, 2000)
    return () => clearInterval(t)
  }, [status === undefined])
  // When this app's own run changes state (it ends, say), the status is read again at once, so
  // that its lock, now released, is not taken for another run's until the next poll.
  useEffect(() => {
    if (status !== undefined) refreshStatus()
  }, [view?.state])
  return (
    <div className="app">
      <header>
        <h1>fastcot</h1>
        <nav aria-label="Sections" role="tablist">
          {TABS.map((t) => (
            <button
              key={t}
              role="tab"
              aria-selected={t === tab}
              aria-controls={`panel-${t}`}
              id={`tab-${t}`}
              // The tabs pattern: one stop in the Tab order (the open tab); arrows, Home and End move along.
              tabIndex={t === tab ? 0 : -1}
              onClick={() => setTab(t)}
              onKeyDown={(e) => {
                const open = TABS.filter((x) => x === "Workspace" || status !== undefined)
                const at = open.indexOf(t)
                const to =
                  e.key === "ArrowRight"
                    ? open[(at + 1) % open.length]
                    : e.key === "ArrowLeft"
                      ? open[(at - 1 + open.length) % open.length]
                      : e.key === "Home"
                        ? open[0]
                        : e.key === "End"
                          ? open[open.length - 1]
                          : undefined
                if (to === undefined) return
                e.preventDefault()
                setTab(to)
                document.getElementById(`tab-${to}`)?.focus()
              }}
              disabled={t !== "Workspace" && status === undefined}
            >
              {t}
            </button>
          ))}
        </nav>
        <p className="where" aria-live="polite">
          {status === undefined
            ? "no workspace open"
            : `${status.workspace}: ${status.problems} problems, ${status.items} items, ${status.kept} kept, ${status.dropped} dropped, ${status.pending} pending${status.running !== null ? ` · at work: ${status.running.what} (pid ${status.running.pid}, since ${status.running.startedAt})` : ""}`}
        </p>
        {status !== undefined ? (
          // This app's own run, on every page.
          <p className="where" data-testid="header-run" aria-live="polite">
            Run: {view?.state ?? "idle"}
            {view !== undefined && view.state !== "idle"
              ? ` (${view.stages.reduce((n, s) => n + s.done + s.dropped + s.failed, 0)} steps done)`
              : ""}
          </p>
        ) : null}
      </header>
      <main id={`panel-${tab}`} role="tabpanel" aria-labelledby={`tab-${tab}`}>
        {tab === "Workspace" ? <WorkspacePanel status={status} onStatus={setStatus} /> : null}
        {tab === "Run" ? <RunPanel view={view} onView={setView} holder={status?.running ?? null} /> : null}
        {tab === "Items" ? <ItemsPanel /> : null}
        {tab === "Review" ? <ReviewPanel /> : null}
        {tab === "Export" ? <ExportPanel /> : null}
        {tab === "Evaluation" ? <EvalPanel /> : null}
      </main>
    </div>
  )
}
