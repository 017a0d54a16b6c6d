import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { StoreError } from "./errors.js"
import { RunStore } from "./RunStore.js"

/**
 * Records read a page at a time by keyset pagination on their id: `fetch(afterId, size)` returns
 * the next page; a short page ends the stream.
 */
export const pagedStream = <A extends { readonly id: string }, E, R>(
  pageSize: number,
  fetch: (afterId: string | undefined, limit: number) => Effect.Effect<ReadonlyArray<A>, E, R>
): Stream.Stream<A, E, R> =>
  Stream.paginateChunkEffect(undefined as string | undefined, (afterId) =>
    Effect.map(
      fetch(afterId, pageSize),
      (page) =>
        [
          Chunk.fromIterable(page),
          page.length < pageSize ? Option.none() : Option.some(page[page.length - 1]!.id)
        ] as const
    )
  )

/**
 * Like `pagedStream`, but only the records this worker claims: each page's keys are offered to
 * `RunStore.claim`, and records another worker holds are left to it; on a shared store what was
 * claimed is read again after the claim, so a record another worker finished meanwhile is not
 * worked on twice. The keyset moves on over the whole page, claimed or not; the page size may
 * depend on whether the store is shared. `onHeldElsewhere` is told how many records of each page
 * another worker held (their work is not done: whoever reads the stream to its end and saw some
 * must look again).
 */
export const claimedStream = <A extends { readonly id: string }, E, R>(
  pageSize: (shared: boolean) => number,
  fetch: (afterId: string | undefined, limit: number) => Effect.Effect<ReadonlyArray<A>, E, R>,
  keyOf: (record: A) => string,
  onHeldElsewhere: (records: number) => void = () => {}
): Stream.Stream<A, E | StoreError, R | RunStore> =>
  Stream.paginateChunkEffect(undefined as string | undefined, (afterId) =>
    Effect.gen(function* () {
      const store = yield* RunStore
      const size = pageSize(store.shared)
      const page = yield* fetch(afterId, size)
      const mine = page.length > 0 ? yield* store.claim(page.map(keyOf)) : new Set<string>()
      // On a shared store a record listed before its claim may have moved on meanwhile (another
      // worker finished it and gave up its lease): the claimed ones are read again, and those no
      // longer listed are given up.
      let claimed = page.filter((r) => mine.has(keyOf(r)))
      if (claimed.length < page.length) onHeldElsewhere(page.length - claimed.length)
      if (store.shared && claimed.length > 0) {
        const again = yield* fetch(afterId, size)
        const still = new Set(again.filter((r) => mine.has(keyOf(r))).map((r) => r.id))
        store.release(claimed.filter((r) => !still.has(r.id)).map(keyOf))
        claimed = again.filter((r) => still.has(r.id))
      }
      return [
        Chunk.fromIterable(claimed),
        page.length < size ? Option.none() : Option.some(page[page.length - 1]!.id)
      ] as const
    })
  )
