import * as Either from "effect/Either"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { loadEvalResults, readEvalResults, type ResultsFileError } from "./results.js"

const dir = mkdtempSync(join(tmpdir(), "fastcot-results-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const summary = {
  items: 2,
  samples: 2,
  accuracy: 0.5,
  ci95: 0.4,
  passAtK: {},
  noAnswer: 0,
  truncated: 0,
  meanOutputTokens: 40,
  medianOutputTokens: 40
}
const results = {
  fastcot: "eval/v1",
  model: "student",
  settings: {
    preset: "greedy",
    sampling: { temperature: 0 },
    samples: 1,
    systemPrompt: "",
    promptVersion: "1",
    graderVersion: "1",
    tokenizer: "qwen2.5"
  },
  startedAt: "2026-11-26T10:00:00Z",
  finishedAt: "2026-11-26T10:01:00Z",
  benchmarks: [{ bench: "math500", file: "math500/test.jsonl", sha256: "0", summary, groups: {} }]
}
const file = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}
const left = (e: Either.Either<unknown, ResultsFileError>) =>
  Either.isLeft(e) ? { reason: e.left.reason, message: e.left.message } : { reason: "none", message: "" }

describe("reading an evaluation's results.json back", () => {
  it("reads a good file, and says why a bad one cannot be used, the same way with or without blocking", async () => {
    const cases: Array<[string, string, RegExp]> = [
      [file("good.json", JSON.stringify(results)), "none", /^$/],
      [join(dir, "absent.json"), "missing", /absent\.json: cannot read it \(ENOENT\)/],
      [file("half.json", JSON.stringify(results).slice(0, 30)), "not-json", /half\.json: not JSON/],
      [file("other.json", JSON.stringify({ hello: 1 })), "foreign", /other\.json: not a fastcot evaluation result/],
      [
        file(
          "edited.json",
          JSON.stringify({
            ...results,
            benchmarks: [{ ...results.benchmarks[0], summary: { ...summary, accuracy: "zero" } }]
          })
        ),
        "invalid",
        /edited\.json: .*benchmarks\.\[0\]\.summary\.accuracy/
      ]
    ]
    mkdirSync(join(dir, "folder.json"))
    cases.push([join(dir, "folder.json"), "unreadable", /folder\.json: cannot read it \(EISDIR\)/])
    for (const [path, reason, message] of cases) {
      const sync = readEvalResults(path)
      const async = await loadEvalResults(path)
      expect(left(sync), path).toEqual(left(async))
      expect(left(async).reason, path).toBe(reason)
      expect(left(async).message, path).toMatch(message)
    }
    const good = await loadEvalResults(join(dir, "good.json"))
    expect(Either.isRight(good) && good.right.benchmarks[0]!.summary.accuracy).toBe(0.5)
  })
})
