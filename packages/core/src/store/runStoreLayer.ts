import type * as Layer from "effect/Layer"
import type { StoreError } from "./errors.js"
import { PgRunStoreLive, type PgStoreOptions } from "./PgRunStore.js"
import { isPostgresUrl } from "./storeUrl.js"
import type { RunStore } from "./RunStore.js"
import { SqliteRunStoreLive } from "./SqliteRunStore.js"

/** The run store a location names: a `postgres://` URL (with `shared` options), or else a SQLite file. */
export const runStoreLayer = (location: string, shared: PgStoreOptions = {}): Layer.Layer<RunStore, StoreError> =>
  isPostgresUrl(location) ? PgRunStoreLive(location, shared) : SqliteRunStoreLive(location)
