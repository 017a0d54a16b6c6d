import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { hostname, tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { stageFolder } from "./stagedFolder.js"

const tmp = fs.mkdtempSync(path.join(tmpdir(), "fastcot-staged-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const write = (file: string, text: string) => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, text)
}

describe("a folder staged beside its destination (real files)", () => {
  it("publishes a new folder whole, and nothing before publish", () => {
    const out = path.join(tmp, "new", "model")
    const staged = stageFolder(out)
    write(path.join(staged.path, "onnx", "model.onnx"), "graph")
    expect(fs.existsSync(out)).toBe(false)
    expect(staged.published(path.join(staged.path, "onnx", "model.onnx"))).toBe(path.join(out, "onnx", "model.onnx"))
    staged.publish()
    expect(fs.readFileSync(path.join(out, "onnx", "model.onnx"), "utf8")).toBe("graph")
    expect(fs.readdirSync(path.dirname(out))).toEqual(["model"])
  })

  it("merges into a folder that exists: same names replaced, the rest kept; discard leaves it as it was", () => {
    const out = path.join(tmp, "merge")
    write(path.join(out, "onnx", "model.onnx"), "old fp32")
    write(path.join(out, "onnx", "model_q4.onnx"), "old q4")
    write(path.join(out, "README.md"), "mine")
    const first = stageFolder(out)
    write(path.join(first.path, "onnx", "model.onnx"), "new fp32")
    first.discard()
    expect(fs.readFileSync(path.join(out, "onnx", "model.onnx"), "utf8")).toBe("old fp32")
    expect(fs.readdirSync(tmp).filter((f) => f.includes("merge"))).toEqual(["merge"])

    const second = stageFolder(out)
    write(path.join(second.path, "onnx", "model.onnx"), "new fp32")
    write(path.join(second.path, "fastcot.json"), "{}")
    second.publish()
    expect(fs.readFileSync(path.join(out, "onnx", "model.onnx"), "utf8")).toBe("new fp32")
    expect(fs.readFileSync(path.join(out, "onnx", "model_q4.onnx"), "utf8")).toBe("old q4")
    expect(fs.readdirSync(out).sort()).toEqual(["README.md", "fastcot.json", "onnx"])
    expect(fs.readdirSync(tmp).filter((f) => f.includes("merge"))).toEqual(["merge"])
  })

  it("removes what a killed process on this host staged for the destination, not a running one's", () => {
    const out = path.join(tmp, "left")
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString()
    const deadDir = path.join(tmp, `.left.partial-${hostname()}-${dead}`)
    const liveDir = path.join(tmp, `.left.partial-${hostname()}-${process.ppid}`)
    const otherHost = path.join(tmp, `.left.partial-elsewhere-${dead}`)
    for (const d of [deadDir, liveDir, otherHost]) write(path.join(d, "onnx", "model.onnx_data"), "half written")
    const staged = stageFolder(out)
    expect(fs.existsSync(deadDir)).toBe(false)
    expect(fs.existsSync(liveDir)).toBe(true)
    expect(fs.existsSync(otherHost)).toBe(true)
    staged.discard()
  })

  it("refuses a destination that is a file, naming it", () => {
    const file = path.join(tmp, "a-file")
    fs.writeFileSync(file, "x")
    expect(() => stageFolder(file)).toThrow(`${file}: exists and is not a folder`)
  })
})
