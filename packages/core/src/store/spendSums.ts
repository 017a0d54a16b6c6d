import type { SpendEntry } from "./RunStore.js"

/** One role and model's calls not yet written to a spending ledger, summed. */
export interface SpendSum {
  readonly role: string
  readonly model: string
  calls: number
  prompt: number
  completion: number
  cost: number
}

/** Calls summed in memory per role and model until a ledger writes them (both stores' ledgers). */
export class SpendSums {
  private sums = new Map<string, SpendSum>()

  get size(): number {
    return this.sums.size
  }

  /** Adds one call. */
  add(spend: SpendEntry): void {
    this.merge({
      role: spend.role,
      model: spend.model,
      calls: 1,
      prompt: spend.promptTokens,
      completion: spend.completionTokens,
      cost: spend.costUsd
    })
  }

  /** Adds sums (a write that failed gives its sums back). */
  merge(sum: SpendSum): void {
    const key = `${sum.role}\u0000${sum.model}`
    const s = this.sums.get(key)
    if (s === undefined) this.sums.set(key, { ...sum })
    else {
      s.calls += sum.calls
      s.prompt += sum.prompt
      s.completion += sum.completion
      s.cost += sum.cost
    }
  }

  /** Takes every sum out, to be written. */
  take(): Array<SpendSum> {
    const taken = [...this.sums.values()]
    this.sums = new Map()
    return taken
  }
}
