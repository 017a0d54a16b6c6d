import * as fs from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { tempDir } from "../test-support/fixtures.js"
import { writeAllSync } from "./writeAll.js"

describe("writeAllSync", () => {
  let tmp: ReturnType<typeof tempDir> | undefined
  afterEach(() => tmp?.cleanup())

  it("writes every byte in pieces no larger than one write takes, after what the file holds", () => {
    tmp = tempDir()
    const file = join(tmp.dir, "out.bin")
    const bytes = Uint8Array.from({ length: 10_007 }, (_, i) => (i * 31) % 251)
    const fd = fs.openSync(file, "w")
    try {
      fs.writeSync(fd, Uint8Array.of(7, 7))
      writeAllSync(fd, bytes, 1_000)
      writeAllSync(fd, new Uint8Array(0), 1_000)
    } finally {
      fs.closeSync(fd)
    }
    const written = fs.readFileSync(file)
    expect(written.length).toBe(10_009)
    expect([...written.subarray(0, 2)]).toEqual([7, 7])
    expect(Buffer.compare(written.subarray(2), Buffer.from(bytes))).toBe(0)
  })
})
