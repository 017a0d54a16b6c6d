import * as Effect from "effect/Effect"
import type { KeptAs } from "../schema/item.js"
import type { TraceOrigin } from "../schema/trace.js"
import type { ReviewQueueFilter } from "./RunStore.js"

/** One read of unreviewed kept items' ids: by id from `from` (inclusive) or below `before`, or longest first. */
export interface ReviewQueueRead {
  readonly order: "random" | "longest"
  readonly keptAs: KeptAs | undefined
  readonly origin: TraceOrigin | undefined
  readonly from?: string | undefined
  readonly before?: string | undefined
  readonly limit: number
}

/**
 * The ids a review queue offers, the same on every backend: `random` reads from the seed's place
 * in id order and wraps around to the start; what `exclude` holds is skipped.
 */
export const reviewQueueIds = <E, R>(
  filter: ReviewQueueFilter,
  read: (q: ReviewQueueRead) => Effect.Effect<ReadonlyArray<string>, E, R>
): Effect.Effect<ReadonlyArray<string>, E, R> =>
  Effect.gen(function* () {
    const exclude = new Set(filter.exclude ?? [])
    const wanted = filter.limit + exclude.size
    const keep = (ids: ReadonlyArray<string>) => ids.filter((id) => !exclude.has(id))
    if (filter.order === "longest")
      return keep(yield* read({ order: "longest", keptAs: filter.keptAs, origin: filter.origin, limit: wanted })).slice(
        0,
        filter.limit
      )
    const start = `i_${(filter.seed ?? "")
      .toLowerCase()
      .replace(/[^0-9a-f]/g, "")
      .slice(0, 16)}`
    const first = yield* read({
      order: "random",
      keptAs: filter.keptAs,
      origin: filter.origin,
      from: start,
      limit: wanted
    })
    const rest =
      first.length < wanted
        ? yield* read({
            order: "random",
            keptAs: filter.keptAs,
            origin: filter.origin,
            before: start,
            limit: wanted - first.length
          })
        : []
    return keep([...first, ...rest]).slice(0, filter.limit)
  })
