/**
 * A small byte-level BPE tokenizer in the Qwen2 layout (same pre-tokenizer, decoder and special
 * tokens), trained on a short built-in text. It exists so that the project can build test models
 * offline; real models bring their own tokenizer.json.
 */

/** Qwen2's pre-tokenizer pattern (Oniguruma syntax, as tokenizer.json stores it). */
export const QWEN2_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/** The same split for training here, in JavaScript syntax. */
const TRAIN_SPLIT =
  /'s|'t|'re|'ve|'m|'ll|'d|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu

export const SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const

/** ChatML, as Qwen2.5 instruct models use it (default system prompt when none is given). */
export const CHATML_TEMPLATE =
  "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"

const CORPUS = `The answer is \\boxed{42}. Let x be a real number such that 2x + 3 = 11. Then 2x = 8, so x = 4.
Question: What is the sum of the first 10 positive integers? Answer: 55.
We compute the derivative, then set it to zero. The probability is 1/6 because the die is fair.
Therefore the final answer is \\boxed{\\frac{1}{2}}. Think step by step, and put the answer in a box.
def solve(n):\n    return sum(range(n + 1))\nprint(solve(int(input())))
The user asks a question and the assistant answers it. First, note that the triangle is right-angled.
Hence the area is 6 and the perimeter is 12. So the number of ways is 120.`

/** GPT-2's reversible byte → printable character map. */
export const byteToUnicode = (): Array<string> => {
  const keep: Array<number> = []
  for (let b = 33; b <= 126; b++) keep.push(b)
  for (let b = 161; b <= 172; b++) keep.push(b)
  for (let b = 174; b <= 255; b++) keep.push(b)
  const map: Array<string> = new Array<string>(256)
  let extra = 0
  for (let b = 0; b < 256; b++) map[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++)
  return map
}

export interface TinyTokenizerFiles {
  readonly tokenizerJson: Record<string, unknown>
  /** Ids of <|endoftext|>, <|im_start|>, <|im_end|>. */
  readonly specialIds: Readonly<Record<(typeof SPECIAL_TOKENS)[number], number>>
  readonly vocabSize: number
}

/** Trains `merges` BPE merges on the built-in corpus and lays the result out as tokenizer.json. */
export const buildTinyTokenizer = (merges = 200): TinyTokenizerFiles => {
  const b2u = byteToUnicode()
  const encoder = new TextEncoder()
  const words = new Map<string, number>()
  for (const m of CORPUS.matchAll(TRAIN_SPLIT)) {
    const w = Array.from(encoder.encode(m[0]), (b) => b2u[b]!).join("")
    words.set(w, (words.get(w) ?? 0) + 1)
  }
  const vocab = new Map<string, number>()
  for (const b of [...b2u].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!)) vocab.set(b, vocab.size)
  const seqs = [...words].map(([w, count]) => ({ parts: Array.from(w), count }))
  const mergeList: Array<string> = []
  for (let step = 0; step < merges; step++) {
    const pairs = new Map<string, number>()
    for (const { parts, count } of seqs) {
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = `${parts[i]} ${parts[i + 1]}`
        pairs.set(key, (pairs.get(key) ?? 0) + count)
      }
    }
    let best: string | undefined
    let bestCount = 1
    for (const [k, c] of pairs)
      if (c > bestCount || (c === bestCount && best !== undefined && k < best)) [best, bestCount] = [k, c]
    if (best === undefined) break
    const [a, b] = best.split(" ") as [string, string]
    mergeList.push(best)
    vocab.set(a + b, vocab.size)
    for (const s of seqs) {
      const out: Array<string> = []
      for (let i = 0; i < s.parts.length; i++) {
        if (i + 1 < s.parts.length && s.parts[i] === a && s.parts[i + 1] === b) {
          out.push(a + b)
          i++
        } else out.push(s.parts[i]!)
      }
      s.parts = out
    }
  }
  const specialIds = {} as Record<(typeof SPECIAL_TOKENS)[number], number>
  const added = SPECIAL_TOKENS.map((content) => {
    const id = vocab.size + Object.keys(specialIds).length
    specialIds[content] = id
    return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }
  })
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false }
  return {
    specialIds,
    vocabSize: vocab.size + added.length,
    tokenizerJson: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: { type: "NFC" },
      pre_tokenizer: {
        type: "Sequence",
        pretokenizers: [
          { type: "Split", pattern: { Regex: QWEN2_SPLIT_PATTERN }, behavior: "Isolated", invert: false },
          byteLevel
        ]
      },
      post_processor: byteLevel,
      decoder: byteLevel,
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: "",
        end_of_word_suffix: "",
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab: Object.fromEntries(vocab),
        merges: mergeList
      }
    }
  }
}

/** tokenizer_config.json for a Qwen2-style tokenizer with the given specials and template. */
export const tokenizerConfig = (
  specialIds: Readonly<Record<string, number>>,
  chatTemplate: string,
  maxLength: number
): Record<string, unknown> => ({
  add_prefix_space: false,
  added_tokens_decoder: Object.fromEntries(
    Object.entries(specialIds).map(([content, id]) => [
      String(id),
      { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true }
    ])
  ),
  additional_special_tokens: ["<|im_start|>", "<|im_end|>"],
  bos_token: null,
  chat_template: chatTemplate,
  clean_up_tokenization_spaces: false,
  eos_token: "<|im_end|>",
  errors: "replace",
  model_max_length: maxLength,
  pad_token: "<|endoftext|>",
  split_special_tokens: false,
  tokenizer_class: "Qwen2Tokenizer",
  unk_token: null
})
