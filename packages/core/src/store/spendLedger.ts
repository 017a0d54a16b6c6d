import type Database from "better-sqlite3"
import type { SpendEntry, SpendTotals } from "./RunStore.js"
import { SpendSums } from "./spendSums.js"

/**
 * The workspace's spending ledger: calls are summed in memory per role and model, and the sums
 * are added to the `llm_spend` table a quarter second after the first unsaved call (one small
 * transaction, whatever the call rate), when totals are read, and when the store closes.
 */
export class SpendLedger {
  private readonly unsaved = new SpendSums()
  private timer: NodeJS.Timeout | undefined
  private readonly add: Database.Statement
  private readonly sum: Database.Statement

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => string
  ) {
    this.add =
      db.prepare(`INSERT INTO llm_spend (role, model, calls, prompt_tokens, completion_tokens, cost_usd, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(role, model) DO UPDATE SET calls = calls + excluded.calls, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens, cost_usd = cost_usd + excluded.cost_usd, updated_at = excluded.updated_at`)
    this.sum = db.prepare(
      "SELECT COALESCE(SUM(calls), 0) AS calls, COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS tokens, COALESCE(SUM(cost_usd), 0) AS costUsd FROM llm_spend"
    )
  }

  /** Adds one call that was sent and answered. Synchronous; written shortly after. */
  record(spend: SpendEntry): void {
    this.unsaved.add(spend)
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        try {
          this.flush()
        } catch {
          // Kept in memory: the next flush (or the close) writes it.
        }
      }, 250)
      this.timer.unref()
    }
  }

  /** Writes what is unsaved, in one transaction. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.unsaved.size === 0) return
    const at = this.now()
    const taken = this.unsaved.take()
    try {
      this.db.transaction(() => {
        for (const s of taken) this.add.run(s.role, s.model, s.calls, s.prompt, s.completion, s.cost, at)
      })()
    } catch (e) {
      // Kept for the next flush.
      for (const s of taken) this.unsaved.merge(s)
      throw e
    }
  }

  /** Every call's spending so far, unsaved ones included. */
  totals(): SpendTotals {
    this.flush()
    return this.sum.get() as SpendTotals
  }
}
