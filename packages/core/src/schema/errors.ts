import * as ParseResult from "effect/ParseResult"

/** A parse error as `field.path: message` lines, so that users see which field is wrong. */
export const describeParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => {
      const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".")
      return path.length > 0 ? `field \`${path}\`: ${issue.message}` : issue.message
    })
    .join("; ")
