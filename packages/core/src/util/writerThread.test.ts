import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { startWriterThread, WriteFailed } from "./writerThread.js"

describe("appending to a file from a thread of its own", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fastcot-writer-"))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  it("writes every byte in order through 2 slots of 1 KiB, while the caller reuses its array", () => {
    const file = path.join(dir, "out.bin")
    const fd = fs.openSync(file, "w")
    const expected: Array<Buffer> = []
    try {
      const writer = startWriterThread(fd, 2, 1024)
      const reused = new Uint8Array(5000)
      for (let i = 0; i < 40; i++) {
        const length = [1, 1023, 1024, 1025, 5000][i % 5]!
        for (let j = 0; j < length; j++) reused[j] = (i * 31 + j) & 255
        const bytes = reused.subarray(0, length)
        expected.push(Buffer.from(bytes))
        writer.write(bytes)
      }
      writer.finish()
    } finally {
      fs.closeSync(fd)
    }
    expect(Buffer.compare(fs.readFileSync(file), Buffer.concat(expected))).toBe(0)
  })

  it("reports a full disk as WriteFailed with the system's message", () => {
    const fd = fs.openSync("/dev/full", "w")
    try {
      const writer = startWriterThread(fd, 2, 1024)
      const attempt = () => {
        for (let i = 0; i < 8; i++) writer.write(new Uint8Array(1024))
        writer.finish()
      }
      expect(attempt).toThrow(WriteFailed)
      expect(attempt).toThrow(/ENOSPC/)
    } finally {
      fs.closeSync(fd)
    }
  })
})
