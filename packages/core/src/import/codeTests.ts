import { inflateSync } from "node:zlib"
import type { TestCase } from "../schema/problem.js"

/** LiveCodeBench's private tests: a JSON string, or base64 of zlib of a pickled JSON string. */
export const decodeLcbTests = (value: unknown): Array<TestCase> => {
  if (typeof value !== "string" || value.trim() === "") return []
  const t = value.trim()
  if (t.startsWith("[")) return JSON.parse(t) as Array<TestCase>
  const raw = inflateSync(Buffer.from(t, "base64"))
  return JSON.parse(unpickleString(raw)) as Array<TestCase>
}

/** Reads the one str object of a pickle (protocols 2-5), which is all LiveCodeBench stores. */
export const unpickleString = (buf: Buffer): string => {
  let i = 0
  while (i < buf.length) {
    const op = buf[i]!
    if (op === 0x80)
      i += 2 // PROTO n
    else if (op === 0x95)
      i += 9 // FRAME size
    else if (op === 0x8c)
      return buf.subarray(i + 2, i + 2 + buf[i + 1]!).toString("utf8") // SHORT_BINUNICODE
    else if (op === 0x58)
      return buf.subarray(i + 5, i + 5 + buf.readUInt32LE(i + 1)).toString("utf8") // BINUNICODE
    else if (op === 0x8d)
      return buf.subarray(i + 9, i + 9 + Number(buf.readBigUInt64LE(i + 1))).toString("utf8") // BINUNICODE8
    else throw new Error(`unsupported pickle opcode 0x${op.toString(16)}`)
  }
  throw new Error("no string in the pickle")
}
