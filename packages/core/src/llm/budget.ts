import type * as Effect from "effect/Effect"

/** Spending limits: US dollars (priced from the endpoints' prices) and tokens (prompt + completion). */
export interface BudgetLimits {
  readonly usd?: number | undefined
  readonly tokens?: number | undefined
}

/** Where a budget stands: what was spent (earlier spending included) and what calls in flight may still cost. */
export interface BudgetState {
  readonly limits: BudgetLimits
  readonly spentUsd: number
  readonly spentTokens: number
  readonly reservedUsd: number
  readonly reservedTokens: number
  /** Set once a call did not fit: from then on no new call starts. */
  readonly reached: boolean
  /** The worst case of the call that did not fit. */
  readonly heldBack?: { readonly tokens: number; readonly usd: number } | undefined
}

export interface BudgetOptions {
  readonly limits: BudgetLimits
  /** Spending before this service was made (a workspace's earlier runs), counted against the limits. */
  readonly spent?: { readonly usd?: number | undefined; readonly tokens?: number | undefined } | undefined
  /**
   * What the whole workspace has spent, as its spending ledger says: read every second while the
   * budget is in use, so that workers sharing a run keep to one budget together (calls another
   * worker made count here within about a second).
   */
  readonly workspaceSpending?: Effect.Effect<{ readonly usd: number; readonly tokens: number }, unknown> | undefined
  /** Called once, when the first call that does not fit is held back. */
  readonly onReached?: ((state: BudgetState) => void) | undefined
  /**
   * What becomes of a call once the budget is reached: `hold` (default) keeps it waiting, as in a
   * pause, for the owner to stop the run; `fail` fails it at once with `BudgetExhausted`, for
   * callers that finish with what they have (an evaluation).
   */
  readonly whenReached?: "hold" | "fail" | undefined
}

/** What a budget has spent, against each of its limits: `$1.2000 of $5, 3400 of 10000 tokens`. */
export const describeSpent = (b: BudgetState): string =>
  [
    b.limits.usd !== undefined ? `$${b.spentUsd.toFixed(4)} of $${b.limits.usd}` : "",
    b.limits.tokens !== undefined ? `${b.spentTokens} of ${b.limits.tokens} tokens` : ""
  ]
    .filter((x) => x !== "")
    .join(", ")

/**
 * A hard spending limit for model calls. Before a call is sent, its worst case (its prompt,
 * estimated at four characters a token, plus its `max_tokens`, at the role's highest price) is
 * reserved; a call starts only if what was spent, what the calls in flight may still cost and its
 * own worst case all fit. When one does not, the budget is reached: that call and every later one
 * is held back (they wait, as in a pause), and `onReached` lets the owner stop the run cleanly. A
 * finished call gives its reservation back and adds what it really cost; cache hits cost nothing.
 */
export class Budget {
  private readonly baseUsd: number
  private readonly baseTokens: number
  private mineUsd = 0
  private mineTokens = 0
  private elsewhereUsd = 0
  private elsewhereTokens = 0
  private reservedUsd = 0
  private reservedTokens = 0
  private reachedFlag = false
  private heldBack: { tokens: number; usd: number } | undefined
  constructor(private readonly options: BudgetOptions) {
    this.baseUsd = options.spent?.usd ?? 0
    this.baseTokens = options.spent?.tokens ?? 0
  }

  private get spentUsd(): number {
    return this.baseUsd + this.mineUsd + this.elsewhereUsd
  }
  private get spentTokens(): number {
    return this.baseTokens + this.mineTokens + this.elsewhereTokens
  }

  /**
   * Counts what others spent since this budget was made: the workspace's total less what was
   * spent before and what this budget's own calls spent (never less than counted already).
   */
  observeWorkspace(total: { readonly usd: number; readonly tokens: number }): void {
    this.elsewhereUsd = Math.max(this.elsewhereUsd, total.usd - this.baseUsd - this.mineUsd)
    this.elsewhereTokens = Math.max(this.elsewhereTokens, total.tokens - this.baseTokens - this.mineTokens)
  }

  get state(): BudgetState {
    return {
      limits: this.options.limits,
      spentUsd: this.spentUsd,
      spentTokens: this.spentTokens,
      reservedUsd: this.reservedUsd,
      reservedTokens: this.reservedTokens,
      reached: this.reachedFlag,
      heldBack: this.heldBack
    }
  }

  /** Reserves a call's worst case; false when the budget is (now) reached. */
  tryReserve(tokens: number, usd: number): boolean {
    if (!this.reachedFlag) {
      const { usd: maxUsd, tokens: maxTokens } = this.options.limits
      const fits =
        (maxTokens === undefined || this.spentTokens + this.reservedTokens + tokens <= maxTokens) &&
        (maxUsd === undefined || this.spentUsd + this.reservedUsd + usd <= maxUsd)
      if (fits) {
        this.reservedTokens += tokens
        this.reservedUsd += usd
        return true
      }
      this.reachedFlag = true
      this.heldBack = { tokens, usd }
      this.options.onReached?.(this.state)
    }
    return false
  }

  release(tokens: number, usd: number): void {
    this.reservedTokens = Math.max(0, this.reservedTokens - tokens)
    this.reservedUsd = Math.max(0, this.reservedUsd - usd)
  }

  spend(tokens: number, usd: number): void {
    this.mineTokens += tokens
    this.mineUsd += usd
  }
}
