import { MessageChannel, type MessagePort, Worker } from "node:worker_threads"

/**
 * Starts a thread that runs CommonJS `source`, evaluated (no file to resolve, from sources or from
 * dist alike), given `data` as `workerData` and, as `workerData.port`, one end of a channel whose
 * other end is returned. Neither the thread nor the port keeps the process alive by itself.
 * Undefined where a thread cannot start: callers then do the work on their own thread.
 */
export const startEvalThread = (
  source: string,
  data: Readonly<Record<string, unknown>>
): { readonly worker: Worker; readonly port: MessagePort } | undefined => {
  const { port1: mine, port2: theirs } = new MessageChannel()
  try {
    const worker = new Worker(source, { eval: true, workerData: { ...data, port: theirs }, transferList: [theirs] })
    worker.unref()
    mine.unref()
    return { worker, port: mine }
  } catch {
    mine.close()
    return undefined
  }
}

/**
 * Source of a thread's loop that answers requests in order, for askers that block on it:
 * `workerData.signals` is an Int32Array's shared buffer, [0] the requests sent, [1] those
 * answered, [2] 1 once the thread should end. Each message on `workerData.port` is answered with
 * the value of `answer` (an expression of `message`; one that throws is answered `{ error }`), then
 * [1] is counted up and the asker woken. Names it declares: `signals`, `port`.
 */
export const answeringLoopSource = (answer: string): string => `
const signals = new Int32Array(workerData.signals)
const port = workerData.port
for (let seen = 0; ; ) {
  Atomics.wait(signals, 0, seen)
  if (Atomics.load(signals, 2) === 1) break
  seen = Atomics.load(signals, 0)
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const message = m.message
    let answer
    try {
      answer = ${answer}
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
