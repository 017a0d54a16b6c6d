/**
 * The content of the last `\boxed{...}` (or `\fbox{...}`) in a text, with nested braces; undefined
 * when there is none or it is not closed.
 */
export const lastBoxed = (text: string): string | undefined => {
  const idx = Math.max(text.lastIndexOf("\\boxed"), text.lastIndexOf("\\fbox"))
  if (idx < 0) return undefined
  let i = text.indexOf(text.startsWith("\\boxed", idx) ? "\\boxed" : "\\fbox", idx)
  i += text.startsWith("\\boxed", idx) ? 6 : 5
  while (text[i] === " ") i++
  if (text[i] !== "{") {
    // `\boxed 5`: the rest of the token.
    const m = /^\s*([^\s$]+)/.exec(text.slice(i))
    return m?.[1]
  }
  let depth = 0
  for (let j = i; j < text.length; j++) {
    const c = text[j]
    if (c === "\\") {
      j++
      continue
    }
    if (c === "{") depth++
    else if (c === "}") {
      depth--
      if (depth === 0) return text.slice(i + 1, j)
    }
  }
  return undefined
}

/** Splits an R1-style reply into the `<think>` reasoning and what follows it. */
export const splitThink = (text: string): { readonly think?: string; readonly rest: string } => {
  const open = text.indexOf("<think>")
  const close = text.indexOf("</think>")
  if (close < 0) return { rest: text }
  const start = open >= 0 && open < close ? open + "<think>".length : 0
  return { think: text.slice(start, close).trim(), rest: text.slice(close + "</think>".length).trim() }
}
