/** How an endpoint in batch mode gathers, sends and follows its batches. */
export interface BatchSettings {
  /** Most requests in one batch (OpenAI's limit: 50,000). */
  readonly maxRequests: number
  /** Most bytes in one batch file (OpenAI's limit: 200 MB). */
  readonly maxBytes: number
  /** Gathered requests are sent once no new one has come for this long (or the batch is full). */
  readonly gatherMs: number
  /** The first poll of a batch comes after this; each later one waits 1.5 times longer, up to `pollMaxMs`. */
  readonly pollMs: number
  readonly pollMaxMs: number
  /** Times a request whose line failed or expired goes out in a new batch before it is given up on. */
  readonly resubmit: number
  /** Whether a request given up on in batches goes to the live endpoint (else it fails). */
  readonly fallbackLive: boolean
  /** The batch price as a share of the live price (OpenAI and Alibaba Cloud: 0.5). */
  readonly priceFactor: number
}

/** OpenAI's limits and a poll every minute at most (a batch takes minutes to hours). */
export const defaultBatchSettings: BatchSettings = {
  maxRequests: 50_000,
  maxBytes: 200 * 1024 * 1024,
  gatherMs: 2_000,
  pollMs: 5_000,
  pollMaxMs: 60_000,
  resubmit: 2,
  fallbackLive: false,
  priceFactor: 0.5
}

/** What an endpoint in batch mode has done in this process. */
export interface BatchStats {
  /** Jobs sent (or taken up again after a restart). */
  readonly submitted: number
  /** Jobs at the provider now. */
  readonly running: number
  /** Jobs completed, and jobs that failed, expired or were lost. */
  readonly done: number
  readonly failed: number
  /** Requests in jobs whose answers have not all been taken, and requests gathered for the next job. */
  readonly linesWaiting: number
  readonly gathering: number
  /** Requests sent again in a new batch after their line failed, and requests sent live at last. */
  readonly resubmitted: number
  readonly live: number
}
