import * as fs from "node:fs"

/** The most one `write` takes (Node refuses lengths past 2 GiB - 1). */
const MAX_WRITE = 1 << 30

/**
 * Writes all of `bytes` at the file's current position, however large: a tensor of a 7B model
 * (the embeddings in float32: 2.2 GB) is past what one `fs.writeSync` takes, and a write may
 * write less than it was given.
 */
export const writeAllSync = (fd: number, bytes: Uint8Array, maxWrite = MAX_WRITE): void => {
  for (let at = 0; at < bytes.byteLength;) at += fs.writeSync(fd, bytes, at, Math.min(bytes.byteLength - at, maxWrite))
}
