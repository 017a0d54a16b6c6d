import * as fs from "node:fs"
import * as os from "node:os"
import { type MessagePort, receiveMessageOnPort, type Worker } from "node:worker_threads"
import { answeringLoopSource, startEvalThread } from "../util/evalThread.js"
import { halfTable } from "./half.js"
import { quantizeQ4RowRange } from "./qwen2Builder.js"
import { CheckpointError, isFloatDtype, readFloat32Range, type TensorEntry } from "./safetensors.js"

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
   * `quantize` of a weight whose rows lie in safetensors files (`parts`, each [rows, K], their
   * rows in order): each thread reads and widens its own rows and quantizes them, so that reading
   * is shared too. Rows go through the shared array a chunk at a time (at least its size as
   * reserved), so a weight larger than it (an output projection) needs no array of its own.
   * Undefined (nothing done) when a part is not F32, F16 or BF16. A file that ends too soon is a
   * `CheckpointError` naming it and the tensor.
   */
  readonly quantizeFromFiles: (
    parts: ReadonlyArray<TensorEntry>,
    K: number,
    N: number
  ) => { packed: Uint8Array; scales: Float32Array } | undefined
  /**
   * Grows the shared arrays at once to fit the largest weight to come (N rows of K): arrays grown
   * later would hold the smaller ones alive beside them until the helpers' garbage collection.
   */
  readonly reserve: (K: number, N: number) => void
  /** Ends the helpers; `quantize` then runs on this thread alone. */
  readonly close: () => void
}

/** A part of a weight as a run reads it: `rows` rows of K from byte `begin` of `file`. */
interface FilePart {
  readonly file: string
  readonly begin: number
  readonly dtype: string
  readonly rows: number
}

/**
 * One run of `quantizeFromFiles`: reads rows `from` to `to` of the parts into `rows` and
 * quantizes them into `packed` and `scales`, three views that start at row `base`. Returns the
 * index of a part whose file ended, or -1. It names nothing outside itself (`read` and `quantize`
 * are `readFloat32Range` and `quantizeQ4RowRange`), so helper threads run it from its own source.
 */
export function quantizeRunFromFiles(
  parts: ReadonlyArray<FilePart>,
  K: number,
  block: number,
  from: number,
  to: number,
  base: number,
  rows: Float32Array,
  packed: Uint8Array,
  scales: Float32Array,
  piece: Uint8Array,
  io: {
    readonly fs: Parameters<typeof readFloat32Range>[0]
    readonly read: typeof readFloat32Range
    readonly quantize: typeof quantizeQ4RowRange
    /** float16's table (every bit pattern's float32 value). */
    readonly halves: () => Float32Array
  }
): number {
  let first = 0
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    const a = Math.max(from, first)
    const b = Math.min(to, first + part.rows)
    if (a < b) {
      const width = part.dtype === "F32" ? 4 : 2
      const into = rows.subarray((a - base) * K, (b - base) * K)
      if (
        io.read(io.fs, part.file, part.begin + (a - first) * K * width, part.dtype, (b - a) * K, into, piece, io.halves)
      )
        return i
    }
    first += part.rows
  }
  io.quantize(rows, K, block, from - base, to - base, packed, scales)
  return -1
}

/**
 * A job of a helper thread: a run of `quantize` (no `parts`) or of `quantizeFromFiles`. Besides
 * its arguments it names only `quantizeRunFromFiles`, which the thread's source defines too.
 */
function runJob(
  job: {
    readonly rows: SharedArrayBuffer
    readonly rowsOffset: number
    readonly rowsLength: number
    readonly packed: SharedArrayBuffer
    readonly packedOffset: number
    readonly packedLength: number
    readonly scales: SharedArrayBuffer
    readonly scalesOffset: number
    readonly scalesLength: number
    readonly K: number
    readonly block: number
    readonly from: number
    readonly to: number
    readonly base: number
    readonly parts?: ReadonlyArray<FilePart> | undefined
  },
  piece: Uint8Array,
  io: Parameters<typeof quantizeRunFromFiles>[10]
): { readonly error?: string } {
  const rows = new Float32Array(job.rows, job.rowsOffset, job.rowsLength)
  const packed = new Uint8Array(job.packed, job.packedOffset, job.packedLength)
  const scales = new Float32Array(job.scales, job.scalesOffset, job.scalesLength)
  const { K, block, from, to, base } = job
  if (job.parts === undefined) io.quantize(rows, K, block, from - base, to - base, packed, scales)
  else if (quantizeRunFromFiles(job.parts, K, block, from, to, base, rows, packed, scales, piece, io) >= 0)
    return { error: "a file ended" }
  return {}
}

// CommonJS, evaluated, answering as `answeringLoopSource` says; the functions are the very ones
// this thread runs, from their source.
const threadSource = () => `
const { workerData, receiveMessageOnPort } = require("node:worker_threads")
const quantizeQ4RowRange = ${quantizeQ4RowRange.toString()}
const readFloat32Range = ${readFloat32Range.toString()}
const quantizeRunFromFiles = ${quantizeRunFromFiles.toString()}
const runJob = ${runJob.toString()}
const halves = new Float32Array(workerData.halves)
const io = { fs: require("node:fs"), read: readFloat32Range, quantize: quantizeQ4RowRange, halves: () => halves }
const piece = new Uint8Array(${PIECE_BYTES})
${answeringLoopSource("runJob(message, piece, io)")}`

/** How long `quantize` waits for a helper's run: far past any weight's time (a 7B head takes ~2 s). */
const RUN_WITHIN_MS = 120_000
const BLOCK = 32
/** The fewest values a chunk of `quantizeFromFiles` reads at once (64 MB in float32). */
const CHUNK_VALUES = 16 * 2 ** 20
/** The bytes each thread reads half-width values through, kept for every weight. */
const PIECE_BYTES = 32 * 2 ** 20

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
export const startQ4Threads = (
  helpers = Math.min(3, os.availableParallelism() - 1),
  /** The fewest values `quantizeFromFiles` reads at once (tests make it small). */
  chunkValues = CHUNK_VALUES
): Q4Threads => {
  let pool: Array<Helper> = []
  // float16's table, in memory the helpers share (256 KB).
  const sharedHalves = new Float32Array(new SharedArrayBuffer(65536 * 4))
  if (helpers > 0) sharedHalves.set(halfTable())
  for (let i = 0; i < helpers; i++) {
    const signals = new Int32Array(new SharedArrayBuffer(12))
    const thread = startEvalThread(threadSource(), { signals: signals.buffer, halves: sharedHalves.buffer })
    if (thread === undefined) break
    pool.push({ ...thread, signals, done: 0 })
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

  /**
   * Splits rows `from` to `to` into runs, one a helper's (when `rows` is shared), the last this
   * thread's; `rows`, `packed` and `scales` are views that start at row `base`. `here` does a run
   * on this thread (and redoes a failed helper's).
   */
  const inRuns = (
    views: { readonly rows: Float32Array; readonly packed: Uint8Array; readonly scales: Float32Array },
    K: number,
    from: number,
    to: number,
    base: number,
    parts: ReadonlyArray<FilePart> | undefined,
    here: (from: number, to: number) => void
  ) => {
    const { rows, packed, scales } = views
    const working = rows.buffer instanceof SharedArrayBuffer ? pool : []
    const per = Math.ceil((to - from) / (working.length + 1))
    const sent: Array<{ helper: Helper; from: number; to: number }> = []
    working.forEach((helper, i) => {
      const first = Math.min(to, from + i * per)
      const last = Math.min(to, first + per)
      if (first === last) return
      helper.port.postMessage({
        rows: rows.buffer,
        rowsOffset: rows.byteOffset,
        rowsLength: rows.length,
        packed: packed.buffer,
        packedOffset: packed.byteOffset,
        packedLength: packed.length,
        scales: scales.buffer,
        scalesOffset: scales.byteOffset,
        scalesLength: scales.length,
        K,
        block: BLOCK,
        from: first,
        to: last,
        base,
        parts
      })
      Atomics.add(helper.signals, 0, 1)
      Atomics.notify(helper.signals, 0)
      sent.push({ helper, from: first, to: last })
    })
    here(Math.min(to, from + working.length * per), to)
    for (const run of sent)
      if (!finished(run.helper)) {
        pool = pool.filter((h) => h !== run.helper)
        here(run.from, run.to)
      }
  }

  /** Packed bytes and scales for N rows of K. */
  const outputs = (K: number, N: number) => {
    const blocks = Math.ceil(K / BLOCK)
    return { packed: packedScratch(N * blocks * (BLOCK >> 1)), scales: scalesScratch(N * blocks), blocks }
  }

  const quantize = (rows: Float32Array, K: number, N: number) => {
    const { packed, scales } = outputs(K, N)
    inRuns({ rows, packed, scales }, K, 0, N, 0, undefined, (from, to) =>
      quantizeQ4RowRange(rows, K, BLOCK, from, to, packed, scales)
    )
    return { packed, scales }
  }

  let piece: Uint8Array | undefined
  const io = { fs, read: readFloat32Range, quantize: quantizeQ4RowRange, halves: halfTable }
  const quantizeFromFiles = (entries: ReadonlyArray<TensorEntry>, K: number, N: number) => {
    if (!entries.every((e) => isFloatDtype(e.dtype))) return undefined
    const parts = entries.map((e) => ({ file: e.file, begin: e.begin, dtype: e.dtype, rows: e.shape[0]! }))
    const { packed, scales, blocks } = outputs(K, N)
    // Rows a chunk at a time through the shared array as it is (at least CHUNK_VALUES), so that
    // a weight larger than the array (a head) needs no array of its own.
    const chunk = Math.max(1, Math.floor(Math.max(rowsScratch(0).buffer.byteLength / 4, chunkValues) / K))
    const rows = rowsScratch(Math.min(N, chunk) * K)
    piece ??= new Uint8Array(PIECE_BYTES)
    const mine = piece
    for (let base = 0; base < N; base += chunk) {
      const views = {
        rows,
        packed: packed.subarray(base * blocks * (BLOCK >> 1)),
        scales: scales.subarray(base * blocks)
      }
      inRuns(views, K, base, Math.min(N, base + chunk), base, parts, (from, to) => {
        const ended = quantizeRunFromFiles(parts, K, BLOCK, from, to, base, rows, views.packed, views.scales, mine, io)
        if (ended >= 0) {
          const e = entries[ended]!
          throw new CheckpointError({ message: `${e.file}: tensor ${e.name}: the file ended while reading it` })
        }
      })
    }
    return { packed, scales }
  }

  return {
    helpers: () => pool.length,
    scratch: rowsScratch,
    quantizeFromFiles,
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
