import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import type { RunStore } from "../store/RunStore.js"

/** A fresh temporary folder, removed by the returned cleanup. */
export const tempDir = (prefix = "fastcot-test-") => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Runs an effect against a real SQLite store file. */
export const withStore = <A, E>(file: string, effect: Effect.Effect<A, E, RunStore>): Promise<A> =>
  Effect.runPromise(Effect.scoped(effect.pipe(Effect.provide(SqliteRunStoreLive(file)))))

export const jsonl = (rows: ReadonlyArray<unknown>) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n"
