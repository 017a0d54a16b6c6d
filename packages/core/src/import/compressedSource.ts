import { closeSync, createReadStream, openSync, readSync } from "node:fs"
import { createGunzip } from "node:zlib"

/**
 * A data file's bytes as the readers take them: a gzip-compressed file (`data.jsonl.gz`, known by
 * its magic bytes whatever its name) decompressed as it streams. `start` is an offset in the
 * decompressed bytes (where an interrupted import resumes); a compressed file is read from its
 * beginning and the bytes before `start` passed over. A zstd-compressed file is refused with what
 * to do: this Node.js has no zstd.
 */
export interface Source {
  readonly chunks: AsyncIterable<Buffer>
  /**
   * How far into the file itself a reader stands that has taken `offset` bytes of `chunks`, for
   * progress against the file's size: the offset itself for a plain file, what has been read of
   * a compressed one.
   */
  readonly fileBytesAt: (offset: number) => number
  readonly compressed: boolean
}

const startsWith = (path: string, magic: ReadonlyArray<number>): boolean => {
  const fd = openSync(path, "r")
  try {
    const head = Buffer.alloc(magic.length)
    const n = readSync(fd, head, 0, magic.length, 0)
    return n === magic.length && magic.every((b, i) => head[i] === b)
  } finally {
    closeSync(fd)
  }
}

/**
 * Whether the file is gzip-compressed (its magic bytes); a zstd-compressed one is refused with
 * what to do.
 */
export const isGzip = (path: string): boolean => {
  if (startsWith(path, [0x28, 0xb5, 0x2f, 0xfd]))
    throw new Error("zstd-compressed: decompress it first (`zstd -d FILE`), or give the .jsonl or .parquet file")
  return startsWith(path, [0x1f, 0x8b])
}

export const openSource = (path: string, start = 0): Source => {
  let read = 0
  if (!isGzip(path)) {
    const raw = createReadStream(path, { start, highWaterMark: 1 << 20 })
    return { chunks: raw as AsyncIterable<Buffer>, fileBytesAt: (offset) => offset, compressed: false }
  }
  const raw = createReadStream(path, { highWaterMark: 1 << 20 })
  raw.on("data", (c) => (read += c.length))
  const gunzip = raw.pipe(createGunzip({ chunkSize: 1 << 20 }))
  raw.on("error", (e) => gunzip.destroy(e))
  async function* skipped(): AsyncGenerator<Buffer> {
    let toSkip = start
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      if (toSkip >= chunk.length) {
        toSkip -= chunk.length
        continue
      }
      yield toSkip > 0 ? chunk.subarray(toSkip) : chunk
      toSkip = 0
    }
  }
  return { chunks: skipped(), fileBytesAt: () => read, compressed: true }
}
