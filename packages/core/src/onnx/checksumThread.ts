import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { receiveMessageOnPort } from "node:worker_threads"
import { startEvalThread } from "../util/evalThread.js"

/**
 * The SHA-256 of files, read in order, worked out on a thread of its own while this one goes on
 * (a conversion records its checkpoint's hash: 15 GB read a second time at 7B). `digest` blocks
 * until the thread is done; should the thread fail or stop answering, the hash is worked out on
 * this thread instead. Either way the digest is the same.
 */
export interface ChecksumThread {
  /** The hex SHA-256 of the files' bytes, each file's name (as given) hashed before its bytes. */
  readonly digest: () => string
  /** Where the digest was worked out (once `digest` has answered): "thread", or "here" after a failure. */
  readonly workedOn: () => "thread" | "here" | undefined
  /** Stops the thread without a digest (the work it served failed); `digest` then hashes here. */
  readonly stop: () => void
}

/** Hashes `files` as `ChecksumThread.digest` says; names nothing outside itself (the thread runs its source). */
function sha256OfFiles(
  files: ReadonlyArray<{ readonly name: string; readonly path: string }>,
  fsModule: Pick<typeof fs, "openSync" | "readSync" | "closeSync">,
  hashOf: typeof createHash
): string {
  const hash = hashOf("sha256")
  const chunk = Buffer.alloc(8 * 2 ** 20)
  for (const file of files) {
    hash.update(file.name)
    const fd = fsModule.openSync(file.path, "r")
    try {
      let n: number
      while ((n = fsModule.readSync(fd, chunk, 0, chunk.length, null)) > 0) hash.update(chunk.subarray(0, n))
    } finally {
      fsModule.closeSync(fd)
    }
  }
  return hash.digest("hex")
}

// CommonJS, evaluated (`startEvalThread`).
const threadSource = () => `
const { workerData } = require("node:worker_threads")
const sha256OfFiles = ${sha256OfFiles.toString()}
let answer
try {
  answer = { hex: sha256OfFiles(workerData.files, require("node:fs"), require("node:crypto").createHash) }
} catch (e) {
  answer = { error: e instanceof Error ? e.message : String(e) }
}
workerData.port.postMessage(answer)
const done = new Int32Array(workerData.done)
Atomics.store(done, 0, 1)
Atomics.notify(done, 0)
`

/** How long `digest` waits for the thread past its own call: reading 15 GB takes well under this. */
const DIGEST_WITHIN_MS = 30 * 60_000

export const startChecksumThread = (
  files: ReadonlyArray<{ readonly name: string; readonly path: string }>
): ChecksumThread => {
  const done = new Int32Array(new SharedArrayBuffer(4))
  let thread = startEvalThread(threadSource(), { files, done: done.buffer })
  let hex: string | undefined
  let workedOn: "thread" | "here" | undefined
  return {
    workedOn: () => workedOn,
    stop: () => {
      if (thread === undefined) return
      void thread.worker.terminate()
      thread.port.close()
      thread = undefined
    },
    digest: () => {
      if (hex !== undefined) return hex
      if (thread !== undefined) {
        const until = Date.now() + DIGEST_WITHIN_MS
        while (Atomics.load(done, 0) === 0 && Date.now() < until) Atomics.wait(done, 0, 0, 1_000)
        const answer = receiveMessageOnPort(thread.port)?.message as { hex?: string } | undefined
        void thread.worker.terminate()
        thread.port.close()
        thread = undefined
        hex = answer?.hex
        if (hex !== undefined) workedOn = "thread"
      }
      if (hex === undefined) {
        hex = sha256OfFiles(files, fs, createHash)
        workedOn = "here"
      }
      return hex
    }
  }
}
