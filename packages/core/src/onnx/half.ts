import { Float16Array, getFloat16 } from "@petamoriken/float16"

/**
 * float16 tensors as onnxruntime-node hands them over: raw IEEE 754 half-precision bits in a
 * Uint16Array (Node 20 has no Float16Array). The conversions go through @petamoriken/float16;
 * reading logits every decode step goes through a 65,536-entry table built from it once, since
 * the library's array view is too slow for a vocabulary-sized row per token.
 */
let table: Float32Array | undefined
/** The float32 value of every float16 bit pattern. */
export const halfTable = (): Float32Array => {
  if (table !== undefined) return table
  const t = new Float32Array(65536)
  const view = new DataView(new ArrayBuffer(2))
  for (let bits = 0; bits < 65536; bits++) {
    view.setUint16(0, bits, true)
    t[bits] = getFloat16(view, 0, true)
  }
  return (table = t)
}

/** float16 bits to float32 values. */
export const halfToFloat32 = (bits: Uint16Array): Float32Array => {
  const t = halfTable()
  const out = new Float32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!
  return out
}

/** float32 values to float16 bits, rounded to nearest even (out-of-range values become ±Infinity). */
export const float32ToHalf = (values: ArrayLike<number>): Uint16Array =>
  // Built from a typed array at once: element-wise writes go through the library's proxy (20x slower).
  new Uint16Array(new Float16Array(values instanceof Float32Array ? values : Float32Array.from(values)).buffer)

/** A tensor's float data as float32, whether it holds float32 values or float16 bits. */
export const floatData = (tensor: { readonly type: string; readonly data: unknown }): Float32Array =>
  tensor.type === "float16" ? halfToFloat32(tensor.data as Uint16Array) : (tensor.data as Float32Array)
