import type * as Ort from "onnxruntime-node"

export type OrtModule = typeof Ort

let loaded: Promise<OrtModule> | undefined

/**
 * onnxruntime-node, loaded on first use: its native library costs every process that imports the
 * core about 80 ms, and only commands that open a local model need it.
 */
export const loadOrt = (): Promise<OrtModule> => (loaded ??= import("onnxruntime-node"))
