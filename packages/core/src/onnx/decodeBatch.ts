import type * as ort from "onnxruntime-node"
import type { GenerateRequest, GenerateResult, LocalFinish, LocalModel } from "./localModel.js"
import { LocalModelError } from "./localModel.js"
import { sampleToken, seededRandom } from "./sampler.js"

const halfToFloat = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const f = h & 0x3ff
  if (e === 0) return s * 2 ** -14 * (f / 1024)
  if (e === 31) return f ? NaN : s * Infinity
  return s * 2 ** (e - 15) * (1 + f / 1024)
}

/** One request's decoding state: its tokens, sampler, streamed text and stop conditions. */
export class DecodeRow {
  readonly generated: Array<number> = []
  private readonly seen: Set<number>
  private readonly random: () => number
  private readonly decoder: { push: (id: number) => string; flush: () => string }
  private text = ""
  private emitted = 0
  private readonly stops: ReadonlyArray<string>
  private readonly hold: number
  private readonly budget: number
  finish: LocalFinish | undefined = undefined
  /** The token to feed at the next step. */
  pending = 0
  firstTokenAt = 0
  finishedAt = 0

  constructor(
    private readonly model: LocalModel,
    readonly request: GenerateRequest,
    readonly startedAt: number
  ) {
    this.seen = new Set(request.promptIds)
    this.random = seededRandom(request.sampling.seed)
    this.decoder = model.tokenizer.streamDecoder()
    this.stops = (request.stop ?? []).filter((s) => s.length > 0)
    this.hold = Math.max(0, ...this.stops.map((s) => s.length - 1))
    this.budget = Math.min(request.maxNewTokens, model.contextLength - request.promptIds.length)
  }

  get promptLength(): number {
    return this.request.promptIds.length
  }
  /** The position of the pending token. */
  get position(): number {
    return this.promptLength + this.generated.length - 1
  }

  /** Marks the row cancelled when its signal has fired. */
  checkSignal(now: number): void {
    if (this.finish === undefined && this.request.signal?.aborted === true) this.end("cancelled", now)
  }

  private end(why: LocalFinish, now: number): void {
    this.finish = why
    this.finishedAt = now
  }

  /** Chooses the next token from this row's logits and applies EOS, stop strings and the budget. */
  accept(logits: Float32Array, now: number): void {
    const eos = this.model.tokenizer.eosIds
    if (this.generated.length < (this.request.minNewTokens ?? 0)) for (const e of eos) logits[e] = -Infinity
    const allowed = this.request.choice?.allowed(this.generated)
    const token = sampleToken(logits, this.request.sampling, this.seen, this.random, allowed)
    if (this.generated.length === 0) this.firstTokenAt = now
    this.generated.push(token)
    this.seen.add(token)
    this.pending = token
    if (eos.includes(token)) this.end("stop", now)
    else {
      const before = this.text.length
      this.text += this.decoder.push(token)
      if (this.stops.length > 0 && this.text.length > before) {
        const from = Math.max(0, before - this.hold)
        for (const s of this.stops) {
          const at = this.text.indexOf(s, from)
          if (at >= 0) {
            this.text = this.text.slice(0, at)
            this.end("stop", now)
          }
        }
      }
      if (this.finish === undefined && this.generated.length >= this.budget) this.end("length", now)
    }
    if (this.finish === "length" && this.stops.length === 0) this.text += this.decoder.flush()
    const safe = this.finish !== undefined ? this.text.length : this.text.length - this.hold
    if (safe > this.emitted) {
      this.request.onText?.(this.text.slice(this.emitted, safe))
      this.emitted = safe
    }
  }

  result(): GenerateResult {
    const eos = this.model.tokenizer.eosIds
    return {
      ids: this.generated.filter((t) => !eos.includes(t)),
      text: this.text,
      finishReason: this.finish ?? "length",
      promptTokens: this.promptLength,
      completionTokens: this.generated.length,
      firstTokenMs: (this.firstTokenAt || this.finishedAt) - this.startedAt,
      totalMs: this.finishedAt - this.startedAt
    }
  }
}

type KvData = Float32Array | Uint16Array

/**
 * Rows decoded together over one KV cache, right-aligned in a [batch, kv_heads, T, head_dim]
 * layout with an attention mask that hides each row's left padding. Rows can join between steps
 * (continuous batching: a row that finishes frees its slot for a waiting request instead of
 * idling until the longest row ends). The cache stays in the runtime's tensors between steps;
 * it is copied only when the batch's membership changes.
 */
export class DecodeBatch {
  private logitsOut: ort.Tensor | null = null

  private constructor(
    private readonly model: LocalModel,
    readonly rows: Array<DecodeRow>,
    /** present/past tensors per layer: key, value, key, value, … */
    private past: Array<ort.Tensor>,
    private mask: BigInt64Array,
    private width: number
  ) {}

  /** Rows still decoding. */
  get active(): number {
    let n = 0
    for (const r of this.rows) if (r.finish === undefined) n++
    return n
  }

  /** Why a request cannot be prefilled, if it cannot (checked one by one, before batching). */
  static refuse(model: LocalModel, request: GenerateRequest): LocalModelError | undefined {
    const n = request.promptIds.length
    if (n === 0) return new LocalModelError({ reason: "prompt-too-long", message: "an empty prompt" })
    if (n >= model.contextLength) return new LocalModelError({ reason: "prompt-too-long", message: `the prompt has ${n} tokens; this model's context is ${model.contextLength}` })
    return undefined
  }

  /**
   * Prefills new requests as one left-padded batch and samples each row's first token.
   * `startedAt` is when the requests were submitted (time to first token counts from there).
   */
  static async prefill(model: LocalModel, requests: ReadonlyArray<GenerateRequest>, startedAt: ReadonlyArray<number>): Promise<DecodeBatch> {
    const B = requests.length
    const lens = requests.map((r) => r.promptIds.length)
    const S = Math.max(...lens)
    for (const r of requests) {
      const refused = DecodeBatch.refuse(model, r)
      if (refused !== undefined) throw refused
    }
    const pad = model.tokenizer.padId
    const ids = new BigInt64Array(B * S).fill(BigInt(pad))
    const mask = new BigInt64Array(B * S)
    const pos = new BigInt64Array(B * S)
    for (let b = 0; b < B; b++) {
      const off = S - lens[b]!
      requests[b]!.promptIds.forEach((id, i) => {
        ids[b * S + off + i] = BigInt(id)
        mask[b * S + off + i] = 1n
        pos[b * S + off + i] = BigInt(i)
      })
    }
    const rt = model.ort
    const out = await model.run({
      input_ids: new rt.Tensor("int64", ids, [B, S]),
      attention_mask: new rt.Tensor("int64", mask, [B, S]),
      position_ids: new rt.Tensor("int64", pos, [B, S]),
      ...model.emptyPast(B)
    })
    const now = performance.now()
    const rows = requests.map((r, b) => new DecodeRow(model, r, startedAt[b] ?? now))
    const batch = new DecodeBatch(model, rows, DecodeBatch.presentOf(model, out), mask, S)
    batch.sample(out["logits"]!, S - 1, now)
    return batch
  }

  private static presentOf(model: LocalModel, out: ort.InferenceSession.ReturnType): Array<ort.Tensor> {
    const past: Array<ort.Tensor> = []
    for (let l = 0; l < model.signature.layers; l++) past.push(out[`present.${l}.key`]!, out[`present.${l}.value`]!)
    return past
  }

  private sample(logits: ort.Tensor, position: number, now: number): void {
    const V = logits.dims[2]!
    const S = logits.dims[1]!
    for (const [b, row] of this.rows.entries()) {
      row.checkSignal(now)
      if (row.finish !== undefined) continue
      const start = (b * S + position) * V
      let values: Float32Array
      if (logits.type === "float32") values = (logits.data as Float32Array).subarray(start, start + V)
      else {
        const half = logits.data as Uint16Array
        values = new Float32Array(V)
        for (let i = 0; i < V; i++) values[i] = halfToFloat(half[start + i]!)
      }
      row.accept(values, now)
    }
  }

  /** One decoding step for every row still running (finished rows are fed padding, masked out). */
  async step(): Promise<void> {
    const B = this.rows.length
    const T = this.width + 1
    const pad = BigInt(this.model.tokenizer.padId)
    const next = new BigInt64Array(B)
    const nextPos = new BigInt64Array(B)
    const mask = new BigInt64Array(B * T)
    for (let b = 0; b < B; b++) {
      const row = this.rows[b]!
      mask.set(this.mask.subarray(b * this.width, (b + 1) * this.width), b * T)
      const live = row.finish === undefined
      next[b] = live ? BigInt(row.pending) : pad
      nextPos[b] = BigInt(Math.max(0, row.position))
      mask[b * T + T - 1] = live ? 1n : 0n
    }
    const rt = this.model.ort
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new rt.Tensor("int64", next, [B, 1]),
      attention_mask: new rt.Tensor("int64", mask, [B, T]),
      position_ids: new rt.Tensor("int64", nextPos, [B, 1])
    }
    const fetches: Record<string, ort.Tensor | null> = {}
    const V = this.model.vocabSize
    if (this.model.signature.logitsType === "float32") {
      if (this.logitsOut === null || this.logitsOut.dims[0] !== B) this.logitsOut = new rt.Tensor("float32", new Float32Array(B * V), [B, 1, V])
      fetches["logits"] = this.logitsOut
    } else fetches["logits"] = null
    for (let l = 0; l < this.model.signature.layers; l++) {
      feeds[`past_key_values.${l}.key`] = this.past[2 * l]!
      feeds[`past_key_values.${l}.value`] = this.past[2 * l + 1]!
      fetches[`present.${l}.key`] = fetches[`present.${l}.value`] = null
    }
    const out = await this.model.run(feeds, fetches)
    this.past = DecodeBatch.presentOf(this.model, out)
    this.mask = mask
    this.width = T
    this.sample(out["logits"]!, 0, performance.now())
  }

  /**
   * The rows of several batches (finished rows left out) in one batch, right-aligned to a common
   * width with no column that every row masks: the only place the cache is copied.
   */
  static join(batches: ReadonlyArray<DecodeBatch>): DecodeBatch {
    const model = batches[0]!.model
    const kept: Array<{ batch: DecodeBatch; b: number; used: number }> = []
    for (const batch of batches) {
      for (const [b, row] of batch.rows.entries()) {
        if (row.finish !== undefined) continue
        // Columns this row uses: from its first unmasked one to the end.
        let first = 0
        while (first < batch.width && batch.mask[b * batch.width + first] === 0n) first++
        kept.push({ batch, b, used: batch.width - first })
      }
    }
    const B = kept.length
    const W = Math.max(0, ...kept.map((k) => k.used))
    const mask = new BigInt64Array(B * W)
    for (const [i, k] of kept.entries()) {
      mask.set(k.batch.mask.subarray(k.b * k.batch.width + k.batch.width - k.used, (k.b + 1) * k.batch.width), i * W + W - k.used)
    }
    const [H, D] = [model.folder.numKvHeads, model.folder.headDim]
    const past: Array<ort.Tensor> = []
    for (let t = 0; t < 2 * model.signature.layers; t++) {
      const sample = batches[0]!.past[t]!
      const Data = (sample.data as KvData).constructor as new (length: number) => KvData
      const data = new Data(B * H * W * D)
      for (const [i, k] of kept.entries()) {
        const src = k.batch.past[t]!.data as KvData
        const Ws = k.batch.width
        for (let h = 0; h < H; h++) {
          const from = ((k.b * H + h) * Ws + Ws - k.used) * D
          data.set(src.subarray(from, from + k.used * D), ((i * H + h) * W + W - k.used) * D)
        }
      }
      past.push(new model.ort.Tensor(sample.type as "float32", data, [B, H, W, D]))
    }
    return new DecodeBatch(
      model,
      kept.map((k) => k.batch.rows[k.b]!),
      past,
      mask,
      W
    )
  }
}
