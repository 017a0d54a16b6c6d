import * as Data from "effect/Data"

export class StoreError extends Data.TaggedError("StoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** Who holds a workspace's run lock. */
export interface RunLockHolder {
  readonly pid: number
  readonly host: string
  readonly startedAt: string
  /** What the holder is doing, e.g. "fastcot run" or "the desktop app". */
  readonly what: string
}

/** Another live process is running the pipeline on this workspace. */
export class WorkspaceBusy extends Data.TaggedError("WorkspaceBusy")<{
  readonly message: string
  readonly holder: RunLockHolder
}> {}
