import {
  type GenerateRequest,
  type GenerateResult,
  type LoadOptions,
  type LocalModel,
  LocalModelError
} from "./localModel.js"
import { DecodeBatch, type DecodeRow } from "./decodeBatch.js"

interface Pending {
  readonly request: GenerateRequest
  readonly resolve: (r: GenerateResult) => void
  readonly reject: (e: unknown) => void
  readonly at: number
}

/**
 * Serves many concurrent callers from one local model with continuous batching: up to
 * `maxBatch` rows decode together; a row that finishes is answered at once, and a waiting
 * request takes its place at the next step (prefilled, then joined to the running batch),
 * instead of every row waiting for the longest one.
 */
export class LocalEngine {
  private readonly queue: Array<Pending> = []
  private running = false
  constructor(
    readonly model: LocalModel,
    readonly maxBatch = 8
  ) {}

  submit(request: GenerateRequest): Promise<GenerateResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject, at: performance.now() })
      if (!this.running) void this.pump()
    })
  }

  get pending(): number {
    return this.queue.length
  }

  /** Requests that may start now: cancelled and impossible ones are answered here, one by one. */
  private admit(room: number): Array<Pending> {
    const out: Array<Pending> = []
    while (out.length < room && this.queue.length > 0) {
      const p = this.queue.shift()!
      const refused =
        p.request.signal?.aborted === true
          ? new LocalModelError({ reason: "cancelled", message: "cancelled before it started" })
          : DecodeBatch.refuse(this.model, p.request)
      if (refused !== undefined) p.reject(refused)
      else out.push(p)
    }
    return out
  }

  private async pump(): Promise<void> {
    this.running = true
    const owners = new Map<DecodeRow, Pending>()
    const answer = (batch: DecodeBatch) => {
      for (const row of batch.rows) {
        const p = owners.get(row)
        if (p === undefined || row.finish === undefined) continue
        owners.delete(row)
        if (row.finish === "cancelled") p.reject(new LocalModelError({ reason: "cancelled", message: "cancelled" }))
        else p.resolve(row.result())
      }
    }
    let batch: DecodeBatch | undefined
    try {
      while (this.queue.length > 0 || (batch !== undefined && batch.active > 0)) {
        const incoming = this.admit(this.maxBatch - (batch?.active ?? 0))
        if (incoming.length > 0) {
          try {
            const fresh = await DecodeBatch.prefill(
              this.model,
              incoming.map((p) => p.request),
              incoming.map((p) => p.at)
            )
            fresh.rows.forEach((row, i) => owners.set(row, incoming[i]!))
            answer(fresh)
            batch = batch === undefined ? fresh : DecodeBatch.join([batch, fresh])
          } catch (e) {
            for (const p of incoming) p.reject(e)
          }
        } else if (batch !== undefined && 2 * batch.active <= batch.rows.length) {
          // Half the rows are done: stop feeding them.
          batch = DecodeBatch.join([batch])
        }
        if (batch === undefined || batch.active === 0) continue
        try {
          await batch.step()
          answer(batch)
        } catch (e) {
          for (const row of batch.rows) {
            owners.get(row)?.reject(e)
            owners.delete(row)
          }
          batch = undefined
        }
      }
    } finally {
      this.running = false
    }
  }
}

export interface OnnxProviderOptions extends LoadOptions {
  readonly path: string
  readonly maxBatch?: number | undefined
  /** Default new-token budget when a request sets none. */
  readonly maxNewTokens?: number | undefined
}
