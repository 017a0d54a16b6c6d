import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import type { RunLockHolder } from "./errors.js"

/**
 * A process's start time as the kernel counts it (Linux: field 22 of /proc/PID/stat), so that a
 * pid the system has since given to another process is not taken for the lock's holder.
 * Undefined where there is no /proc or no such process.
 */
export const processStart = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  } catch {
    return undefined
  }
}

/** The lock's row as stored. */
export interface RunLockRow {
  readonly pid: number
  readonly host: string
  readonly process_start: string | null
  readonly started_at: string
  readonly what: string
}

/**
 * Whether the holder of a lock may still be running. On this host: its pid answers, and (where
 * /proc tells) it is the same process that took the lock. On another host there is no telling,
 * so it counts as running.
 */
export const holderAlive = (row: RunLockRow): boolean => {
  if (row.host !== hostname()) return true
  try {
    process.kill(row.pid, 0)
  } catch (e) {
    // EPERM: a process of another user has the pid, so something is there.
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
  const start = processStart(row.pid)
  return row.process_start === null || start === undefined || start === row.process_start
}

export const holderOf = (row: RunLockRow): RunLockHolder => ({
  pid: row.pid,
  host: row.host,
  startedAt: row.started_at,
  what: row.what
})

export const describeHolder = (h: RunLockHolder): string =>
  `${h.what} (pid ${h.pid}${h.host === hostname() ? "" : ` on ${h.host}`}, since ${h.startedAt})`
