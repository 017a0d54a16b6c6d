import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { Item, ItemId, KeptAs } from "../schema/item.js"
import type { Problem, ProblemId } from "../schema/problem.js"
import type { TraceOrigin } from "../schema/trace.js"
import type { RunLockHolder, StoreError, WorkspaceBusy } from "./errors.js"
import type { LengthStats } from "../util/lengthStats.js"
import type { ItemOrder, ItemSortValue } from "./itemOrder.js"

/** How far an import of one file (with one set of options) has got; committed with each batch. */
export interface ImportProgress {
  /** Hash of the file's content and the import options. */
  readonly key: string
  readonly path: string
  /** Rows read so far (good and bad). */
  readonly rows: number
  /** Byte offset to resume reading from, for formats that can seek (JSONL). */
  readonly offset: number
  /** The next row's 1-based line number in the file. */
  readonly line: number
  readonly problemsAdded: number
  readonly itemsAdded: number
  readonly duplicates: number
  readonly rejected: number
  readonly done: boolean
}

/** A row that could not be imported, and why. */
export interface ImportReject {
  readonly file: string
  readonly line: number
  readonly reason: string
  /** The start of the raw row, for the rejects file. */
  readonly raw: string
}

/**
 * One batch of an import, committed as one transaction with the position after it. `progress` is
 * the importing worker's own view (the stored position when it began, plus its own batches). The
 * store merges it into the file's stored progress, so that several workers importing one file at
 * once keep it right: the position only moves forward, the added counts grow by what each batch
 * added, and the duplicates are the problems read up to the position less those added.
 */
export interface ImportBatch {
  readonly progress: ImportProgress
  readonly problems: ReadonlyArray<Problem>
  readonly items: ReadonlyArray<Item>
  readonly rejects: ReadonlyArray<ImportReject>
}

/**
 * Why a problem is left out: a duplicate of another, overlapping an evaluation benchmark, or
 * without a reference to verify a trace against.
 */
export interface ProblemFlag {
  readonly problemId: string
  readonly flag: "duplicate" | "near-duplicate" | "contaminated" | "no-reference"
  readonly detail: string
}

export interface ItemFilter {
  /** One fate, or any of several (the stages list pending and failed items: a rerun retries the failed). */
  readonly fate?: Item["fate"] | ReadonlyArray<Item["fate"]> | undefined
  readonly stage?: Item["stage"] | undefined
  /** Keyset pagination: items with an id greater than this. */
  readonly afterId?: string | undefined
  readonly limit?: number | undefined
  /** Items whose id starts with this text, or whose problem's question contains it (any case). */
  readonly search?: string | undefined
  /** Items the judge rated this level in some round. */
  readonly verdict?: "easy" | "medium" | "hard" | undefined
  /** Bounds on the current trace's reasoning tokens (items without a count are left out). */
  readonly minTokens?: number | undefined
  readonly maxTokens?: number | undefined
  /**
   * By id ascending (the default), or by a column either way, ties by id in the same direction;
   * sorting by tokens leaves out items without a count. Pages by keyset: `afterId` with, for an
   * order other than id, `afterValue`, the last listed item's value of the column.
   */
  readonly order?: ItemOrder | undefined
  readonly afterValue?: ItemSortValue | undefined
}

/** A model call's answer in the cache, or whether its lease was taken (see `RunStore.claimCall`). */
export interface CallClaim {
  readonly cached: Option.Option<CacheEntry>
  /** Whether this worker holds the call's lease (false whenever `cached` holds the answer). */
  readonly taken: boolean
}

/** A page of pending work claimed at once (see `RunStore.claimItems`). */
export interface ClaimedPage {
  /** Items the page listed, claimed or not; a page shorter than its limit is the last. */
  readonly listed: number
  /** The last listed item's id: the next page starts after it. */
  readonly lastId: string | undefined
  /** The items this worker now holds, as stored. */
  readonly items: ReadonlyArray<Item>
  /** Listed items another worker held. */
  readonly heldElsewhere: number
}

/** Which kept items a review queue offers: nobody has reviewed them, nor are they in `exclude`. */
export interface ReviewQueueFilter {
  /**
   * `random`: in id order from the place `seed` names (ids are hashes, so this is a random sample
   * that the same seed gives again), wrapping around; `longest`: most reasoning tokens first.
   */
  readonly order: "random" | "longest"
  /** Only items kept this way (the judge's first verdict: medium, easy or hard). */
  readonly keptAs?: KeptAs | undefined
  /**
   * Only items whose final trace this stage wrote: the teacher (fast-thinking, as sampled),
   * long-to-short, expand or simplify (alignment's rewrites), or an import.
   */
  readonly origin?: TraceOrigin | undefined
  /** Hex digits; `random` starts at the first id at or after `i_SEED`. */
  readonly seed?: string | undefined
  /** Items held for other reviewers. */
  readonly exclude?: ReadonlyArray<string> | undefined
  readonly limit: number
}

export interface StoreStatus {
  readonly problems: number
  readonly items: number
  readonly pending: number
  readonly kept: number
  readonly dropped: number
  /** Items a model error stopped (see `Fate`); a rerun tries them again. */
  readonly failed: number
  readonly stages: Readonly<Record<Item["stage"], number>>
  readonly fates: Readonly<Record<Item["fate"], number>>
  readonly keptAs: Readonly<Record<string, number>>
  readonly dropReasons: Readonly<Record<string, number>>
  readonly failReasons: Readonly<Record<string, number>>
  readonly domains: Readonly<Record<string, number>>
  readonly flags: Readonly<Record<string, number>>
  /** Items a person has reviewed, by their latest decision, and how many each reviewer decided. */
  readonly reviews: {
    readonly reviewed: number
    readonly accepted: number
    readonly rejected: number
    readonly edited: number
    readonly byReviewer: Readonly<Record<string, number>>
  }
  /** Reasoning tokens of kept items: the trace each started from, and the one kept (counted by `tokenizer`). */
  readonly tokens: {
    readonly tokenizer: string | null
    readonly before: LengthStats
    readonly after: LengthStats
    /** Total tokens after over total before: below 1 when alignment made traces shorter. */
    readonly ratio: number | null
    /** Kept items per bucket of reasoning tokens, before and after (bucket upper bounds). */
    readonly histogram: ReadonlyArray<{ readonly upTo: number | null; readonly before: number; readonly after: number }>
  }
  /** Model calls recorded in items' rounds, with their tokens and cost, overall and per kept item. */
  readonly llm: {
    readonly calls: number
    readonly cachedCalls: number
    readonly promptTokens: number
    readonly completionTokens: number
    readonly costUsd: number
    /** Prompt and completion tokens of the calls that were sent (not answered from the cache). */
    readonly paidTokens: number
    /**
     * The spending ledger: every call sent, including those whose item was never saved (answered
     * while a run stopped or crashed) and evaluations' calls. What a budget counts is the larger
     * of this and the items' own records (a workspace older than the ledger has only those).
     */
    readonly ledger: SpendTotals
    readonly byRole: Readonly<
      Record<
        string,
        {
          readonly calls: number
          readonly promptTokens: number
          readonly completionTokens: number
          readonly costUsd: number
        }
      >
    >
    readonly costPerKeptItemUsd: number | null
    readonly tokensPerKeptItem: number | null
  }
  readonly imports: ReadonlyArray<{
    readonly path: string
    readonly rows: number
    readonly problemsAdded: number
    readonly rejected: number
    readonly done: boolean
  }>
  /** The run working on the workspace now (its run lock's live holder), if any. */
  readonly running: RunLockHolder | null
  /** The workers at work on the run (several only on a shared store), and how many leases each holds. */
  readonly workers: ReadonlyArray<WorkerView>
}

/** A worker at work on the run, as `status` shows it. */
export interface WorkerView {
  readonly id: string
  readonly host: string
  readonly pid: number
  readonly what: string
  readonly startedAt: string
  /** Leases held now: problems or items it is working on. */
  readonly holds: number
}

export interface CacheEntry {
  readonly key: string
  readonly model: string
  readonly value: string
  readonly createdAt: string
}

/**
 * A batch job fastcot created at a provider (an endpoint in batch mode): what a restarted run
 * polls instead of sending its requests again.
 */
export interface BatchJobRecord {
  readonly id: string
  /** The role, endpoint and model it went to (`judge: URL (model)`). */
  readonly endpoint: string
  /**
   * `uploaded`: its file is at the provider (a batch may or may not have been made of it);
   * `submitted`: a batch was made of it; `done`: its answers are in the cache and its failures
   * were given back to their calls.
   */
  readonly state: "uploaded" | "submitted" | "done"
  readonly fileId: string
  readonly batchId: string | null
  /** The custom ids (cache keys) of its lines, in order. */
  readonly keys: ReadonlyArray<string>
  /** What the provider last said of it: validating, in_progress, completed, failed, expired, … */
  readonly remoteStatus: string | null
  readonly completed: number
  readonly failed: number
  readonly createdAt: string
  readonly updatedAt: string
}

/**
 * The run store: problems, items with their full history, import progress and the LLM cache.
 * Every method that changes state is one transaction, so a crash at any moment leaves a store
 * that the next command continues from. SQLite backs it by default; the interface is what a
 * server database would implement for runs that span machines.
 */
export interface RunStoreShape {
  readonly location: string
  /** Whether several workers may share this store's runs (then work is claimed a little at a time). */
  readonly shared: boolean
  readonly importProgress: (key: string) => Effect.Effect<Option.Option<ImportProgress>, StoreError>
  readonly commitImportBatch: (
    batch: ImportBatch
  ) => Effect.Effect<{ readonly problemsAdded: number; readonly itemsAdded: number }, StoreError>
  readonly importRejects: (key: string) => Effect.Effect<ReadonlyArray<ImportReject>, StoreError>
  readonly getProblem: (id: ProblemId | string) => Effect.Effect<Option.Option<Problem>, StoreError>
  readonly getProblems: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Problem>, StoreError>
  /** Problems in id order, a page at a time; `unflagged` leaves out duplicates and contaminated ones. */
  readonly listProblems: (filter: {
    readonly afterId?: string | undefined
    readonly limit?: number | undefined
    readonly unflagged?: boolean | undefined
  }) => Effect.Effect<ReadonlyArray<Problem>, StoreError>
  /** Replaces every flag with these (a filter pass is recomputed whole, so it stays idempotent). */
  readonly setProblemFlags: (flags: ReadonlyArray<ProblemFlag>) => Effect.Effect<void, StoreError>
  readonly problemFlag: (problemId: string) => Effect.Effect<Option.Option<ProblemFlag>, StoreError>
  /** Which of these item ids exist, and their fate and drop reason code. */
  readonly itemStates: (
    ids: ReadonlyArray<string>
  ) => Effect.Effect<
    ReadonlyMap<string, { readonly fate: Item["fate"]; readonly reasonCode: string | null }>,
    StoreError
  >
  readonly getItem: (id: ItemId | string) => Effect.Effect<Option.Option<Item>, StoreError>
  /** Inserts items that are not there yet; returns how many were new. */
  readonly addItems: (items: ReadonlyArray<Item>) => Effect.Effect<number, StoreError>
  /** Saves an item's new state and appends its new rounds; earlier rounds are never rewritten. */
  readonly saveItem: (item: Item) => Effect.Effect<void, StoreError>
  readonly listItems: (filter: ItemFilter) => Effect.Effect<ReadonlyArray<Item>, StoreError>
  /** Kept items, and people's reviews of them as `status` counts them, without the rest of `status`. */
  readonly reviewCounts: Effect.Effect<{ readonly kept: number; readonly reviews: StoreStatus["reviews"] }, StoreError>
  /** Kept items waiting for a person's review (see `ReviewQueueFilter`), with their rounds. */
  readonly reviewQueue: (filter: ReviewQueueFilter) => Effect.Effect<ReadonlyArray<Item>, StoreError>
  readonly status: Effect.Effect<StoreStatus, StoreError>
  readonly cacheGet: (key: string) => Effect.Effect<Option.Option<CacheEntry>, StoreError>
  readonly cachePut: (entry: CacheEntry) => Effect.Effect<void, StoreError>
  /** Creates or updates a batch job's record (durable when it returns); a job once done stays done. */
  readonly saveBatchJob: (job: BatchJobRecord) => Effect.Effect<void, StoreError>
  /** Batch jobs, oldest first: of one endpoint, and only those not done, when asked. */
  readonly batchJobs: (filter: {
    readonly endpoint?: string | undefined
    readonly open?: boolean | undefined
  }) => Effect.Effect<ReadonlyArray<BatchJobRecord>, StoreError>
  /**
   * Adds a call that was sent (and answered) to the workspace's spending ledger. Synchronous and
   * in memory: the totals are written within a fraction of a second, and when the store closes.
   */
  readonly recordSpend: (spend: SpendEntry) => void
  /** What the workspace's calls have cost in all, from the ledger. */
  readonly spending: Effect.Effect<SpendTotals, StoreError>
  /**
   * Work leases, so that several workers share one run. Takes, for this store's worker, the keys
   * that no other worker holds an unexpired lease on, and returns those it took. The store renews
   * its worker's leases in the background while it is open; `release` gives one up once its work
   * is saved, and closing the store gives up the rest. A worker that dies or is cut off loses its
   * leases when they expire, and another takes the work over. A store only one process may run
   * on (SQLite, under its run lock) takes every key.
   */
  readonly claim: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, StoreError>
  /**
   * The next page of pending work at a stage, listed and claimed in one step: up to `limit` items
   * at `stage` with one of `fates` and an id after `afterId`, in id order; each whose lease
   * (`keyPrefix` + its id, as `claim` takes keys) no other worker holds becomes this worker's and
   * comes back as stored. On PostgreSQL the page's rows are locked as they are read (`FOR UPDATE
   * SKIP LOCKED`: a row another worker is saving that moment is passed over, its item moving on)
   * and leased in the same statement. On SQLite every listed item is returned.
   */
  readonly claimItems: (
    page: {
      readonly stage: Item["stage"]
      readonly fates: ReadonlyArray<Item["fate"]>
      readonly afterId: string | undefined
      readonly limit: number
    },
    keyPrefix: string
  ) => Effect.Effect<ClaimedPage, StoreError>
  /**
   * A model call's answer from the cache, or else its lease: the cache's entry for `key` when it
   * has one (no lease is taken then); otherwise the lease `lease` is claimed as `claim` claims a
   * key, and `taken` says whether this worker holds it now. One round trip on PostgreSQL, where
   * the look and the claim are one statement, and the look may miss an answer that the lease's
   * last holder saved in the moment before: a caller that took the lease looks again
   * (`cacheGet`) before it pays for the call. On SQLite, a look alone.
   */
  readonly claimCall: (key: string, lease: string) => Effect.Effect<CallClaim, StoreError>
  /** Gives up leases whose work is saved; synchronous, written within the next renewal. */
  readonly release: (keys: ReadonlyArray<string>) => void
  /** The workers at work on the run now (none on a store only one process runs on). */
  readonly workers: Effect.Effect<ReadonlyArray<WorkerView>, StoreError>
  /** How many unexpired leases other workers hold on keys that start with `prefix`. */
  readonly heldByOthers: (prefix: string) => Effect.Effect<number, StoreError>
  /**
   * Holds the workspace's run lock for the life of the scope. On SQLite: one pipeline run per
   * workspace at a time, across processes (two runs would send the same calls and pay for them
   * twice); a lock left by a process that is gone (killed, crashed) is taken over; `takeOver`
   * takes any. On a shared store, workers share the run through `claim`: this registers the
   * worker, and never refuses.
   */
  readonly lockRun: (
    what: string,
    options?: { readonly takeOver?: boolean }
  ) => Effect.Effect<void, WorkspaceBusy | StoreError, Scope.Scope>
}

export interface SpendEntry {
  readonly role: string
  readonly model: string
  readonly promptTokens: number
  readonly completionTokens: number
  readonly costUsd: number
}

export interface SpendTotals {
  readonly calls: number
  /** Prompt + completion tokens. */
  readonly tokens: number
  readonly costUsd: number
}

/** What a workspace has spent, as a budget counts it: the larger of the ledger and the items' own records. */
export const workspaceSpending = (llm: StoreStatus["llm"]): { readonly usd: number; readonly tokens: number } => ({
  usd: Math.max(llm.ledger.costUsd, llm.costUsd),
  tokens: Math.max(llm.ledger.tokens, llm.paidTokens)
})

export class RunStore extends Context.Tag("@fastcot/core/RunStore")<RunStore, RunStoreShape>() {}
