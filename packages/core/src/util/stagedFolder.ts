import * as fs from "node:fs"
import { hostname } from "node:os"
import * as path from "node:path"
import { ensureDirSync } from "./dirs.js"

/**
 * A folder written beside its destination and moved into place once it is complete, so that work
 * that fails (an exception, or a process killed midway) leaves the destination as it was: a
 * folder that did not exist is not made, one that did keeps what it held.
 */
export interface StagedFolder {
  /** Where to write: a hidden folder in the destination's parent, on the same file system. */
  readonly path: string
  /** `file` (a path under `path`) as it will be once published. */
  readonly published: (file: string) => string
  /**
   * Moves what was written into the destination: the folder itself when there is none yet, else
   * file by file (a file of the same name is replaced, others are kept).
   */
  readonly publish: () => void
  /** Removes what was written; the destination is untouched. */
  readonly discard: () => void
}

const PREFIX = (base: string) => `.${base}.partial-${hostname()}-`

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Moves `from`'s entries into the existing folder `to`, folders merged, then removes `from`. */
const mergeInto = (from: string, to: string): void => {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name)
    const target = path.join(to, entry.name)
    if (entry.isDirectory() && fs.statSync(target, { throwIfNoEntry: false })?.isDirectory() === true)
      mergeInto(source, target)
    else fs.renameSync(source, target)
  }
  fs.rmdirSync(from)
}

/**
 * Stages a folder for `destination`. Folders an earlier process on this host staged for the same
 * destination and left behind (it was killed) are removed first. Fails, naming the path, when the
 * destination exists and is not a folder.
 */
export const stageFolder = (destination: string): StagedFolder => {
  const target = path.resolve(destination)
  const existing = fs.statSync(target, { throwIfNoEntry: false })
  if (existing !== undefined && !existing.isDirectory()) throw new Error(`${destination}: exists and is not a folder`)
  const parent = path.dirname(target)
  ensureDirSync(parent)
  const prefix = PREFIX(path.basename(target))
  for (const name of fs.readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue
    const pid = Number(name.slice(prefix.length))
    if (Number.isInteger(pid) && pid !== process.pid && !isRunning(pid))
      fs.rmSync(path.join(parent, name), { recursive: true, force: true })
  }
  const staging = path.join(parent, `${prefix}${process.pid}`)
  fs.rmSync(staging, { recursive: true, force: true })
  fs.mkdirSync(staging)
  return {
    path: staging,
    published: (file) => path.join(destination, path.relative(staging, file)),
    publish: () => {
      if (fs.statSync(target, { throwIfNoEntry: false }) === undefined) fs.renameSync(staging, target)
      else mergeInto(staging, target)
    },
    discard: () => fs.rmSync(staging, { recursive: true, force: true })
  }
}
