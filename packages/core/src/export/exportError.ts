import * as Data from "effect/Data"

/** An export that could not be written or checked, naming the file. */
export class ExportError extends Data.TaggedError("ExportError")<{ readonly file: string; readonly message: string }> {}
