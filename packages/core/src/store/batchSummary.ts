import type { BatchJobRecord } from "./RunStore.js"

/** What `status` says of a workspace's batch jobs. */
export interface BatchSummary {
  readonly jobs: number
  /** Jobs not done: at the provider, or done there with answers not all taken yet. */
  readonly open: number
  /** Requests in open jobs. */
  readonly linesWaiting: number
  /** Lines answered, and lines that failed or expired (and went out again or failed their call). */
  readonly linesCompleted: number
  readonly linesFailed: number
  /** Jobs by what the provider last said of them (completed, expired, failed, in_progress, …). */
  readonly byStatus: Readonly<Record<string, number>>
}

export const summarizeBatchJobs = (jobs: ReadonlyArray<BatchJobRecord>): BatchSummary => {
  const byStatus: Record<string, number> = {}
  let open = 0
  let linesWaiting = 0
  let linesCompleted = 0
  let linesFailed = 0
  for (const job of jobs) {
    const status = job.remoteStatus ?? "not submitted"
    byStatus[status] = (byStatus[status] ?? 0) + 1
    if (job.state !== "done") {
      open++
      linesWaiting += job.keys.length
    }
    linesCompleted += job.completed
    linesFailed += job.failed
  }
  return { jobs: jobs.length, open, linesWaiting, linesCompleted, linesFailed, byStatus }
}
