import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { startChecksumThread } from "./checksumThread.js"

describe("a checksum worked out on a thread of its own", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fastcot-checksum-"))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  it("gives each file's name then bytes, in order, hashed as one SHA-256 (files past one read's 8 MiB)", () => {
    const files = [
      { name: "a.safetensors", bytes: Buffer.alloc(9 * 2 ** 20 + 3, 7) },
      { name: "b.safetensors", bytes: Buffer.from("tail") }
    ].map((f) => {
      const p = path.join(dir, f.name)
      fs.writeFileSync(p, f.bytes)
      return { name: f.name, path: p, bytes: f.bytes }
    })
    const expected = createHash("sha256")
    for (const f of files) expected.update(f.name).update(f.bytes)
    const thread = startChecksumThread(files.map(({ name, path }) => ({ name, path })))
    expect(thread.digest()).toBe(expected.digest("hex"))
    expect(thread.workedOn()).toBe("thread")
    // Asked again, the same answer without a thread.
    expect(thread.digest()).toMatch(/^[0-9a-f]{64}$/)
  })

  it("fails as reading the files here fails when a file is missing", () => {
    const thread = startChecksumThread([{ name: "gone", path: path.join(dir, "gone.safetensors") }])
    expect(() => thread.digest()).toThrow(/ENOENT.*gone\.safetensors/)
    expect(thread.workedOn()).toBeUndefined()
  })
})
