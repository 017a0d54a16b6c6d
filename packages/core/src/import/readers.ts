import { parse as parseCsv } from "csv-parse"
import { closeSync, createReadStream, openSync, readSync } from "node:fs"
import { createGunzip } from "node:zlib"
import { isGzip, openSource } from "./compressedSource.js"
import { readFile, stat } from "node:fs/promises"
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet"
import { compressors } from "hyparquet-compressors"

export type InputFormat = "jsonl" | "json" | "csv" | "parquet"

/** One row as read from a file: a parsed value, or why it could not be parsed. */
export type RawRow =
  | { readonly line: number; readonly value: unknown; readonly raw?: undefined; readonly error?: undefined }
  | { readonly line: number; readonly error: string; readonly raw: string; readonly value?: undefined }

/** Where a reader resumes: rows already read, the next line number and (for JSONL) the byte offset. */
export interface ReadPosition {
  readonly rows: number
  readonly line: number
  readonly offset: number
}

export interface RowBatch {
  readonly rows: ReadonlyArray<RawRow>
  /** The position just after this batch: commit it with the batch. */
  readonly next: ReadPosition
  /** Bytes read so far, for progress. */
  readonly bytes: number
}

export const START: ReadPosition = { rows: 0, line: 1, offset: 0 }

/** Rows longer than this are rejected rather than held in memory. */
export const MAX_ROW_BYTES = 64 * 1024 * 1024
const RAW_PREVIEW = 200

export const formatFromPath = (path: string): InputFormat | undefined => {
  const lower = path.toLowerCase().replace(/\.(gz|zst)$/, "")
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl"
  if (lower.endsWith(".json")) return "json"
  if (lower.endsWith(".csv") || lower.endsWith(".tsv")) return "csv"
  if (lower.endsWith(".parquet")) return "parquet"
  return undefined
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

const decodeJsonBytes = (bytes: Uint8Array, line: number): RawRow => {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return { line, error: "invalid UTF-8", raw: Buffer.from(bytes.subarray(0, RAW_PREVIEW)).toString("latin1") }
  }
  try {
    return { line, value: JSON.parse(text) }
  } catch (e) {
    return { line, error: `malformed JSON: ${(e as Error).message}`, raw: text.slice(0, RAW_PREVIEW) }
  }
}

const isBlank = (bytes: Uint8Array): boolean => {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0a) return false
  return true
}

/**
 * JSON Lines, streamed in 1 MiB chunks (gzip-compressed ones decompressed as they stream);
 * resumes at the committed byte offset (of the decompressed bytes).
 */
export async function* readJsonl(path: string, from: ReadPosition, batchSize: number): AsyncGenerator<RowBatch> {
  const source = openSource(path, from.offset)
  const stream = source.chunks
  let offset = from.offset
  let line = from.line
  let rows = from.rows
  let carry: Buffer = Buffer.alloc(0)
  let oversize = false
  let batch: Array<RawRow> = []
  const take = (bytes: Buffer) => {
    let body = bytes
    if (offset === 0 && line === 1 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) body = body.subarray(3)
    if (body.length > 0 && body[body.length - 1] === 0x0d) body = body.subarray(0, body.length - 1)
    if (isBlank(body)) return
    rows++
    batch.push(decodeJsonBytes(body, line))
  }
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk
    let pos = 0
    for (;;) {
      const nl = buf.indexOf(0x0a, pos)
      if (nl < 0) break
      if (oversize) {
        rows++
        batch.push({ line, error: `row longer than ${MAX_ROW_BYTES} bytes`, raw: "" })
        oversize = false
      } else {
        take(buf.subarray(pos, nl))
      }
      offset += nl - pos + 1
      pos = nl + 1
      line++
      if (batch.length >= batchSize) {
        yield { rows: batch, next: { rows, line, offset }, bytes: source.fileBytesAt(offset) }
        batch = []
      }
    }
    carry = buf.subarray(pos)
    if (carry.length > MAX_ROW_BYTES) {
      // Keep counting bytes so the resume offset stays exact, but drop the row's content.
      offset += carry.length
      carry = Buffer.alloc(0)
      oversize = true
    }
  }
  if (oversize) {
    rows++
    batch.push({ line, error: `row longer than ${MAX_ROW_BYTES} bytes`, raw: "" })
  } else if (carry.length > 0) {
    take(carry)
  }
  offset += carry.length
  if (carry.length > 0) line++
  yield { rows: batch, next: { rows, line, offset }, bytes: source.fileBytesAt(offset) }
}

/**
 * A JSON array of rows, streamed: a small scanner finds each top-level element's bytes (tracking
 * strings, escapes and nesting) so memory holds one element at a time, and knows its line number.
 * A file whose top level is an object is read whole; a single array-valued field (`data`, `rows`,
 * ...) is taken as the rows, else the object is one row.
 */
export async function* readJsonArray(path: string, from: ReadPosition, batchSize: number): AsyncGenerator<RowBatch> {
  const source = openSource(path)
  const stream = source.chunks
  let state: "start" | "between" | "element" | "end" | "object" = "start"
  let depth = 0
  let inString = false
  let escaped = false
  let line = 1
  let elementLine = 1
  let parts: Array<Buffer> = []
  let partBytes = 0
  let rows = 0
  let bytes = 0
  let batch: Array<RawRow> = []
  let first = true
  const objectParts: Array<Buffer> = []

  const finishElement = () => {
    rows++
    if (rows > from.rows) {
      const body = Buffer.concat(parts)
      batch.push(
        partBytes > MAX_ROW_BYTES
          ? { line: elementLine, error: `row longer than ${MAX_ROW_BYTES} bytes`, raw: "" }
          : decodeJsonBytes(body, elementLine)
      )
    }
    parts = []
    partBytes = 0
  }

  for await (const chunk0 of stream as AsyncIterable<Buffer>) {
    let chunk = chunk0
    bytes += chunk.length
    if (first) {
      first = false
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3)
    }
    if (state === "object") {
      objectParts.push(chunk)
      continue
    }
    let elementStart = state === "element" ? 0 : -1
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!
      if (c === 0x0a) line++
      if (state === "element") {
        if (inString) {
          if (escaped) escaped = false
          else if (c === 0x5c) escaped = true
          else if (c === 0x22) inString = false
          continue
        }
        if (c === 0x22) inString = true
        else if (c === 0x7b || c === 0x5b) depth++
        else if (c === 0x7d || c === 0x5d) {
          if (depth === 0) {
            // The array's closing bracket ends a scalar element.
            const piece = chunk.subarray(elementStart, i)
            parts.push(piece)
            partBytes += piece.length
            finishElement()
            state = "end"
            continue
          }
          depth--
        } else if (c === 0x2c && depth === 0) {
          const piece = chunk.subarray(elementStart, i)
          parts.push(piece)
          partBytes += piece.length
          finishElement()
          state = "between"
          if (batch.length >= batchSize) {
            yield {
              rows: batch,
              next: { rows, line, offset: 0 },
              bytes: source.fileBytesAt(bytes)
            }
            batch = []
          }
        }
        continue
      }
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue
      if (state === "start") {
        if (c === 0x5b) state = "between"
        else if (c === 0x7b) {
          state = "object"
          objectParts.push(chunk.subarray(i))
          break
        } else throw new Error(`line ${line}: a JSON file must hold an array of rows or an object`)
      } else if (state === "between") {
        if (c === 0x5d) state = "end"
        else if (c !== 0x2c) {
          state = "element"
          elementStart = i
          elementLine = line
          depth = 0
          inString = false
          escaped = false
          i-- // re-read this byte as the element's first
        }
      } else if (state === "end") {
        throw new Error(`line ${line}: unexpected text after the closing bracket of the array`)
      }
    }
    if (state === "element") {
      const piece = chunk.subarray(elementStart < 0 ? 0 : elementStart)
      if (partBytes <= MAX_ROW_BYTES) parts.push(Buffer.from(piece))
      partBytes += piece.length
    }
  }
  if (state === "element") throw new Error(`line ${line}: the JSON array is not closed`)
  if (state === "object") {
    const whole = Buffer.concat(objectParts)
    const parsed = decodeJsonBytes(whole, 1)
    if (parsed.error !== undefined) {
      batch.push(parsed)
    } else {
      const obj = parsed.value as Record<string, unknown>
      const arrays = Object.entries(obj).filter(
        ([, v]) => Array.isArray(v) && v.some((e) => e !== null && typeof e === "object")
      )
      const values = arrays.length === 1 ? (arrays[0]![1] as Array<unknown>) : [obj]
      for (const value of values.slice(from.rows)) batch.push({ line: 1, value })
      rows = values.length
    }
  }
  yield { rows: batch, next: { rows, line, offset: 0 }, bytes: source.fileBytesAt(bytes) }
}

/**
 * The text of a malformed CSV record for its reject: its first `lines` lines from its first byte
 * (`start`, where the last good record ended), at most `RAW_PREVIEW` characters. Empty when the
 * file cannot be read back.
 */
const recordPreview = (path: string, start: number, lines: number): string => {
  try {
    const fd = openSync(path, "r")
    try {
      const buffer = Buffer.alloc(4 * RAW_PREVIEW)
      const read = readSync(fd, buffer, 0, buffer.length, start)
      const text = buffer
        .subarray(0, read)
        .toString("utf8")
        .replace(/^[\r\n]+/, "")
      let end = -1
      for (let n = 0; n < lines; n++) {
        end = text.indexOf("\n", end + 1)
        if (end < 0) break
      }
      return (end < 0 ? text : text.slice(0, end)).replace(/\r$/, "").slice(0, RAW_PREVIEW)
    } finally {
      closeSync(fd)
    }
  } catch {
    return ""
  }
}

/** CSV (or TSV) with a header row; a JSON-looking cell (`[...]`, `{...}`) stays a string for the layout to decode. */
export async function* readCsv(path: string, from: ReadPosition, batchSize: number): AsyncGenerator<RowBatch> {
  const compressed = isGzip(path)
  const skipped: Array<RawRow> = []
  let lastRecordLine = 1
  const parser = parseCsv({
    columns: true,
    bom: true,
    info: true,
    delimiter: path.toLowerCase().replace(/\.gz$/, "").endsWith(".tsv") ? "\t" : ",",
    skip_empty_lines: true,
    skip_records_with_error: true,
    max_record_size: MAX_ROW_BYTES,
    // The line each good record ends on: a malformed record's text starts on the next.
    on_record: (record: Record<string, string>, context: { readonly lines: number }) => {
      lastRecordLine = context.lines
      return record
    }
  })
  // A malformed record may raise several errors; it is one reject, its text read back from the file.
  let lastSkipStart: number | undefined
  parser.on("skip", (err: Error & { lines?: number; bytes?: number }) => {
    const line = err.lines ?? 0
    const start = err.bytes ?? 0
    if (line < from.line || start === lastSkipStart) return
    lastSkipStart = start
    skipped.push({
      line,
      error: `malformed CSV: ${err.message}`,
      // A compressed file's offsets are not the file's: its record is not read back.
      raw: compressed ? "" : recordPreview(path, start, Math.max(1, line - lastRecordLine))
    })
  })
  // The file's own bytes (compressed ones for a gzip file), for progress against its size.
  let bytes = 0
  const source = createReadStream(path, { highWaterMark: 1 << 20 })
  source.on("data", (chunk) => {
    bytes += chunk.length
  })
  if (compressed) {
    const gunzip = createGunzip({ chunkSize: 1 << 20 })
    gunzip.on("error", (e) => parser.destroy(e))
    source.pipe(gunzip).pipe(parser)
  } else source.pipe(parser)
  let rows = from.rows
  let line = from.line
  let batch: Array<RawRow> = []
  for await (const entry of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
    const recordLine = entry.info.lines
    while (skipped.length > 0) {
      batch.push(skipped.shift()!)
      rows++
    }
    if (recordLine < from.line) continue
    rows++
    line = recordLine + 1
    const bad = Object.entries(entry.record).find(([, v]) => typeof v === "string" && v.includes("\uFFFD"))
    batch.push(
      bad !== undefined
        ? {
            line: recordLine,
            error: `invalid UTF-8 in column \`${bad[0]}\``,
            raw: JSON.stringify(entry.record).slice(0, RAW_PREVIEW)
          }
        : { line: recordLine, value: entry.record }
    )
    if (batch.length >= batchSize) {
      yield { rows: batch, next: { rows, line, offset: 0 }, bytes }
      batch = []
    }
  }
  while (skipped.length > 0) {
    batch.push(skipped.shift()!)
    rows++
  }
  yield { rows: batch, next: { rows, line, offset: 0 }, bytes }
}

/** Parquet, one row group (or a bounded slice of one) at a time; the row number is the line. */
export async function* readParquet(path: string, from: ReadPosition, batchSize: number): AsyncGenerator<RowBatch> {
  const file = await asyncBufferFromFile(path)
  const metadata = await parquetMetadataAsync(file)
  const total = Number(metadata.num_rows)
  const size = (await stat(path)).size
  const step = Math.max(batchSize, 1)
  for (let start = from.rows; start < total; start += step) {
    const end = Math.min(total, start + step)
    const objects = await parquetReadObjects({ file, metadata, rowStart: start, rowEnd: end, compressors })
    const rows: Array<RawRow> = objects.map((value, i) => ({
      line: start + i + 1,
      value: normaliseParquetValue(value)
    }))
    yield { rows, next: { rows: end, line: end + 1, offset: 0 }, bytes: Math.round((size * end) / Math.max(total, 1)) }
  }
  if (from.rows >= total) yield { rows: [], next: { rows: total, line: total + 1, offset: 0 }, bytes: size }
}

/** BigInts (INT64 columns) become numbers when safe, else strings, so rows stay JSON. */
const normaliseParquetValue = (value: unknown): unknown => {
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (Array.isArray(value)) return value.map(normaliseParquetValue)
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64")
  if (value instanceof Date) return value.toISOString()
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = normaliseParquetValue(v)
    return out
  }
  return value
}

export const readRows = (
  format: InputFormat,
  path: string,
  from: ReadPosition,
  batchSize: number
): AsyncGenerator<RowBatch> => {
  switch (format) {
    case "jsonl":
      return readJsonl(path, from, batchSize)
    case "json":
      return readJsonArray(path, from, batchSize)
    case "csv":
      return readCsv(path, from, batchSize)
    case "parquet":
      return readParquet(path, from, batchSize)
  }
}

/** Reads a whole small file as text (configs, prompts). */
export const readText = (path: string): Promise<string> => readFile(path, "utf8")
