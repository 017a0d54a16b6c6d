import { mkdirSync, statSync } from "node:fs"
import { dirname, resolve } from "node:path"

// Node's `mkdir(path, { recursive: true })` never returns (spinning a core) when a component
// cannot be made and the system says it does not exist (mkdir under /proc answers ENOENT, so it
// makes the parent, finds it there, and tries again, forever). These make one missing folder at a
// time, from the nearest one that exists, and fail with the system's error instead.

const notAFolder = (path: string) =>
  Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: "ENOTDIR", path })

/** The folders of `dir` that do not exist yet, outermost first. */
const missingSync = (dir: string): Array<string> => {
  const missing: Array<string> = []
  for (let d = resolve(dir); ;) {
    try {
      if (!statSync(d).isDirectory()) throw notAFolder(d)
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
      missing.push(d)
      const parent = dirname(d)
      if (parent === d) break
      d = parent
    }
  }
  return missing.reverse()
}

/** Makes `dir` and the folders above it that are missing. */
export const ensureDirSync = (dir: string): void => {
  for (const d of missingSync(dir)) {
    try {
      mkdirSync(d)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    }
  }
}

/**
 * Makes `dir` and the folders above it that are missing, for async callers. The same walk as
 * `ensureDirSync`: a few stat and mkdir calls, made once per output folder.
 */
export const ensureDir = async (dir: string): Promise<void> => ensureDirSync(dir)
