// Checkpoint conversion at Qwen2.5-0.5B's shape (random BF16 weights in two shards, written by
// the project's checkpoint builder): the time and peak memory of `convertCheckpoint` to each
// variant (q4 with and without its quantizing helper threads), against reading every tensor of
// the checkpoint (the floor: conversion must read it all), each in a fresh child process. Printed: conversion time / read time, and peak RSS above
// the largest tensor in float32 (the issue's bound for a 7B model: under 2 GB above it).
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const [, , mode, childSrc, arg] = process.argv
// Peak RSS of this process: VmHWM starts afresh at exec (getrusage's maxRSS would carry the
// parent's peak into the child).
const peakMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1]) / 1024
if (mode === "--read") {
  const { Onnx } = await import("@fastcot/core")
  const t0 = performance.now()
  // Through one array grown to the largest tensor, as the converter reads its weights (a fresh
  // array for each would time the page faults of new memory, not the reading).
  let values = 0
  let into = new Float32Array(0)
  for (const entry of Onnx.openCheckpointTensors(childSrc).values()) {
    const count = entry.shape.reduce((a, b) => a * b, 1)
    if (into.length < count) into = new Float32Array(count)
    values += Onnx.readTensorFloat32(entry, into).length
  }
  process.stdout.write(JSON.stringify({ ms: performance.now() - t0, values, maxRssMb: peakMb() }) + "\n")
  process.exit(0)
}
if (mode === "--convert") {
  const { convertCheckpoint } = await import("@fastcot/core")
  const out = mkdtempSync(join(tmpdir(), "fastcot-convert-out-"))
  const t0 = performance.now()
  // "q4/0": q4 with no helper threads (quantizing on the main thread alone).
  const [variant, helpers] = arg.split("/")
  convertCheckpoint({
    source: childSrc,
    out,
    variants: [variant],
    ...(helpers === undefined ? {} : { quantizeHelpers: Number(helpers) })
  })
  const ms = performance.now() - t0
  rmSync(out, { recursive: true, force: true })
  process.stdout.write(JSON.stringify({ ms, maxRssMb: peakMb() }) + "\n")
  process.exit(0)
}

const { buildQwen2Checkpoint } = await import("@fastcot/core/testing")
const { QWEN25_05B_SHAPE } = await import("@fastcot/core/testing")
// CHECKPOINT=DIR writes the checkpoint there and keeps it, or takes the one already there.
const kept = process.env.CHECKPOINT
const dir = kept ?? mkdtempSync(join(tmpdir(), "fastcot-convert-bench-"))
const src = kept === undefined ? join(dir, "checkpoint") : kept
// SHAPE=7b: Qwen2.5-7B's shape (untied embeddings, 4 shards, 15 GB on disk; q4 only by default),
// for the issue's memory bound at 7B. The checkpoint is written a tensor at a time.
const SEVEN_B = {
  hiddenSize: 3584,
  numLayers: 28,
  numHeads: 28,
  numKvHeads: 4,
  intermediateSize: 18944,
  vocabSize: 152064,
  ropeTheta: 1_000_000,
  rmsNormEps: 1e-6,
  maxPositionEmbeddings: 32768
}
const sevenB = process.env.SHAPE === "7b"
// "q4/0" is q4 quantized on the main thread alone, beside "q4" with its helper threads.
const variants = (process.env.VARIANTS ?? (sevenB ? "q4/0,q4" : "fp32,int8,q4/0,q4")).split(",")
try {
  const t0 = performance.now()
  const reused = kept !== undefined && existsSync(join(src, "config.json"))
  if (!reused)
    buildQwen2Checkpoint(
      sevenB
        ? { dir: src, shape: SEVEN_B, seed: 1, dtype: "BF16", shards: 4, tiedEmbeddings: false }
        : { dir: src, shape: QWEN25_05B_SHAPE, seed: 1, dtype: "BF16", shards: 2 }
    )
  const config = JSON.parse(readFileSync(join(src, "config.json"), "utf8"))
  const largestMb = (config.vocab_size * config.hidden_size * 4) / 2 ** 20
  console.log(
    `convert bench: Qwen2.5-${sevenB ? "7B" : "0.5B"} shape, BF16 in ${sevenB ? 4 : 2} shards (${reused ? "taken from CHECKPOINT" : `written in ${((performance.now() - t0) / 1000).toFixed(1)} s`}); largest tensor ${largestMb.toFixed(0)} MB in float32`
  )
  const child = (...args) => {
    const r = spawnSync(process.execPath, [import.meta.filename, ...args], { encoding: "utf8" })
    if (r.status !== 0) throw new Error(r.stderr)
    return JSON.parse(r.stdout.trim().split("\n").pop())
  }
  const read = child("--read", src)
  console.log(`  read every tensor: ${(read.ms / 1000).toFixed(2)} s, peak RSS ${read.maxRssMb.toFixed(0)} MB`)
  const times = new Map()
  for (const v of variants) {
    const c = child("--convert", src, v)
    times.set(v, c.ms)
    console.log(
      `  convert to ${v.padEnd(5)}: ${(c.ms / 1000).toFixed(2)} s (${(c.ms / read.ms).toFixed(2)}x reading), ` +
        `peak RSS ${c.maxRssMb.toFixed(0)} MB (${Math.abs(c.maxRssMb - largestMb).toFixed(0)} MB ${c.maxRssMb >= largestMb ? "above" : "below"} the largest tensor)`
    )
  }
  if (times.has("q4") && times.has("q4/0"))
    console.log(
      `  q4 with helper threads: ${(times.get("q4/0") / times.get("q4")).toFixed(2)}x as fast as on one thread`
    )
} finally {
  if (kept === undefined) rmSync(dir, { recursive: true, force: true })
}
