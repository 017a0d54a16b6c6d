import type * as ort from "onnxruntime-node"
import {
  type DecodingModel,
  type GenerateRequest,
  type GenerateResult,
  type LocalFinish,
  LocalModelError
} from "./generation.js"
import { halfToFloat32 } from "./half.js"
import { LAST_LOGITS, newOutput, pastInput } from "./rewrite.js"
import { suppressEosBelow } from "./logitsProcessors.js"
import { sampleToken, seededRandom } from "./sampler.js"
import { type TokenLogprob, tokenLogprob } from "./tokenLogprobs.js"
import { StopStrings } from "./stopStrings.js"
import { TextStreamer } from "./textStreamer.js"

/** One request's decoding state: its tokens, sampler, streamed text and stop conditions. */
export class DecodeRow {
  readonly generated: Array<number> = []
  private readonly logprobs: Array<TokenLogprob> = []
  /** What the prefill feeds: the whole prompt, or its first token when the prompt's log-probabilities are wanted. */
  readonly prefillIds: ReadonlyArray<number>
  /** Prompt tokens fed one a step after the prefill (teacher forcing), and how many are fed. */
  private readonly forced: ReadonlyArray<number>
  private forcedDone = 0
  private readonly promptLogprobs: Array<TokenLogprob> = []
  private readonly seen: Set<number>
  private readonly random: () => number
  private readonly decoder: { push: (id: number) => string; flush: () => string }
  private text = ""
  private readonly stops: StopStrings
  private readonly streamer: TextStreamer
  private readonly budget: number
  finish: LocalFinish | undefined = undefined
  /** The token to feed at the next step. */
  pending = 0
  firstTokenAt = 0
  finishedAt = 0

  constructor(
    private readonly model: DecodingModel,
    readonly request: GenerateRequest,
    readonly startedAt: number
  ) {
    this.seen = new Set(request.promptIds)
    this.random = seededRandom(request.sampling.seed)
    this.decoder = model.tokenizer.streamDecoder()
    this.stops = new StopStrings(request.stop)
    this.streamer = new TextStreamer(this.stops.hold, request.onText)
    this.budget = Math.min(request.maxNewTokens, model.contextLength - request.promptIds.length)
    const stepwise = request.promptLogprobs === true && request.logprobs !== undefined
    this.prefillIds = stepwise ? request.promptIds.slice(0, 1) : request.promptIds
    this.forced = stepwise ? request.promptIds.slice(1) : []
  }

  get promptLength(): number {
    return this.request.promptIds.length
  }
  /** The position of the pending token. */
  get position(): number {
    return this.prefillIds.length + this.forcedDone + this.generated.length - 1
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
    // The prompt's own tokens first, when they are fed a step at a time: the next one is taken, not sampled.
    if (this.forcedDone < this.forced.length) {
      const token = this.forced[this.forcedDone++]!
      this.promptLogprobs.push(tokenLogprob(logits, token, this.request.logprobs!))
      this.pending = token
      if (this.forcedDone === this.forced.length && this.budget <= 0) this.end("length", now)
      return
    }
    if (this.budget <= 0) return this.end("length", now)
    const eos = this.model.tokenizer.eosIds
    // Log-probabilities are of the model's own distribution: read before anything changes the logits.
    const raw = this.request.logprobs !== undefined ? logits.slice() : undefined
    suppressEosBelow(logits, eos, this.generated.length, this.request.minNewTokens ?? 0)
    const allowed = this.request.choice?.allowed(this.generated)
    const token = sampleToken(logits, this.request.sampling, this.seen, this.random, allowed)
    if (this.generated.length === 0) this.firstTokenAt = now
    if (raw !== undefined) this.logprobs.push(tokenLogprob(raw, token, this.request.logprobs!))
    this.generated.push(token)
    this.seen.add(token)
    this.pending = token
    if (eos.includes(token)) this.end("stop", now)
    else {
      const before = this.text.length
      this.text += this.decoder.push(token)
      const cut = this.stops.any && this.text.length > before ? this.stops.cutAt(this.text, before) : undefined
      if (cut !== undefined) {
        this.text = this.text.slice(0, cut)
        this.end("stop", now)
      }
      if (this.finish === undefined && this.generated.length >= this.budget) this.end("length", now)
    }
    if (this.finish === "length" && !this.stops.any) this.text += this.decoder.flush()
    this.streamer.push(this.text, this.finish !== undefined)
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
      totalMs: this.finishedAt - this.startedAt,
      ...(this.request.logprobs !== undefined ? { logprobs: this.logprobs } : {}),
      ...(this.forced.length > 0 || this.request.promptLogprobs === true ? { promptLogprobs: this.promptLogprobs } : {})
    }
  }
}

type KvData = Float32Array | Uint16Array

/** The longest prompt prefilled in one run; longer ones run in chunks of this many positions. */
export const PREFILL_CHUNK = 512

/** Positions the cache grows by: fed whole, it changes shape only this often. */
const CHUNK = 64

/** Room for `needed` positions, in whole chunks. */
const roomFor = (needed: number): number => Math.max(CHUNK, Math.ceil(needed / CHUNK) * CHUNK)

/**
 * The KV cache of a batch, in the export's layout: per layer a key and a value buffer
 * `[batch, kv_heads, capacity, head_dim]`, of which each row uses the first `width` positions
 * (the rest is zeros, masked out). The runtime reads the whole buffer in place, every position
 * masked by the batch's slot mask, so a step copies nothing into the graph, and a step writes its
 * new positions at `width`. It grows by whole chunks, re-laid only then.
 */
class KvCache {
  constructor(
    readonly batch: number,
    readonly heads: number,
    readonly headDim: number,
    public buffers: Array<KvData>,
    public capacity: number
  ) {}

  static empty(model: DecodingModel, batch: number, capacity: number): KvCache {
    const [H, D] = [model.folder.numKvHeads, model.folder.headDim]
    const Data = model.signature.kvType === "float16" ? Uint16Array : Float32Array
    return new KvCache(
      batch,
      H,
      D,
      Array.from({ length: 2 * model.signature.layers }, () => new Data(batch * H * capacity * D)),
      capacity
    )
  }

  /**
   * Room for `needed` positions (the first `width` are kept), in whole chunks and an eighth more:
   * each growth copies the whole cache (at a 4,096-token context on Qwen2.5-0.5B's shapes, 100 MB
   * and a step that took 2.5x as long), so a long one grows by a share of its size, not by a chunk.
   */
  reserve(needed: number, width: number): void {
    if (needed <= this.capacity) return
    const capacity = roomFor(needed + (needed >> 3))
    const [rows, D] = [this.batch * this.heads, this.headDim]
    this.buffers = this.buffers.map((old) => {
      const Data = old.constructor as new (length: number) => KvData
      const grown = new Data(rows * capacity * D)
      for (let r = 0; r < rows; r++)
        grown.set(old.subarray(r * this.capacity * D, (r * this.capacity + width) * D), r * capacity * D)
      return grown
    })
    this.capacity = capacity
  }

  /** Writes the new positions a run returned (`[batch, kv_heads, n, head_dim]` per tensor) at `width`. */
  append(news: ReadonlyArray<ort.Tensor>, width: number): void {
    const [rows, D] = [this.batch * this.heads, this.headDim]
    const n = news[0]!.dims[2]!
    this.reserve(width + n, width)
    const C = this.capacity
    for (const [t, tensor] of news.entries()) {
      const src = tensor.data as KvData
      const dst = this.buffers[t]!
      for (let r = 0; r < rows; r++) dst.set(src.subarray(r * n * D, (r + 1) * n * D), (r * C + width) * D)
    }
  }

  /** The feeds: every buffer whole (no copy; the runtime reads them in place). */
  feeds(model: DecodingModel, into: Record<string, ort.Tensor>): void {
    const type = model.signature.kvType
    const dims = [this.batch, this.heads, this.capacity, this.headDim]
    for (let l = 0; l < model.signature.layers; l++) {
      into[pastInput(l, "key")] = new model.ort.Tensor(type, this.buffers[2 * l]!, dims)
      into[pastInput(l, "value")] = new model.ort.Tensor(type, this.buffers[2 * l + 1]!, dims)
    }
  }
}

/**
 * Rows decoded together over one KV cache, right-aligned in time with an attention mask that
 * hides each row's left padding and the cache's unused positions. Rows can join between steps
 * (continuous batching: a row that finishes frees its slot for a waiting request instead of
 * idling until the longest row ends). A step moves only one position per layer across the
 * JavaScript boundary (the rewritten graph returns new positions, not the whole cache, and reads
 * the cache in place); the cache is re-laid only when it grows by a chunk or the batch's
 * membership changes.
 */
export class DecodeBatch {
  private constructor(
    private readonly model: DecodingModel,
    readonly rows: Array<DecodeRow>,
    private readonly cache: KvCache,
    /** Per row, which of the first `width` positions it attends to (`[batch, width]`). */
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
  static refuse(model: DecodingModel, request: GenerateRequest): LocalModelError | undefined {
    const n = request.promptIds.length
    if (n === 0) return new LocalModelError({ reason: "prompt-too-long", message: "an empty prompt" })
    if (n >= model.contextLength)
      return new LocalModelError({
        reason: "prompt-too-long",
        message: `the prompt has ${n} tokens; this model's context is ${model.contextLength}`
      })
    return undefined
  }

  /**
   * Prefills new requests as one left-padded batch and samples each row's first token.
   * `startedAt` is when the requests were submitted (time to first token counts from there).
   */
  static async prefill(
    model: DecodingModel,
    requests: ReadonlyArray<GenerateRequest>,
    startedAt: ReadonlyArray<number>
  ): Promise<DecodeBatch> {
    const B = requests.length
    for (const r of requests) {
      const refused = DecodeBatch.refuse(model, r)
      if (refused !== undefined) throw refused
    }
    const rows = requests.map((r, b) => new DecodeRow(model, r, startedAt[b] ?? performance.now()))
    const lens = rows.map((r) => r.prefillIds.length)
    const S = Math.max(...lens)
    const pad = model.tokenizer.padId
    const ids = new BigInt64Array(B * S).fill(BigInt(pad))
    const mask = new BigInt64Array(B * S)
    const pos = new BigInt64Array(B * S)
    for (let b = 0; b < B; b++) {
      const off = S - lens[b]!
      rows[b]!.prefillIds.forEach((id, i) => {
        ids[b * S + off + i] = BigInt(id)
        mask[b * S + off + i] = 1n
        pos[b * S + off + i] = BigInt(i)
      })
    }
    // An empty cache for the prompt (it takes the prompt's positions when they come back). A long
    // prompt runs in chunks, each over the cache the ones before it wrote: the attention scores of
    // one chunk are held at a time, not the whole prompt's (at 4,096 tokens on Qwen2.5-0.5B's
    // shapes one prefill passed 8 GB).
    const batch = new DecodeBatch(model, rows, KvCache.empty(model, B, 0), new BigInt64Array(0), 0)
    const chunk = model.prefillChunk ?? PREFILL_CHUNK
    for (let start = 0; start < S; start += chunk) {
      const n = Math.min(chunk, S - start)
      const columns = (all: BigInt64Array) => {
        if (n === S) return all
        const out = new BigInt64Array(B * n)
        for (let b = 0; b < B; b++) out.set(all.subarray(b * S + start, b * S + start + n), b * n)
        return out
      }
      await batch.feed(columns(ids), columns(mask), columns(pos), n, start + n >= S)
    }
    return batch
  }

  /**
   * Runs `n` new positions per row after the cache (`ids`, `mask`, `positions` as `[batch, n]`),
   * writes them into it, and samples every running row when `sample` is set.
   */
  private async feed(
    ids: BigInt64Array,
    mask: BigInt64Array,
    positions: BigInt64Array,
    n: number,
    sample: boolean
  ): Promise<void> {
    const B = this.rows.length
    const W = this.width
    const C = this.cache.capacity
    // The cache is fed whole: its used positions as each row's mask says, the rest masked out,
    // then the new positions.
    const used = new BigInt64Array(B * (W + n))
    const fed = new BigInt64Array(B * (C + n))
    for (let b = 0; b < B; b++) {
      const before = this.mask.subarray(b * W, (b + 1) * W)
      const added = mask.subarray(b * n, (b + 1) * n)
      used.set(before, b * (W + n))
      used.set(added, b * (W + n) + W)
      fed.set(before, b * (C + n))
      fed.set(added, b * (C + n) + C)
    }
    this.mask = used
    const rt = this.model.ort
    await this.forward(
      {
        input_ids: new rt.Tensor("int64", ids, [B, n]),
        attention_mask: new rt.Tensor("int64", fed, [B, C + n]),
        position_ids: new rt.Tensor("int64", positions, [B, n])
      },
      sample
    )
  }

  /** Runs the graph over the cache, writes the new positions into it and samples every running row when `sample` is set. */
  private async forward(feeds: Record<string, ort.Tensor>, sample: boolean): Promise<void> {
    this.cache.feeds(this.model, feeds)
    const out = await this.model.run(feeds)
    const news: Array<ort.Tensor> = []
    for (let l = 0; l < this.model.signature.layers; l++)
      news.push(out[newOutput(l, "key")]!, out[newOutput(l, "value")]!)
    this.cache.append(news, this.width)
    this.width += news[0]!.dims[2]!
    if (sample) this.sample(out[LAST_LOGITS]!, performance.now())
  }

  private sample(logits: ort.Tensor, now: number): void {
    const V = logits.dims[2]!
    for (const [b, row] of this.rows.entries()) {
      row.checkSignal(now)
      if (row.finish !== undefined) continue
      const start = b * V
      let values: Float32Array
      if (logits.type === "float32") values = (logits.data as Float32Array).subarray(start, start + V)
      else values = halfToFloat32((logits.data as Uint16Array).subarray(start, start + V))
      row.accept(values, now)
    }
  }

  /** One decoding step for every row still running (finished rows are fed padding, masked out). */
  async step(): Promise<void> {
    const B = this.rows.length
    const pad = BigInt(this.model.tokenizer.padId)
    const next = new BigInt64Array(B)
    const nextPos = new BigInt64Array(B)
    const live = new BigInt64Array(B)
    for (let b = 0; b < B; b++) {
      const row = this.rows[b]!
      const running = row.finish === undefined
      next[b] = running ? BigInt(row.pending) : pad
      nextPos[b] = BigInt(Math.max(0, row.position))
      live[b] = running ? 1n : 0n
    }
    await this.feed(next, live, nextPos, 1, true)
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
      mask.set(
        k.batch.mask.subarray(k.b * k.batch.width + k.batch.width - k.used, (k.b + 1) * k.batch.width),
        i * W + W - k.used
      )
    }
    const cache = KvCache.empty(model, B, roomFor(W + 1))
    const [H, D, C] = [cache.heads, cache.headDim, cache.capacity]
    for (const [t, dst] of cache.buffers.entries()) {
      for (const [i, k] of kept.entries()) {
        const src = k.batch.cache.buffers[t]!
        const Cs = k.batch.cache.capacity
        const skip = k.batch.width - k.used
        for (let h = 0; h < H; h++) {
          const from = ((k.b * H + h) * Cs + skip) * D
          dst.set(src.subarray(from, from + k.used * D), ((i * H + h) * C + W - k.used) * D)
        }
      }
    }
    return new DecodeBatch(
      model,
      kept.map((k) => k.batch.rows[k.b]!),
      cache,
      mask,
      W
    )
  }
}
