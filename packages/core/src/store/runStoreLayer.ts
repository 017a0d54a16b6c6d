import type * as Layer from "effect/Layer"
import type { StoreError } from "./errors.js"
import { isPostgresUrl, PgRunStoreLive } from "./PgRunStore.js"
import type { RunStore } from "./RunStore.js"
import { SqliteRunStoreLive } from "./SqliteRunStore.js"

/** The run store a location names: a `postgres://` URL, or else a SQLite file. */
export const runStoreLayer = (location: string): Layer.Layer<RunStore, StoreError> =>
  isPostgresUrl(location) ? PgRunStoreLive(location) : SqliteRunStoreLive(location)
