import * as Data from "effect/Data"
import * as fs from "node:fs"
import * as path from "node:path"
import { float32ToHalf, halfToFloat32 } from "./half.js"

/**
 * Safetensors, as Hugging Face writes checkpoints: an 8-byte little-endian header length, a JSON
 * header naming each tensor's dtype, shape and byte range, then the raw little-endian tensors. A
 * checkpoint is one `model.safetensors` or shards listed by `model.safetensors.index.json`.
 * Tensors are read one at a time from their byte range (never a whole shard at once), and turned
 * into float32 from BF16, F16 or F32. Every error names the file, and the tensor when there is one.
 */

export type SafetensorsDtype = "F32" | "F16" | "BF16"

export interface TensorEntry {
  readonly name: string
  readonly dtype: string
  readonly shape: ReadonlyArray<number>
  readonly file: string
  /** Absolute byte offsets of the tensor's data in `file`. */
  readonly begin: number
  readonly end: number
}

/** A checkpoint that cannot be read or converted; the message names the file, and the tensor when there is one. */
export class CheckpointError extends Data.TaggedError("CheckpointError")<{ readonly message: string }> {}

const BYTES: Readonly<Record<string, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I8: 1,
  U8: 1,
  BOOL: 1
}

/** The tensors one safetensors file holds, from its header (the data is not read). */
export const readSafetensorsHeader = (file: string): Array<TensorEntry> => {
  const fd = fs.openSync(file, "r")
  try {
    const size = fs.fstatSync(fd).size
    const lengthBytes = Buffer.alloc(8)
    if (size < 8 || fs.readSync(fd, lengthBytes, 0, 8, 0) < 8)
      throw new CheckpointError({ message: `${file}: not a safetensors file (shorter than its 8-byte header length)` })
    const headerLength = Number(lengthBytes.readBigUInt64LE(0))
    if (headerLength > size - 8 || headerLength > 100 * 2 ** 20)
      throw new CheckpointError({
        message: `${file}: broken safetensors file: its header says ${headerLength} bytes, the file has ${size - 8} after the length`
      })
    const headerBytes = Buffer.alloc(headerLength)
    fs.readSync(fd, headerBytes, 0, headerLength, 8)
    let header: Record<string, unknown>
    try {
      header = JSON.parse(headerBytes.toString("utf8")) as Record<string, unknown>
    } catch (e) {
      throw new CheckpointError({ message: `${file}: broken safetensors header: ${(e as Error).message}` })
    }
    const dataStart = 8 + headerLength
    const entries: Array<TensorEntry> = []
    for (const [name, value] of Object.entries(header)) {
      if (name === "__metadata__") continue
      const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
      const offsets = v.data_offsets
      if (
        typeof v.dtype !== "string" ||
        !Array.isArray(v.shape) ||
        !Array.isArray(offsets) ||
        offsets.length !== 2 ||
        typeof offsets[0] !== "number" ||
        typeof offsets[1] !== "number"
      )
        throw new CheckpointError({
          message: `${file}: tensor ${name}: its header entry lacks dtype, shape or data_offsets`
        })
      const shape = v.shape as Array<number>
      const begin = dataStart + offsets[0]
      const end = dataStart + offsets[1]
      const count = shape.reduce((a, b) => a * b, 1)
      const width = BYTES[v.dtype]
      if (end > size || begin > end)
        throw new CheckpointError({
          message: `${file}: tensor ${name}: its data (bytes ${offsets[0]}-${offsets[1]}) runs past the end of the file (a broken or partly copied shard)`
        })
      if (width !== undefined && count * width !== end - begin)
        throw new CheckpointError({
          message: `${file}: tensor ${name}: shape [${shape.join(", ")}] of ${v.dtype} needs ${count * width} bytes, the file gives ${end - begin}`
        })
      entries.push({ name, dtype: v.dtype, shape, file, begin, end })
    }
    return entries
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * A checkpoint folder's tensors by name: `model.safetensors`, or the shards its
 * `model.safetensors.index.json` lists (each shard's header read, none of its data).
 */
export const openCheckpointTensors = (dir: string): Map<string, TensorEntry> => {
  const single = path.join(dir, "model.safetensors")
  const index = path.join(dir, "model.safetensors.index.json")
  const tensors = new Map<string, TensorEntry>()
  if (fs.existsSync(index)) {
    let weightMap: Record<string, string>
    try {
      weightMap =
        (JSON.parse(fs.readFileSync(index, "utf8")) as { weight_map?: Record<string, string> }).weight_map ?? {}
    } catch (e) {
      throw new CheckpointError({ message: `${index}: not JSON: ${(e as Error).message}` })
    }
    const shards = [...new Set(Object.values(weightMap))]
    for (const shard of shards) {
      const file = path.join(dir, shard)
      if (!fs.existsSync(file))
        throw new CheckpointError({ message: `${file}: the index lists this shard, and it is missing` })
      for (const entry of readSafetensorsHeader(file)) tensors.set(entry.name, entry)
    }
    for (const [name, shard] of Object.entries(weightMap))
      if (!tensors.has(name))
        throw new CheckpointError({
          message: `${path.join(dir, shard)}: tensor ${name} is in the index and not in the shard`
        })
    return tensors
  }
  if (fs.existsSync(single)) {
    for (const entry of readSafetensorsHeader(single)) tensors.set(entry.name, entry)
    return tensors
  }
  throw new CheckpointError({ message: `${dir}: no model.safetensors nor model.safetensors.index.json` })
}

/** One tensor's values as float32, read from its byte range. */
export const readTensorFloat32 = (entry: TensorEntry): Float32Array => {
  // Read straight into a fresh (so 8-byte aligned) buffer that the typed views below share.
  const bytes = new Uint8Array(entry.end - entry.begin)
  const fd = fs.openSync(entry.file, "r")
  try {
    let at = 0
    while (at < bytes.length) {
      const n = fs.readSync(fd, bytes, at, bytes.length - at, entry.begin + at)
      if (n === 0)
        throw new CheckpointError({ message: `${entry.file}: tensor ${entry.name}: the file ended while reading it` })
      at += n
    }
  } finally {
    fs.closeSync(fd)
  }
  const count = entry.shape.reduce((a, b) => a * b, 1)
  switch (entry.dtype) {
    case "F32":
      return new Float32Array(bytes.buffer, 0, count)
    case "F16":
      return halfToFloat32(new Uint16Array(bytes.buffer, 0, count))
    case "BF16": {
      // A bfloat16 is the high half of a float32: write it there (little-endian), the low half zero.
      const halves = new Uint16Array(bytes.buffer, 0, count)
      const out = new Uint16Array(count * 2)
      for (let i = 0; i < count; i++) out[2 * i + 1] = halves[i]!
      return new Float32Array(out.buffer)
    }
    default:
      throw new CheckpointError({
        message: `${entry.file}: tensor ${entry.name}: dtype ${entry.dtype} is not a float type fastcot converts (F32, F16, BF16)`
      })
  }
}

/** Float32 values as bfloat16 bits, rounded to nearest even (as PyTorch rounds). */
export const float32ToBf16 = (values: Float32Array): Uint16Array => {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)
  const out = new Uint16Array(values.length)
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16
  }
  return out
}

/** Writes tensors as one safetensors file (tests and fixtures: the layout Hugging Face writes). */
export const writeSafetensors = (
  file: string,
  tensors: ReadonlyArray<{
    readonly name: string
    readonly shape: ReadonlyArray<number>
    readonly values: Float32Array
  }>,
  dtype: SafetensorsDtype,
  metadata: Readonly<Record<string, string>> = { format: "pt" }
): void => {
  const datas = tensors.map((t) =>
    dtype === "F32"
      ? new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength)
      : new Uint8Array((dtype === "F16" ? float32ToHalf(t.values) : float32ToBf16(t.values)).buffer)
  )
  const header: Record<string, unknown> = { __metadata__: metadata }
  let offset = 0
  for (const [i, t] of tensors.entries()) {
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + datas[i]!.byteLength] }
    offset += datas[i]!.byteLength
  }
  let json = JSON.stringify(header)
  // The header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8)
  const length = Buffer.alloc(8)
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)))
  const fd = fs.openSync(file, "w")
  try {
    fs.writeSync(fd, length)
    fs.writeSync(fd, Buffer.from(json))
    for (const d of datas) fs.writeSync(fd, d)
  } finally {
    fs.closeSync(fd)
  }
}
