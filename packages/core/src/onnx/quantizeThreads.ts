import * as os from "node:os"
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads"
import { quantizeQ4RowRange } from "./qwen2Builder.js"

/**
 * 4-bit quantization shared between this thread and helper threads: a weight's rows are split
 * into equal runs, the helpers take all runs but the last, this thread takes the last, and
 * `quantize` returns once every run is done. The rows, packed bytes and scales live in shared
 * memory, so nothing is copied between threads. Should a helper fail or not answer, its run is
 * quantized on this thread and that helper is not asked again: the bytes are the same either way.
 */
export interface Q4Threads {
  /** The number of helper threads still in use. */
  readonly helpers: () => number
  /**
   * An array of `count` values in shared memory to read a weight's rows into (grown to the
   * largest asked for, so that a conversion touches fresh pages once); valid until asked again.
   */
  readonly scratch: (count: number) => Float32Array
  /**
   * `quantizeQ4Rows(rows, K, N, 32)`. The packed bytes and scales returned are shared arrays that
   * the next call overwrites: write them out before quantizing the next weight.
   */
  readonly quantize: (rows: Float32Array, K: number, N: number) => { packed: Uint8Array; scales: Float32Array }
  /**
   * Grows the shared arrays at once to fit the largest weight to come (N rows of K): arrays grown
   * later would hold the smaller ones alive beside them until the helpers' garbage collection.
   */
  readonly reserve: (K: number, N: number) => void
  /** Ends the helpers; `quantize` then runs on this thread alone. */
  readonly close: () => void
}

// signals[0]: jobs sent; signals[1]: jobs done; signals[2]: 1 once the thread should end.
// CommonJS, evaluated (no file to resolve from sources or from dist), as the tokenizer's thread;
// the kernel is the very function this thread runs, from its source.
const threadSource = () => `
const { workerData, receiveMessageOnPort } = require("node:worker_threads")
const quantizeQ4RowRange = ${quantizeQ4RowRange.toString()}
const signals = new Int32Array(workerData.signals)
const port = workerData.port
for (let seen = 0; ; ) {
  Atomics.wait(signals, 0, seen)
  if (Atomics.load(signals, 2) === 1) break
  seen = Atomics.load(signals, 0)
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const job = m.message
    let answer = {}
    try {
      quantizeQ4RowRange(
        new Float32Array(job.rows, job.rowsOffset, job.rowsLength),
        job.K,
        job.block,
        job.from,
        job.to,
        new Uint8Array(job.packed, 0, job.packedLength),
        new Float32Array(job.scales, 0, job.scalesLength)
      )
    } catch (e) {
      answer = { error: e instanceof Error ? e.message : String(e) }
    }
    port.postMessage(answer)
    Atomics.add(signals, 1, 1)
    Atomics.notify(signals, 1)
  }
}
port.close()
`

/** How long `quantize` waits for a helper's run: far past any weight's time (a 7B head takes ~2 s). */
const RUN_WITHIN_MS = 120_000
const BLOCK = 32

interface Helper {
  readonly worker: Worker
  readonly port: MessagePort
  readonly signals: Int32Array
  done: number
}

/** A shared array of at least `count` elements of `T`'s size, regrown only when too small. */
const sharedGrowing = <T extends Float32Array | Uint8Array>(make: (buffer: SharedArrayBuffer, count: number) => T) => {
  let current = make(new SharedArrayBuffer(0), 0)
  return (count: number): T => {
    if (current.length < count) current = make(new SharedArrayBuffer(count * current.BYTES_PER_ELEMENT), count)
    return current.subarray(0, count) as T
  }
}

/**
 * Starts `helpers` threads (by default one fewer than the cores available, at most 3: more
 * contend for memory bandwidth). With none, or where threads cannot start, every call runs here.
 */
export const startQ4Threads = (helpers = Math.min(3, os.availableParallelism() - 1)): Q4Threads => {
  let pool: Array<Helper> = []
  for (let i = 0; i < helpers; i++) {
    const signals = new Int32Array(new SharedArrayBuffer(12))
    const { port1: mine, port2: theirs } = new MessageChannel()
    try {
      const worker = new Worker(threadSource(), {
        eval: true,
        workerData: { signals: signals.buffer, port: theirs },
        transferList: [theirs]
      })
      // The threads never keep the process alive by themselves.
      worker.unref()
      mine.unref()
      pool.push({ worker, port: mine, signals, done: 0 })
    } catch {
      mine.close()
      break
    }
  }
  const rowsScratch = sharedGrowing((b, n) => new Float32Array(b, 0, n))
  const packedScratch = sharedGrowing((b, n) => new Uint8Array(b, 0, n))
  const scalesScratch = sharedGrowing((b, n) => new Float32Array(b, 0, n))

  const end = (helper: Helper) => {
    Atomics.store(helper.signals, 2, 1)
    Atomics.add(helper.signals, 0, 1)
    Atomics.notify(helper.signals, 0)
    void helper.worker.terminate()
    helper.port.close()
  }

  /** Waits for `helper`'s run; false (and the helper ended) where it failed or took too long. */
  const finished = (helper: Helper): boolean => {
    const deadline = Date.now() + RUN_WITHIN_MS
    while (Atomics.load(helper.signals, 1) === helper.done) {
      const left = deadline - Date.now()
      if (left <= 0 || Atomics.wait(helper.signals, 1, helper.done, left) === "timed-out") {
        end(helper)
        return false
      }
    }
    helper.done++
    const answer = receiveMessageOnPort(helper.port)?.message as { error?: string } | undefined
    if (answer === undefined || answer.error !== undefined) {
      end(helper)
      return false
    }
    return true
  }

  const quantize = (rows: Float32Array, K: number, N: number) => {
    const blocks = Math.ceil(K / BLOCK)
    const packed = packedScratch(N * blocks * (BLOCK >> 1))
    const scales = scalesScratch(N * blocks)
    const shared = rows.buffer instanceof SharedArrayBuffer
    const working = shared ? pool : []
    const runs = working.length + 1
    const per = Math.ceil(N / runs)
    const sent: Array<{ helper: Helper; from: number; to: number }> = []
    working.forEach((helper, i) => {
      const from = Math.min(N, i * per)
      const to = Math.min(N, from + per)
      if (from === to) return
      helper.port.postMessage({
        rows: rows.buffer,
        rowsOffset: rows.byteOffset,
        rowsLength: rows.length,
        K,
        block: BLOCK,
        from,
        to,
        packed: packed.buffer,
        packedLength: packed.length,
        scales: scales.buffer,
        scalesLength: scales.length
      })
      Atomics.add(helper.signals, 0, 1)
      Atomics.notify(helper.signals, 0)
      sent.push({ helper, from, to })
    })
    quantizeQ4RowRange(rows, K, BLOCK, Math.min(N, working.length * per), N, packed, scales)
    for (const run of sent)
      if (!finished(run.helper)) {
        pool = pool.filter((h) => h !== run.helper)
        quantizeQ4RowRange(rows, K, BLOCK, run.from, run.to, packed, scales)
      }
    return { packed, scales }
  }

  return {
    helpers: () => pool.length,
    scratch: rowsScratch,
    reserve: (K, N) => {
      const blocks = Math.ceil(K / BLOCK)
      rowsScratch(K * N)
      packedScratch(N * blocks * (BLOCK >> 1))
      scalesScratch(N * blocks)
    },
    quantize,
    close: () => {
      for (const helper of pool) end(helper)
      pool = []
    }
  }
}
