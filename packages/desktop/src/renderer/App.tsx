import { type ReactElement, useEffect, useState } from "react"
import { Tab, TabList, TabPanel, Tabs } from "react-aria-components"
import type { RunView, StatusView } from "../contract.js"
import { call, onPush } from "./api.js"
import { EvalPanel } from "./EvalPanel.js"
import { ExportPanel } from "./ExportPanel.js"
import { ItemsPanel } from "./ItemsPanel.js"
import { ReviewPanel } from "./ReviewPanel.js"
import { RunPanel } from "./RunPanel.js"
import { WorkspacePanel } from "./WorkspacePanel.js"

const TABS = ["Workspace", "Run", "Items", "Review", "Export", "Evaluation"] as const

/** " (2 left out by the filter: 1 duplicate, 1 no-reference)", or nothing when it left none out. */
const leftOutText = (leftOut: StatusView["leftOut"]): string => {
  const total = Object.values(leftOut).reduce((a, b) => a + b, 0)
  return total === 0
    ? ""
    : ` (${total} left out by the filter: ${Object.entries(leftOut)
        .map(([flag, n]) => `${n} ${flag}`)
        .join(", ")})`
}
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
  // A run is changing the workspace's items: this app's own (seen at once through its pushes), or
  // any run holding the workspace (its lock, or workers on a shared store; seen by the status poll).
  const workingOnWorkspace =
    view?.state === "running" || view?.state === "stopping" || (status !== undefined && status.running !== null)
  return (
    // The tabs pattern (React Aria): one Tab stop, arrows, Home and End move along and open.
    <Tabs
      className="app"
      selectedKey={tab}
      onSelectionChange={(key) => setTab(key as Tab)}
      disabledKeys={status === undefined ? TABS.filter((t) => t !== "Workspace") : []}
    >
      <header>
        <h1>fastcot</h1>
        <TabList aria-label="Sections" className="tabs">
          {TABS.map((t) => (
            <Tab key={t} id={t} className="tab">
              {t}
            </Tab>
          ))}
        </TabList>
        <p className="where" aria-live="polite">
          {status === undefined
            ? "no workspace open"
            : `${status.workspace}: ${status.problems} problems${leftOutText(status.leftOut)}, ${status.items} items, ${status.kept} kept (${status.reviewed} reviewed), ${status.dropped} dropped, ${status.pending} pending${status.running !== null ? ` · at work: ${status.running.what} (pid ${status.running.pid}, since ${status.running.startedAt})` : ""}`}
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
      <main>
        {TABS.map((t) => (
          <TabPanel key={t} id={t} className="panel">
            {t === "Workspace" ? (
              <WorkspacePanel status={status} onStatus={setStatus} />
            ) : t === "Run" ? (
              <RunPanel view={view} onView={setView} holder={status?.running ?? null} />
            ) : t === "Items" ? (
              <ItemsPanel live={workingOnWorkspace} />
            ) : t === "Review" ? (
              <ReviewPanel />
            ) : t === "Export" ? (
              <ExportPanel />
            ) : (
              <EvalPanel />
            )}
          </TabPanel>
        ))}
      </main>
    </Tabs>
  )
}
