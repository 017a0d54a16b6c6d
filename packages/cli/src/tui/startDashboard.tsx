import type { BudgetState, EndpointStats, Item, Problem, RunEvent, WorkerView } from "@fastcot/core"
import { render } from "ink"
import { Dashboard } from "./Dashboard.js"
import { applyEvent, applyStats, initialState } from "@fastcot/core"

export interface DashboardOptions {
  readonly title: string
  readonly stages: ReadonlyArray<string>
  readonly pause: (paused: boolean) => void
  readonly quit: () => void
  readonly loadItem: (id: string) => Promise<{ item: Item; problem?: Problem | undefined } | undefined>
  /** Frames per second at most (default 10): redraws are bounded, so a busy run never flickers. */
  readonly fps?: number
  readonly stdout?: NodeJS.WriteStream
  readonly stdin?: NodeJS.ReadStream
}

export interface DashboardHandle {
  readonly event: (e: RunEvent) => void
  readonly stats: (stats: ReadonlyArray<EndpointStats>) => void
  readonly message: (text: string | undefined) => void
  readonly budget: (state: BudgetState | undefined) => void
  /** The workers sharing the run (a shared store). */
  readonly workers: (workers: ReadonlyArray<WorkerView>) => void
  /** Draws the last frame and gives the terminal back. */
  readonly close: () => Promise<void>
}

/** Mounts the run dashboard on the terminal; events and stats update it, at a bounded frame rate. */
export const startDashboard = (options: DashboardOptions): DashboardHandle => {
  const state = initialState(options.title, options.stages)
  const out = options.stdout ?? process.stdout
  let inspecting: { item: Item; problem?: Problem | undefined } | undefined
  let dirty = true
  let lastStats = Date.now()
  let closed = false
  const controls = {
    onPause: () => {
      if (state.quitting || state.finished) return
      state.paused = !state.paused
      options.pause(state.paused)
      dirty = true
      draw()
    },
    onQuit: () => {
      if (state.quitting || state.finished) return
      state.quitting = true
      options.quit()
      dirty = true
      draw()
    },
    onInspect: (id: string) => {
      void options.loadItem(id).then((found) => {
        inspecting = found
        state.message = found === undefined ? `item ${id} is not in the store yet` : undefined
        dirty = true
        draw()
      })
    },
    onCloseInspector: () => {
      inspecting = undefined
      dirty = true
      draw()
    }
  }
  const element = () => (
    <Dashboard
      state={state}
      inspecting={inspecting}
      width={Math.max(60, out.columns ?? 80)}
      height={Math.max(20, (out.rows ?? 24) - 1)}
      now={Date.now()}
      {...controls}
    />
  )
  const instance = render(element(), {
    stdout: out,
    stdin: options.stdin ?? process.stdin,
    exitOnCtrlC: false,
    patchConsole: false
  })
  const draw = () => {
    if (!dirty) return
    dirty = false
    instance.rerender(element())
  }
  // Ctrl-C reaches the process as a signal, as it does without the dashboard: the run stops.
  const onData = (chunk: Buffer | string) => {
    if (chunk.toString() === "\u0003") process.kill(process.pid, "SIGINT")
  }
  const stdin = options.stdin ?? process.stdin
  stdin.on("data", onData)
  const timer = setInterval(draw, 1000 / (options.fps ?? 10))
  // The clock and the rates move even when nothing happens: one frame a second at least.
  const clock = setInterval(() => (dirty = true), 1000)
  return {
    event: (e) => {
      applyEvent(state, e)
      dirty = true
    },
    stats: (stats) => {
      const now = Date.now()
      applyStats(state, stats, now - lastStats)
      lastStats = now
      dirty = true
    },
    message: (text) => {
      state.message = text
      dirty = true
    },
    budget: (b) => {
      state.budget = b
      dirty = true
    },
    workers: (w) => {
      state.workers = w
      dirty = true
    },
    close: async () => {
      if (closed) return
      closed = true
      clearInterval(timer)
      clearInterval(clock)
      stdin.off("data", onData)
      dirty = true
      draw()
      instance.unmount()
      await instance.waitUntilExit().catch(() => undefined)
    }
  }
}
