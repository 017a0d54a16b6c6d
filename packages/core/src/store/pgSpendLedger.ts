import type { SqlClient } from "@effect/sql/SqlClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { StoreError } from "./errors.js"
import type { SpendEntry, SpendTotals } from "./RunStore.js"
import { SpendSums } from "./spendSums.js"

/**
 * The spending ledger on PostgreSQL: calls are summed in memory per role and model, and the sums
 * are added to `llm_spend` (never overwritten, so every worker's calls count) by a fiber every
 * quarter second, when totals are read, and when the scope closes.
 */
export class PgSpendLedger {
  private readonly unsaved = new SpendSums()

  private constructor(
    private readonly sql: SqlClient,
    private readonly now: () => string
  ) {}

  static make(sql: SqlClient, now: () => string): Effect.Effect<PgSpendLedger, never, Scope.Scope> {
    const ledger = new PgSpendLedger(sql, now)
    return Effect.gen(function* () {
      // A failed write keeps the sums in memory for the next one.
      yield* Effect.forkScoped(Effect.repeat(Effect.ignore(ledger.flush), Schedule.spaced(Duration.millis(250))))
      yield* Effect.addFinalizer(() => Effect.ignore(ledger.flush))
      return ledger
    })
  }

  /** Adds one call that was sent and answered. Synchronous; written shortly after. */
  record(spend: SpendEntry): void {
    this.unsaved.add(spend)
  }

  /** Adds what is unsaved to the table, in one transaction; kept for the next try if it fails. */
  get flush(): Effect.Effect<void, StoreError> {
    return Effect.suspend(() => {
      if (this.unsaved.size === 0) return Effect.void
      const taken = this.unsaved.take()
      const at = this.now()
      const sql = this.sql
      return sql
        .withTransaction(
          Effect.forEach(
            taken,
            (
              s
            ) => sql`INSERT INTO llm_spend (role, model, calls, prompt_tokens, completion_tokens, cost_usd, updated_at)
              VALUES (${s.role}, ${s.model}, ${s.calls}, ${s.prompt}, ${s.completion}, ${s.cost}, ${at})
              ON CONFLICT (role, model) DO UPDATE SET calls = llm_spend.calls + excluded.calls,
                prompt_tokens = llm_spend.prompt_tokens + excluded.prompt_tokens,
                completion_tokens = llm_spend.completion_tokens + excluded.completion_tokens,
                cost_usd = llm_spend.cost_usd + excluded.cost_usd, updated_at = excluded.updated_at`,
            { discard: true }
          )
        )
        .pipe(
          Effect.tapError(() => Effect.sync(() => taken.forEach((sum) => this.unsaved.merge(sum)))),
          Effect.mapError((e) => new StoreError({ message: `writing the spending ledger: ${e.message}`, cause: e }))
        )
    })
  }

  /** Every worker's spending so far, this one's unsaved calls included. */
  get totals(): Effect.Effect<SpendTotals, StoreError> {
    const sql = this.sql
    return Effect.zipRight(
      this.flush,
      sql<{ calls: string; tokens: string; cost_usd: number }>`SELECT COALESCE(SUM(calls), 0) AS calls,
        COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS tokens, COALESCE(SUM(cost_usd), 0) AS cost_usd
        FROM llm_spend`.pipe(
        Effect.map((rows) => ({
          calls: Number(rows[0]?.calls ?? 0),
          tokens: Number(rows[0]?.tokens ?? 0),
          costUsd: Number(rows[0]?.cost_usd ?? 0)
        })),
        Effect.mapError((e) => new StoreError({ message: `reading the spending ledger: ${e.message}`, cause: e }))
      )
    )
  }
}
