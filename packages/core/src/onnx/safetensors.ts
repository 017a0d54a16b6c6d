import * as Data from "effect/Data"
import * as fs from "node:fs"
import * as path from "node:path"
import { float32ToHalf, halfTable } from "./half.js"
import { writeAllSync } from "../util/writeAll.js"

/**
 * Safetensors, as Hugging Face writes checkpoints: an 8-byte little-endian header length, a JSON
 * header naming each tensor's dtype, shape and byte range, then the raw little-endian tensors. A
 * checkpoint is one `model.safetensors` or shards listed by `model.safetensors.index.json`.
 * Tensors are read one at a time from their byte range (never a whole shard at once), and turned
 * into float32 from BF16, F16 or F32. Every error names the file, and the tensor when there is one.
 */

export type SafetensorsDtype = "F32" | "F16" | "BF16"

/** Whether fastcot reads a tensor of `dtype` as floats: the dtypes it converts. */
export const isFloatDtype = (dtype: string): dtype is SafetensorsDtype =>
  dtype === "F32" || dtype === "F16" || dtype === "BF16"

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

/** A folder of safetensors weights (a trainer's checkpoint: `model.safetensors` or its shards' index). */
export const isCheckpointFolder = (dir: string): boolean =>
  fs.existsSync(path.join(dir, "model.safetensors")) || fs.existsSync(path.join(dir, "model.safetensors.index.json"))

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
  const pickled = ["pytorch_model.bin.index.json", "pytorch_model.bin"].find((f) => fs.existsSync(path.join(dir, f)))
  if (pickled !== undefined)
    throw new CheckpointError({
      message:
        `${path.join(dir, pickled)}: the weights are PyTorch pickles, which fastcot does not read (loading a pickle can run code): ` +
        `save the model as safetensors (save_safetensors: true, the trainers' default; or model.save_pretrained(DIR, safe_serialization=True)) and convert that`
    })
  throw new CheckpointError({ message: `${dir}: no model.safetensors nor model.safetensors.index.json` })
}

/** What a half-width tensor is read through, a piece at a time (so its bytes are never all held). */
const PIECE_BYTES = 32 * 2 ** 20

let lastPiece: WeakRef<Uint8Array> | undefined
/**
 * The array half-width tensors are read through: the last one while the garbage collector keeps
 * it (tensor after tensor, a fresh one would cost a page fault per 4 KiB, docs/benchmarks.md).
 */
const readingPiece = (): Uint8Array => {
  const kept = lastPiece?.deref()
  if (kept !== undefined) return kept
  const piece = new Uint8Array(PIECE_BYTES)
  lastPiece = new WeakRef(piece)
  return piece
}

/**
 * One tensor's values as float32, read from its byte range. A float32 tensor is read straight
 * into the array returned; a float16 or bfloat16 one a piece at a time through a 32 MiB buffer
 * and widened into it, so that reading holds little more than the float32 result.
 *
 * With `into` (at least as long as the tensor), the values are written at its start and that
 * prefix is returned: a caller that reads many tensors through one array it keeps touches memory
 * the process already holds, where a fresh array of a large tensor costs a page fault per 4 KiB
 * (about a third of a 7B conversion's time on this project's machines, docs/benchmarks.md).
 */
export const readTensorFloat32 = (entry: TensorEntry, into?: Float32Array): Float32Array => {
  const count = entry.shape.reduce((a, b) => a * b, 1)
  if (!isFloatDtype(entry.dtype))
    throw new CheckpointError({
      message: `${entry.file}: tensor ${entry.name}: dtype ${entry.dtype} is not a float type fastcot converts (F32, F16, BF16)`
    })
  if (into !== undefined && into.length < count)
    throw new RangeError(`readTensorFloat32: ${entry.name} has ${count} values, the array given holds ${into.length}`)
  const out = into === undefined ? new Float32Array(count) : into.subarray(0, count)
  const ended = readFloat32Range(fs, entry.file, entry.begin, entry.dtype, count, out, readingPiece(), halfTable)
  if (ended)
    throw new CheckpointError({ message: `${entry.file}: tensor ${entry.name}: the file ended while reading it` })
  return out
}

/**
 * A 2-D tensor's rows in float32, as many at a time as `buffer` holds: each piece is a view of
 * `buffer`, valid until the next is asked for (so that a tensor of any size is read through one
 * array). A file that ends too soon is a `CheckpointError` naming it and the tensor.
 */
export function* readTensorRowsInPieces(entry: TensorEntry, buffer: Float32Array): Generator<Float32Array> {
  const [rows = 0, width = 1] = entry.shape
  const bytesPerValue = entry.dtype === "F32" ? 4 : 2
  const rowsAtOnce = Math.max(1, Math.floor(buffer.length / width))
  if (rowsAtOnce * width > buffer.length)
    throw new RangeError(`readTensorRowsInPieces: a row of ${entry.name} is longer than the array given`)
  for (let row = 0; row < rows; row += rowsAtOnce) {
    const n = Math.min(rowsAtOnce, rows - row)
    const into = buffer.subarray(0, n * width)
    const begin = entry.begin + row * width * bytesPerValue
    if (readFloat32Range(fs, entry.file, begin, entry.dtype, n * width, into, readingPiece(), halfTable))
      throw new CheckpointError({ message: `${entry.file}: tensor ${entry.name}: the file ended while reading it` })
    yield into
  }
}

/**
 * Reads `count` values of `dtype` (F32, BF16, or F16 through `halves`' table) from byte `begin`
 * of `file` into `into` as float32, half-width ones through `piece` (any length of at least 2
 * bytes; kept by callers that read often, as fresh memory costs a page fault per 4 KiB). Returns
 * true when the file ended first. It names nothing outside itself (modules come as arguments), so
 * helper threads run it from its own source (`startQ4Threads`).
 */
export function readFloat32Range(
  fsModule: Pick<typeof fs, "openSync" | "readSync" | "closeSync">,
  file: string,
  begin: number,
  dtype: string,
  count: number,
  into: Float32Array,
  piece: Uint8Array,
  halves: () => Float32Array
): boolean {
  const fd = fsModule.openSync(file, "r")
  /** Reads `length` bytes at `offset` of the range into `bytes`; false when the file ended. */
  const readInto = (bytes: Uint8Array, offset: number, length: number) => {
    for (let at = 0; at < length;) {
      // One read takes at most 2 GiB - 1 (a 7B model's embeddings in float32 are 2.2 GB).
      const n = fsModule.readSync(fd, bytes, at, Math.min(length - at, 1 << 30), begin + offset + at)
      if (n === 0) return false
      at += n
    }
    return true
  }
  try {
    if (dtype === "F32") return !readInto(new Uint8Array(into.buffer, into.byteOffset, count * 4), 0, count * 4)
    const half = new Uint16Array(piece.buffer, piece.byteOffset, piece.byteLength >> 1)
    const bits = new Uint32Array(into.buffer, into.byteOffset, count)
    const table = dtype === "F16" ? halves() : undefined
    for (let done = 0; done < count;) {
      const n = Math.min(half.length, count - done)
      if (!readInto(piece, done * 2, n * 2)) return true
      // A bfloat16 is the high half of a float32; a float16 is looked up.
      if (table === undefined) for (let i = 0; i < n; i++) bits[done + i] = half[i]! << 16
      else for (let i = 0; i < n; i++) into[done + i] = table[half[i]!]!
      done += n
    }
    return false
  } finally {
    fsModule.closeSync(fd)
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

/**
 * Writes tensors as one safetensors file (tests and fixtures: the layout Hugging Face writes).
 * A tensor's values may be given as a function: they are then made when the tensor is written,
 * and let go after, so that a checkpoint larger than memory can be written.
 */
export const writeSafetensors = (
  file: string,
  tensors: ReadonlyArray<{
    readonly name: string
    readonly shape: ReadonlyArray<number>
    readonly values: Float32Array | (() => Float32Array)
  }>,
  dtype: SafetensorsDtype,
  metadata: Readonly<Record<string, string>> = { format: "pt" }
): void => {
  const width = dtype === "F32" ? 4 : 2
  const header: Record<string, unknown> = { __metadata__: metadata }
  let offset = 0
  for (const t of tensors) {
    const bytes = t.shape.reduce((n, d) => n * d, 1) * width
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] }
    offset += bytes
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
    for (const t of tensors) {
      const values = typeof t.values === "function" ? t.values() : t.values
      const data =
        dtype === "F32"
          ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
          : new Uint8Array((dtype === "F16" ? float32ToHalf(values) : float32ToBf16(values)).buffer)
      writeAllSync(fd, data)
    }
  } finally {
    fs.closeSync(fd)
  }
}
