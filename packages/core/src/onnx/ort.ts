import type * as Ort from "onnxruntime-node"

export type OrtModule = typeof Ort

let loaded: Promise<OrtModule> | undefined

/**
 * onnxruntime-node, loaded on first use: loading its native library slows the start of every
 * process that imports the core, and only commands that open a local model need it.
 */
export const loadOrt = (): Promise<OrtModule> => (loaded ??= import("onnxruntime-node"))
