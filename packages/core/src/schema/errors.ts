import * as ParseResult from "effect/ParseResult"

/**
 * A parse error's issues, less the noise: an optional field is a union with undefined, and its
 * "Expected undefined" half says nothing when the other half says what is wrong with the field,
 * at the field itself or anywhere inside it.
 */
export const parseIssues = (error: ParseResult.ParseError): Array<ParseResult.ArrayFormatterIssue> => {
  const all = ParseResult.ArrayFormatter.formatErrorSync(error)
  const within = (inner: ParseResult.ArrayFormatterIssue, outer: ParseResult.ArrayFormatterIssue) =>
    inner.path.length >= outer.path.length && outer.path.every((k, i) => k === inner.path[i])
  return all.filter(
    (i) => !(/^Expected undefined, actual /.test(i.message) && all.some((j) => j !== i && within(j, i)))
  )
}

/** A parse error as `field.path: message` lines, so that users see which field is wrong. */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const useful = parseIssues(error).map((issue) => ({
    path: issue.path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join("."),
    message: issue.message
  }))
  // A union's members each say "Expected X, actual Y" for the same field: one line lists them all.
  const merged: Array<{ path: string; message: string; expected?: Array<string>; actual?: string }> = []
  for (const i of useful) {
    const m = /^Expected (.+), actual (.+)$/s.exec(i.message)
    const previous = merged.find((x) => x.path === i.path && x.expected !== undefined && x.actual === m?.[2])
    if (m !== null && previous !== undefined) previous.expected!.push(m[1]!)
    else merged.push(m === null ? { ...i } : { ...i, expected: [m[1]!], actual: m[2]! })
  }
  return merged
    .map((i) => {
      const message =
        i.expected !== undefined && i.expected.length > 1
          ? `Expected one of ${i.expected.join(", ")}, actual ${i.actual}`
          : i.message
      return i.path.length > 0 ? `field \`${i.path}\`: ${message}` : message
    })
    .join("; ")
}
