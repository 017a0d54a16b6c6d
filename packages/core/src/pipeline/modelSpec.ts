import * as Either from "effect/Either"

export type ModelSpec =
  | { readonly kind: "openai"; readonly model: string; readonly baseUrl: string }
  | { readonly kind: "onnx"; readonly path: string; readonly variant?: string | undefined }

/**
 * Parses `openai:MODEL@BASE_URL` (an OpenAI-compatible endpoint, e.g.
 * `openai:deepseek-chat@https://api.deepseek.com/v1`) or `onnx:PATH[#variant]` (a local model folder).
 */
export const parseModelSpec = (spec: string): Either.Either<ModelSpec, string> => {
  const openai = /^openai:(.+?)@(https?:\/\/\S+)$/.exec(spec.trim())
  if (openai !== null) {
    try {
      new URL(openai[2]!)
    } catch {
      return Either.left(`\`${spec}\`: the base URL is not a valid URL`)
    }
    return Either.right({ kind: "openai", model: openai[1]!, baseUrl: openai[2]! })
  }
  const onnx = /^onnx:([^#]+)(?:#(.+))?$/.exec(spec.trim())
  if (onnx !== null) return Either.right({ kind: "onnx", path: onnx[1]!, variant: onnx[2] })
  return Either.left(`\`${spec}\` is not a model spec: use openai:MODEL@BASE_URL or onnx:PATH[#variant]`)
}
