import * as Schema from "effect/Schema"
import type { LocalEngine } from "./engine.js"
import type { GenerateResult } from "./generation.js"
import { samplingFor } from "./onnxProvider.js"
import type { TokenLogprob } from "./tokenLogprobs.js"

/**
 * `POST /v1/completions` as vLLM serves it, for a local model: the prompt as text or as token
 * ids (no chat template), and `logprobs` (the top-k at each generated token) in the legacy
 * completions format; and the chat format of log-probabilities (`logprobs: true`,
 * `top_logprobs`). With `echo`, the prompt comes back before the completion, and with
 * `logprobs` each prompt token's log-probability too (the first's is null), so that
 * `max_tokens: 0, echo: true, logprobs: K` scores a text by log-likelihood, as lm-evaluation-harness
 * asks vLLM to. Log-probabilities are of the model's own distribution.
 */

const TokenIds = Schema.Array(Schema.Int.pipe(Schema.nonNegative())).pipe(Schema.minItems(1))

/** The part of an OpenAI completions body this server honours. */
export const CompletionsRequest = Schema.Struct({
  model: Schema.optional(Schema.String),
  prompt: Schema.Union(Schema.String, TokenIds, Schema.Tuple(Schema.String), Schema.Tuple(TokenIds)).annotations({
    description: "text, or token ids (one prompt a request)"
  }),
  /** 0 only with `echo` (the prompt scored, nothing generated). */
  max_tokens: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.nonNegative()))),
  temperature: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 2)))),
  top_p: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 1)))),
  seed: Schema.optional(Schema.NullOr(Schema.Int)),
  stop: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Array(Schema.String)))),
  n: Schema.optional(Schema.NullOr(Schema.Literal(1))),
  stream: Schema.optional(Schema.NullOr(Schema.Literal(false))),
  logprobs: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.between(0, 20)))),
  echo: Schema.optional(Schema.NullOr(Schema.Boolean))
}).pipe(
  Schema.filter((r) =>
    r.max_tokens === 0 && r.echo !== true ? "`max_tokens` may be 0 only with `echo: true`" : undefined
  )
)
export type CompletionsRequest = typeof CompletionsRequest.Type

/** Runs a completions request on the engine. */
export const complete = (
  engine: LocalEngine,
  body: CompletionsRequest,
  signal: AbortSignal
): Promise<GenerateResult & { readonly promptIds: ReadonlyArray<number> }> => {
  const model = engine.model
  const first: string | ReadonlyArray<number> | number = Array.isArray(body.prompt) ? body.prompt[0]! : body.prompt
  const promptIds =
    typeof first === "string"
      ? model.tokenizer.encode(first)
      : typeof first === "number"
        ? (body.prompt as ReadonlyArray<number>)
        : first
  const stop =
    body.stop === undefined || body.stop === null ? undefined : typeof body.stop === "string" ? [body.stop] : body.stop
  return engine
    .submit({
      promptIds,
      // OpenAI's default for completions.
      maxNewTokens: body.max_tokens ?? 16,
      sampling: samplingFor(model, {
        ...(body.temperature != null ? { temperature: body.temperature } : {}),
        ...(body.top_p != null ? { top_p: body.top_p } : {}),
        ...(body.seed != null ? { seed: body.seed } : {})
      }),
      stop,
      signal,
      ...(body.logprobs != null ? { logprobs: body.logprobs } : {}),
      ...(body.logprobs != null && body.echo === true ? { promptLogprobs: true } : {})
    })
    .then((r) => ({ ...r, promptIds }))
}

/**
 * The legacy completions format: tokens, their log-probabilities, the top ones, text offsets.
 * With the prompt's (`echo`), its tokens come first, the first of them with null values.
 */
export const completionsLogprobs = (
  engine: LocalEngine,
  logprobs: ReadonlyArray<TokenLogprob>,
  prompt?: { readonly ids: ReadonlyArray<number>; readonly logprobs: ReadonlyArray<TokenLogprob> }
) => {
  const text = (id: number) => engine.model.tokenizer.decode([id], false)
  const top = (l: TokenLogprob) => Object.fromEntries(l.top.map((t) => [text(t.id), t.logprob]))
  const head = prompt === undefined ? [] : [{ id: prompt.ids[0]!, logprob: null, top: null }]
  const entries = [
    ...head,
    ...(prompt?.logprobs ?? []).map((l) => ({ id: l.id, logprob: l.logprob, top: top(l) })),
    ...logprobs.map((l) => ({ id: l.id, logprob: l.logprob, top: top(l) }))
  ]
  const tokens = entries.map((e) => text(e.id))
  let offset = 0
  return {
    tokens,
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => e.top),
    text_offset: tokens.map((t) => {
      const at = offset
      offset += t.length
      return at
    })
  }
}

/** The chat format: per token its text, bytes, log-probability and the top ones. */
export const chatLogprobs = (engine: LocalEngine, logprobs: ReadonlyArray<TokenLogprob>) => {
  const entry = (id: number, logprob: number) => {
    const token = engine.model.tokenizer.decode([id], false)
    return { token, logprob, bytes: [...Buffer.from(token, "utf8")] }
  }
  return {
    content: logprobs.map((l) => ({
      ...entry(l.id, l.logprob),
      top_logprobs: l.top.map((t) => entry(t.id, t.logprob))
    }))
  }
}
