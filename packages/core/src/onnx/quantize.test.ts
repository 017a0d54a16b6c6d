import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { startQ4Threads } from "./quantizeThreads.js"
import { quantizeQ4, quantizeQ4Rows, transpose } from "./qwen2Builder.js"
import { readSafetensorsHeader, readTensorFloat32, type SafetensorsDtype, writeSafetensors } from "./safetensors.js"

describe("4-bit quantization in MatMulNBits' layout", () => {
  it("packs each output's blocks of 32 low nibble first around zero point 8, padding a short block with 8", () => {
    // Two outputs (rows) of K = 4: one block each, padded to 32.
    const rows = Float32Array.of(7, -7, 0, 3.5, 0, 0, 0, 0)
    const { packed, scales } = quantizeQ4Rows(rows, 4, 2)
    expect([...scales]).toEqual([1, 1])
    expect(packed.length).toBe(2 * 16)
    expect([...packed.subarray(0, 3)]).toEqual([15 | (1 << 4), 8 | (12 << 4), 0x88])
    expect([...packed.subarray(16)]).toEqual(Array(16).fill(0x88))
  })

  it("gives the same bytes from [K, N] as from its rows, and each value within half a step", () => {
    const K = 70
    const N = 9
    const w = Float32Array.from({ length: K * N }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)))
    const rows = transpose(w, K, N)
    const a = quantizeQ4(w, K, N)
    const b = quantizeQ4Rows(rows, K, N)
    expect(Buffer.compare(Buffer.from(a.packed), Buffer.from(b.packed))).toBe(0)
    expect([...a.scales]).toEqual([...b.scales])
    const blocks = Math.ceil(K / 32)
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        const byte = b.packed[(n * blocks + Math.floor(k / 32)) * 16 + Math.floor((k % 32) / 2)]!
        const q = k % 2 === 0 ? byte & 15 : byte >> 4
        const scale = b.scales[n * blocks + Math.floor(k / 32)]!
        expect(Math.abs((q - 8) * scale - rows[n * K + k]!)).toBeLessThanOrEqual(scale / 2 + 1e-6)
      }
  })
})

describe("4-bit quantization shared with helper threads", () => {
  const K = 100
  const N = 37
  const values = (i: number) => Math.sin(i * 0.37) * (1 + (i % 7)) + (i % 11 === 0 ? 40 : 0)

  it("gives quantizeQ4Rows' bytes with 0, 1 and 3 helpers, weight after weight through one scratch", () => {
    for (const helpers of [0, 1, 3]) {
      const threads = startQ4Threads(helpers)
      try {
        expect(threads.helpers()).toBe(helpers)
        for (const [k, n, shift] of [
          [K, N, 0],
          [64, 5, 3],
          [K, N, 9]
        ] as const) {
          const rows = threads.scratch(k * n)
          expect(rows.buffer).toBeInstanceOf(SharedArrayBuffer)
          for (let i = 0; i < rows.length; i++) rows[i] = values(i + shift)
          const expected = quantizeQ4Rows(Float32Array.from(rows), k, n)
          const got = threads.quantize(rows, k, n)
          expect(Buffer.compare(Buffer.from(got.packed), Buffer.from(expected.packed))).toBe(0)
          expect([...got.scales]).toEqual([...expected.scales])
        }
        // No helper failed (a failed one is dropped and its rows quantized here).
        expect(threads.helpers()).toBe(helpers)
      } finally {
        threads.close()
      }
    }
  })

  it("quantizes rows outside shared memory on this thread, and goes on alone once closed", () => {
    const threads = startQ4Threads(2)
    const rows = Float32Array.from({ length: K * N }, (_, i) => values(i))
    const expected = quantizeQ4Rows(rows, K, N)
    const fromPlain = threads.quantize(rows, K, N)
    expect(Buffer.compare(Buffer.from(fromPlain.packed), Buffer.from(expected.packed))).toBe(0)
    threads.close()
    expect(threads.helpers()).toBe(0)
    const shared = threads.scratch(K * N)
    shared.set(rows)
    const afterClose = threads.quantize(shared, K, N)
    expect(Buffer.compare(Buffer.from(afterClose.packed), Buffer.from(expected.packed))).toBe(0)
  })
})

describe("4-bit quantization read from safetensors by each thread", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fastcot-q4-files-"))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  const K = 96
  const tensor = (name: string, rows: number, shift: number) => ({
    name,
    shape: [rows, K],
    values: Float32Array.from({ length: rows * K }, (_, i) => Math.sin((i + shift) * 0.61) * (1 + (i % 5)))
  })
  const parts = [tensor("q", 40, 0), tensor("k", 9, 7), tensor("v", 9, 11)]
  const write = (file: string, dtype: SafetensorsDtype) => {
    writeSafetensors(path.join(dir, file), parts, dtype)
    return readSafetensorsHeader(path.join(dir, file))
  }

  it("gives the bytes of quantizing the parts' rows read here, for BF16, F16 and F32, with 0-3 helpers, in chunks or not", () => {
    for (const dtype of ["BF16", "F16", "F32"] as const) {
      const entries = write(`parts-${dtype}.safetensors`, dtype)
      const rows = new Float32Array(58 * K)
      let at = 0
      for (const e of entries) at += readTensorFloat32(e, rows.subarray(at)).length
      const expected = quantizeQ4Rows(rows, K, 58)
      // Whole, and in chunks of 10 rows through the shared array.
      for (const [helpers, chunk] of [
        [0, undefined],
        [1, undefined],
        [3, undefined],
        [0, 10 * K],
        [2, 10 * K]
      ] as const) {
        const threads = startQ4Threads(helpers, chunk)
        try {
          const got = threads.quantizeFromFiles(entries, K, 58)
          expect(got).toBeDefined()
          expect(Buffer.compare(Buffer.from(got!.packed), Buffer.from(expected.packed))).toBe(0)
          expect([...got!.scales]).toEqual([...expected.scales])
          expect(threads.helpers()).toBe(helpers)
        } finally {
          threads.close()
        }
      }
    }
  })

  it("names the file and the tensor when a file ends too soon", () => {
    const threads = startQ4Threads(1)
    try {
      const entries = write("cut.safetensors", "BF16")
      const file = path.join(dir, "cut.safetensors")
      fs.truncateSync(file, fs.statSync(file).size - 100)
      expect(() => threads.quantizeFromFiles(entries, K, 58)).toThrow(
        `${file}: tensor v: the file ended while reading it`
      )
    } finally {
      threads.close()
    }
  })
})
