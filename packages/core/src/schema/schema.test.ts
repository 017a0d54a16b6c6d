import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import { contentId } from "../util/hash.js"
import { lastBoxed, splitThink } from "../util/latex.js"
import { describeParseError } from "./errors.js"
import { DropReason, Item } from "./item.js"
import { Problem } from "./problem.js"

describe("records", () => {
  it("names every wrong field when decoding untrusted input", () => {
    const result = Schema.decodeUnknownEither(Problem, { errors: "all" })({
      id: "p_0123456789abcdef",
      domain: "biology",
      question: 42,
      source: "x.jsonl:3",
      metadata: {}
    })
    expect(Either.isLeft(result)).toBe(true)
    const message = describeParseError((result as Either.Left<never, never>).left)
    expect(message).toContain("field `domain`")
    expect(message).toContain("field `question`")
  })

  it("rejects a blank question and a malformed id", () => {
    const result = Schema.decodeUnknownEither(Problem, { errors: "all" })({
      id: "p_nothex",
      domain: "math",
      question: "   ",
      source: "",
      metadata: {}
    })
    const message = describeParseError((result as Either.Left<never, never>).left)
    expect(message).toContain("field `id`")
    expect(message).toContain("must not be empty")
  })

  it("names nested fields of an item's rounds", () => {
    const result = Schema.decodeUnknownEither(Item)({
      id: "i_0123456789abcdef",
      problemId: "p_0123456789abcdef",
      stage: "align",
      fate: "kept",
      rounds: [
        {
          index: 0,
          action: "judge",
          calls: [],
          startedAt: "t",
          finishedAt: "t",
          verdict: { level: "trivial", raw: "x" }
        }
      ],
      createdAt: "t",
      updatedAt: "t"
    })
    expect(describeParseError((result as Either.Left<never, never>).left)).toContain("rounds.[0].verdict.level")
  })

  it("a drop reason's code is one of the codes any version has written, and nothing else", () => {
    const decode = Schema.decodeUnknownEither(DropReason)
    for (const code of ["answer-mismatch", "tests-failed", "near-duplicate", "max-rounds", "judge-error"])
      expect(Either.isRight(decode({ code, detail: "" }))).toBe(true)
    expect(Either.isLeft(decode({ code: "answer mismatch", detail: "" }))).toBe(true)
  })

  it("gives equal content the same id whatever the key order", () => {
    expect(contentId("p_", { a: 1, b: [1, 2], c: { x: 1, y: 2 } })).toBe(
      contentId("p_", { c: { y: 2, x: 1 }, b: [1, 2], a: 1 })
    )
    expect(contentId("p_", { a: 1 })).not.toBe(contentId("p_", { a: 2 }))
    expect(contentId("p_", { a: 1 })).toMatch(/^p_[0-9a-f]{16}$/)
  })
})

describe("latex helpers", () => {
  it("finds the last boxed answer with nested braces", () => {
    expect(lastBoxed("first \\boxed{1} then \\boxed{\\frac{a}{b+{c}}}.")).toBe("\\frac{a}{b+{c}}")
    expect(lastBoxed("\\boxed 7 is it")).toBe("7")
    expect(lastBoxed("no box here")).toBeUndefined()
    expect(lastBoxed("\\boxed{unclosed")).toBeUndefined()
    expect(lastBoxed("\\fbox{B}")).toBe("B")
  })

  it("splits an R1-style reply at </think>", () => {
    expect(splitThink("<think>\nlong thought\n</think>\n\nThe answer is 4.")).toEqual({
      think: "long thought",
      rest: "The answer is 4."
    })
    expect(splitThink("thought without opening tag</think>done")).toEqual({
      think: "thought without opening tag",
      rest: "done"
    })
    expect(splitThink("plain")).toEqual({ rest: "plain" })
  })
})

describe("parse error messages", () => {
  it("say what an optional field should be, without its 'Expected undefined' half", () => {
    const S = Schema.Struct({ heads: Schema.optional(Schema.Number), name: Schema.String })
    const result = Schema.decodeUnknownEither(S)({ heads: "two", name: 3 })
    const message = describeParseError((result as Either.Left<never, never>).left)
    expect(message).toContain('field `heads`: Expected number, actual "two"')
    expect(message).not.toContain("Expected undefined")
  })

  it("list a union's members once for the field, not once per member", () => {
    const S = Schema.Struct({
      role: Schema.Literal("system", "user", "assistant"),
      n: Schema.Union(Schema.Number, Schema.Boolean)
    })
    const result = Schema.decodeUnknownEither(S, { errors: "all" })({ role: "usr", n: "x" })
    expect(describeParseError((result as Either.Left<never, never>).left)).toBe(
      'field `role`: Expected one of "system", "user", "assistant", actual "usr"; field `n`: Expected one of number, boolean, actual "x"'
    )
  })
})
