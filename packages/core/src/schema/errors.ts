import * as ParseResult from "effect/ParseResult"

/** A parse error as `field.path: message` lines, so that users see which field is wrong. */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: issue.path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join("."),
    message: issue.message
  }))
  // An optional field is a union with undefined: its "Expected undefined" half says nothing useful
  // when the other half already says what the field should be.
  const useful = issues.filter((i) => !(/^Expected undefined, actual /.test(i.message) && issues.some((j) => j !== i && j.path === i.path)))
  return useful.map((i) => (i.path.length > 0 ? `field \`${i.path}\`: ${i.message}` : i.message)).join("; ")
}
