// Embeds @fastcot/core without the CLI: imports problems with traces into a store, marks them
// kept (as a tool with its own alignment would), and exports SFT data. Exits non-zero on any
// surprise, so CI runs it as a check.
import assert from "node:assert/strict"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { exportDataset, importFile, Item, QwenTokenCounterLive, RunStore, SqliteRunStoreLive } from "@fastcot/core"

const dir = mkdtempSync(join(tmpdir(), "fastcot-embed-"))
const data = join(dir, "data.jsonl")
writeFileSync(
  data,
  [
    { problem: "What is 6 * 7?", answer: "42", solution: "6 * 7 = 42, so the answer is \\boxed{42}." },
    { problem: "What is 10 - 3?", answer: "7", solution: "10 - 3 = \\boxed{7}." }
  ]
    .map((r) => JSON.stringify(r))
    .join("\n") + "\n"
)

const program = Effect.gen(function* () {
  const imported = yield* importFile(data)
  const store = yield* RunStore
  for (const item of yield* store.listItems({})) {
    yield* store.saveItem(
      new Item({ ...item, stage: "done", fate: "kept", keptAs: "initial-medium", updatedAt: new Date().toISOString() })
    )
  }
  const exported = yield* exportDataset({ format: "openai", out: join(dir, "sft", "train.jsonl") })
  return { imported, status: yield* store.status, exported }
})

try {
  const { imported, status, exported } = await Effect.runPromise(
    Effect.scoped(
      program.pipe(Effect.provide(Layer.merge(SqliteRunStoreLive(join(dir, "fastcot.db")), QwenTokenCounterLive)))
    )
  )
  assert.equal(imported.problemsAdded, 2)
  assert.equal(status.kept, 2)
  assert.equal(exported.counts.train, 2)
  const first = JSON.parse(readFileSync(exported.files.train, "utf8").split("\n")[0])
  assert.equal(first.messages.at(-1).role, "assistant")
  console.log(
    `embed-example: imported ${imported.problemsAdded}, kept ${status.kept}, exported ${exported.counts.train} (${exported.tokens.mean} assistant tokens on average)`
  )
} finally {
  rmSync(dir, { recursive: true, force: true })
}
