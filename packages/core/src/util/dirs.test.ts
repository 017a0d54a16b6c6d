import { statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { tempDir } from "../test-support/fixtures.js"
import { ensureDir, ensureDirSync } from "./dirs.js"

describe("ensureDir / ensureDirSync", () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(() => tmp.cleanup())

  it("makes the missing folders, and leaves existing ones be", async () => {
    await ensureDir(join(tmp.dir, "a", "b", "c"))
    ensureDirSync(join(tmp.dir, "x", "y"))
    await ensureDir(join(tmp.dir, "a", "b"))
    ensureDirSync(join(tmp.dir, "a"))
    expect(statSync(join(tmp.dir, "a", "b", "c")).isDirectory()).toBe(true)
    expect(statSync(join(tmp.dir, "x", "y")).isDirectory()).toBe(true)
  })

  it("fails, naming the cause, where a file is in the way", async () => {
    writeFileSync(join(tmp.dir, "f"), "")
    await expect(ensureDir(join(tmp.dir, "f", "g"))).rejects.toMatchObject({ code: "ENOTDIR" })
    expect(() => ensureDirSync(join(tmp.dir, "f", "g"))).toThrow(/ENOTDIR/)
  })

  // Node's own recursive mkdir spins forever here (procfs answers ENOENT to mkdir).
  it.runIf(process.platform === "linux")(
    "fails instead of spinning where the system cannot make a folder (under /proc)",
    async () => {
      await expect(ensureDir("/proc/fastcot-no/such")).rejects.toMatchObject({ code: "ENOENT" })
      expect(() => ensureDirSync("/proc/fastcot-no/such")).toThrow(/ENOENT/)
    }
  )
})
