import { Data } from "effect"
import { receiveMessageOnPort } from "node:worker_threads"
import { startEvalThread } from "./evalThread.js"
import { writeAllSync } from "./writeAll.js"

/**
 * Appends to an open file from a thread of its own: `write` copies the bytes into one of a few
 * shared slots and returns (blocking only while every slot is still being written), and the
 * thread writes the slots out in order. The caller may change or reuse its bytes once `write`
 * returns. Where the thread cannot start, `write` writes on this thread; a failed write (a full
 * disk) is thrown from the next `write` or from `finish`, with the system's message.
 */
export interface WriterThread {
  readonly write: (bytes: Uint8Array) => void
  /** Waits for every write and ends the thread; throws the first failure. */
  readonly finish: () => void
}

// signals[0]: slots filled; signals[1]: slots written; signals[2]: 1 once the thread should end;
// signals[3]: 1 once a write failed (its message follows on the port).
// CommonJS, evaluated (`startEvalThread`).
const THREAD_SOURCE = `
const fs = require("node:fs")
const { workerData } = require("node:worker_threads")
const signals = new Int32Array(workerData.signals)
const lengths = new Int32Array(workerData.lengths)
const ring = new Uint8Array(workerData.ring)
const slots = lengths.length
const slotBytes = ring.length / slots
for (let written = 0; ; ) {
  while (Atomics.load(signals, 0) === written) {
    if (Atomics.load(signals, 2) === 1) break
    Atomics.wait(signals, 0, written, 1000)
  }
  if (Atomics.load(signals, 0) === written) break
  const slot = written % slots
  const bytes = ring.subarray(slot * slotBytes, slot * slotBytes + lengths[slot])
  try {
    for (let at = 0; at < bytes.length; ) at += fs.writeSync(workerData.fd, bytes, at, bytes.length - at)
  } catch (e) {
    workerData.port.postMessage(e instanceof Error ? e.message : String(e))
    Atomics.store(signals, 3, 1)
    Atomics.notify(signals, 1)
    break
  }
  written++
  Atomics.store(signals, 1, written)
  Atomics.notify(signals, 1)
}
`

/** How long a write waits for a free slot, and `finish` for the last: far past any disk's pace. */
const SLOT_WITHIN_MS = 10 * 60_000

/** A write of the thread failed, or the thread stopped writing; `message` is the system's. */
export class WriteFailed extends Data.TaggedError("WriteFailed")<{ readonly message: string }> {}

/** Starts the thread for `fd` with `slots` slots of `slotBytes` each (by default 4 of 16 MiB). */
export const startWriterThread = (fd: number, slots = 4, slotBytes = 16 * 2 ** 20): WriterThread => {
  const signals = new Int32Array(new SharedArrayBuffer(16))
  const lengths = new Int32Array(new SharedArrayBuffer(4 * slots))
  const ring = new Uint8Array(new SharedArrayBuffer(slots * slotBytes))
  let thread = startEvalThread(THREAD_SOURCE, {
    fd,
    signals: signals.buffer,
    lengths: lengths.buffer,
    ring: ring.buffer
  })
  let filled = 0

  let failed: WriteFailed | undefined
  const end = () => {
    Atomics.store(signals, 2, 1)
    Atomics.notify(signals, 0)
    void thread?.worker.terminate()
    thread?.port.close()
    thread = undefined
  }
  /** Throws the thread's failure (the first one, every time asked), ending the thread. */
  const throwIfFailed = () => {
    if (failed === undefined && Atomics.load(signals, 3) === 1) {
      const message = thread === undefined ? undefined : receiveMessageOnPort(thread.port)?.message
      failed = new WriteFailed({ message: typeof message === "string" ? message : "the writer thread failed" })
      end()
    }
    if (failed !== undefined) throw failed
  }
  /** Waits until at most `pending` slots are still to be written. */
  const drain = (pending: number) => {
    const until = Date.now() + SLOT_WITHIN_MS
    for (let written = Atomics.load(signals, 1); filled - written > pending; written = Atomics.load(signals, 1)) {
      throwIfFailed()
      if (Date.now() > until) {
        failed = new WriteFailed({ message: `the writer thread wrote nothing for ${SLOT_WITHIN_MS / 1000} s` })
        end()
        throw failed
      }
      Atomics.wait(signals, 1, written, 1_000)
    }
    throwIfFailed()
  }

  return {
    write: (bytes) => {
      if (failed !== undefined) throw failed
      if (thread === undefined) return writeAllSync(fd, bytes)
      for (let at = 0; at < bytes.byteLength;) {
        drain(slots - 1)
        const slot = filled % slots
        const n = Math.min(slotBytes, bytes.byteLength - at)
        ring.set(bytes.subarray(at, at + n), slot * slotBytes)
        lengths[slot] = n
        at += n
        filled++
        Atomics.store(signals, 0, filled)
        Atomics.notify(signals, 0)
      }
    },
    finish: () => {
      if (failed !== undefined) throw failed
      if (thread === undefined) return
      try {
        drain(0)
      } finally {
        end()
      }
    }
  }
}
