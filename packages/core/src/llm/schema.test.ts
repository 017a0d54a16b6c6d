import * as Arbitrary from "effect/Arbitrary"
import * as fc from "effect/FastCheck"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import {
  ChatRequest,
  isPlainChatRequest,
  isPlainWireChunk,
  isPlainWireCompletion,
  WireChunk,
  WireCompletion
} from "./schema.js"

// The allocation-free checks on the hot path must never accept what the Schemas reject, must
// accept what the Schemas accept in the shapes that JSON and object literals produce, and must
// leave the constructed value exactly as Schema validation would.

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [k: string]: Json }

/** The value with the node at `path` (chosen by numbers) replaced by `replacement`. */
const mutate = (value: Json, picks: ReadonlyArray<number>, replacement: Json): Json => {
  if (picks.length === 0 || value === null || typeof value !== "object") return replacement
  const [pick, ...rest] = picks as [number, ...Array<number>]
  if (Array.isArray(value)) {
    if (value.length === 0) return pick % 2 === 0 ? [replacement] : replacement
    const i = pick % (value.length + 1)
    return i === value.length ? replacement : value.map((v, k) => (k === i ? mutate(v, rest, replacement) : v))
  }
  const obj = value as { readonly [k: string]: Json }
  const keys = Object.keys(obj)
  const i = pick % (keys.length + 2)
  if (i === keys.length) return { ...obj, extra: replacement }
  if (i === keys.length + 1) return replacement
  const key = keys[i]!
  return { ...obj, [key]: mutate(obj[key]!, rest, replacement) }
}

const asJson = (v: unknown): Json => JSON.parse(JSON.stringify(v)) as Json

/** Replacements: any JSON, and numbers near the bounds the Schemas set (0, 1, 2). */
const replacements = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.double({ min: -3, max: 3, noNaN: true }),
  fc.integer({ min: -3, max: 3 })
)

const holdsTo = <A, I>(schema: Schema.Schema<A, I>, check: (u: unknown) => boolean, name: string) => {
  const accepts = Schema.is(schema)
  const valid = Arbitrary.make(schema).map(asJson)
  it(`${name}: accepts every valid value that JSON can carry`, () => {
    fc.assert(
      fc.property(valid, (v) => {
        // JSON can turn a valid number into null (NaN, Infinity); what is still valid must pass.
        if (accepts(v)) expect(check(v)).toBe(true)
        else expect(check(v)).toBe(false)
      }),
      { numRuns: 2000, seed: 11 }
    )
  })
  it(`${name}: never accepts what the Schema rejects`, () => {
    let rejected = 0
    fc.assert(
      fc.property(valid, fc.array(fc.nat(), { maxLength: 6 }), replacements, (v, picks, replacement) => {
        const m = mutate(v, picks, replacement as Json)
        if (check(m)) expect(accepts(m)).toBe(true)
        if (!accepts(m)) rejected++
      }),
      { numRuns: 5000, seed: 12 }
    )
    // The mutations reach invalid values often enough for this to mean something.
    expect(rejected).toBeGreaterThan(1000)
  })
}

describe("allocation-free checks against their Schemas (property tests)", () => {
  const RequestFields = Schema.Struct(ChatRequest.fields)
  holdsTo(RequestFields, isPlainChatRequest, "ChatRequest")
  holdsTo(WireCompletion, isPlainWireCompletion, "WireCompletion")
  holdsTo(WireChunk, isPlainWireChunk, "WireChunk")

  it("ChatRequest: a request built on the fast path equals the Schema-validated one", () => {
    const validated = (props: unknown) => ParseResult.validateSync(RequestFields)(props)
    fc.assert(
      fc.property(
        Arbitrary.make(RequestFields).map(asJson),
        fc.array(fc.nat(), { maxLength: 4 }),
        replacements,
        (v, picks, replacement) => {
          for (const props of [v, mutate(v, picks, replacement as Json)]) {
            let expected: unknown
            try {
              expected = { ...validated(props) }
            } catch {
              expected = "rejected"
            }
            let actual: unknown
            try {
              actual = { ...new ChatRequest(props as typeof RequestFields.Type) }
            } catch {
              actual = "rejected"
            }
            expect(actual).toEqual(expected)
          }
        }
      ),
      { numRuns: 3000, seed: 13 }
    )
  })

  it("ChatRequest: a bad field still fails with the Schema's message naming it", () => {
    expect(() => new ChatRequest({ messages: [{ role: "user", content: "hi" }], temperature: 3 })).toThrow(
      /temperature/
    )
    expect(() => new ChatRequest({ messages: [] })).toThrow(/messages/)
    // Other keys are dropped, as the Schema drops them.
    const r = new ChatRequest({ messages: [{ role: "user", content: "hi", name: "x" } as never], extra: 1 } as never)
    expect({ ...r }).toEqual({ messages: [{ role: "user", content: "hi" }] })
  })
})
