import { join, resolve } from "node:path"

export const DEFAULT_WORKSPACE = ".fastcot"

/** The files a workspace holds. */
export const workspacePaths = (dir: string = DEFAULT_WORKSPACE) => {
  const root = resolve(dir)
  return {
    root,
    db: join(root, "fastcot.db"),
    rejects: join(root, "rejects"),
    exports: join(root, "export")
  }
}
