import * as Data from "effect/Data"

/** A request that does not match its channel's Schema, or that names something that is not there. */
export class BadRequest extends Data.TaggedError("BadRequest")<{ readonly message: string }> {}
