import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

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
