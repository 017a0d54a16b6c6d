// Checkpoint conversion at Qwen2.5-0.5B's shape (random BF16 weights in two shards, written by
// the project's checkpoint builder): the time and peak memory of `convertCheckpoint` to each
// variant, against reading every tensor of the checkpoint (the floor: conversion must read it
// all), each in a fresh child process. Printed: conversion time / read time, and peak RSS above
// the largest tensor in float32 (the bound for a 7B model: under 2 GB above it).
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const [, , mode, childSrc, arg] = process.argv
// Peak RSS of this process: VmHWM starts afresh at exec (getrusage's maxRSS would carry the
// parent's peak into the child).
const peakMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1]) / 1024
if (mode === "--read") {
  const { Onnx } = await import("@fastcot/core")
  const t0 = performance.now()
  let values = 0
  for (const entry of Onnx.openCheckpointTensors(childSrc).values()) values += Onnx.readTensorFloat32(entry).length
  process.stdout.write(JSON.stringify({ ms: performance.now() - t0, values, maxRssMb: peakMb() }) + "\n")
  process.exit(0)
}
if (mode === "--convert") {
  const { convertCheckpoint } = await import("@fastcot/core")
  const out = mkdtempSync(join(tmpdir(), "fastcot-convert-out-"))
  const t0 = performance.now()
  convertCheckpoint({ source: childSrc, out, variants: [arg] })
  const ms = performance.now() - t0
  rmSync(out, { recursive: true, force: true })
  process.stdout.write(JSON.stringify({ ms, maxRssMb: peakMb() }) + "\n")
  process.exit(0)
}

const { buildQwen2Checkpoint } = await import("@fastcot/core/testing")
const { QWEN25_05B_SHAPE } = await import("@fastcot/core/testing")
const dir = mkdtempSync(join(tmpdir(), "fastcot-convert-bench-"))
const src = join(dir, "checkpoint")
const variants = (process.env.VARIANTS ?? "fp32,int8,q4").split(",")
try {
  const t0 = performance.now()
  const { shape } = buildQwen2Checkpoint({ dir: src, shape: QWEN25_05B_SHAPE, seed: 1, dtype: "BF16", shards: 2 })
  const largestMb = (shape.vocabSize * shape.hiddenSize * 4) / 2 ** 20
  console.log(
    `convert bench: Qwen2.5-0.5B shape, BF16 in 2 shards (written in ${((performance.now() - t0) / 1000).toFixed(1)} s); largest tensor ${largestMb.toFixed(0)} MB in float32`
  )
  const child = (...args) => {
    const r = spawnSync(process.execPath, [import.meta.filename, ...args], { encoding: "utf8" })
    if (r.status !== 0) throw new Error(r.stderr)
    return JSON.parse(r.stdout.trim().split("\n").pop())
  }
  const read = child("--read", src)
  console.log(`  read every tensor: ${(read.ms / 1000).toFixed(2)} s, peak RSS ${read.maxRssMb.toFixed(0)} MB`)
  for (const v of variants) {
    const c = child("--convert", src, v)
    console.log(
      `  convert to ${v.padEnd(5)}: ${(c.ms / 1000).toFixed(2)} s (${(c.ms / read.ms).toFixed(2)}x reading), ` +
        `peak RSS ${c.maxRssMb.toFixed(0)} MB (${(c.maxRssMb - largestMb).toFixed(0)} MB above the largest tensor)`
    )
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
