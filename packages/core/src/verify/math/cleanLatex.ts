/**
 * String-level clean-up of an answer before it is parsed: what changes how an answer is typeset
 * but never its value (spacing commands, `\left`, `\dfrac`, thousands separators written `{,}`,
 * currency signs, display styles, Unicode operators). Units and text are left to the parser,
 * which knows where a value ends.
 */
export const cleanLatex = (input: string): string => {
  let s = input
  s = s.replace(/\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits|mathstrut|strut)(?![a-zA-Z])/g, "")
  s = s.replace(
    /\\(?:left|right|middle|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|bigm|Bigm|big|Big|bigg|Bigg)(?![a-zA-Z])\s*/g,
    ""
  )
  s = s.replace(/\\(?:hspace|vspace|phantom|hphantom|vphantom)\*?\{[^{}]*\}/g, "")
  s = s.replace(/\\(?:qquad|quad)|\\(?:enspace|thinspace|medspace|thickspace|negthinspace)(?![a-zA-Z])/g, " ")
  s = s.replace(/(?<=\d)(?:\\[,!]|,\s*\\!)\s*(?=\d{3}(?!\d))/g, "")
  s = s.replace(/(?<!\\)\\!/g, "")
  s = s.replace(/(?<!\\)\\[,;: ]|~/g, " ")
  s = s.replace(/\\(?:d|t|c)frac(?![a-zA-Z])/g, "\\frac")
  s = s.replace(/\\(?:d|t)binom(?![a-zA-Z])/g, "\\binom")
  s = s.replace(/\{,\}/g, "")
  s = s.replace(/\\\$|\$|€|£|¥|₹/g, "")
  s = s.replace(/\\(?:mathbf|boldsymbol|bm|mathit|textbf|textit|emph|mathsf|mathtt|mathnormal)\{([^{}]*)\}/g, "$1")
  s = s.replace(/\\(?:mathbf|boldsymbol|bm)(?![a-zA-Z])/g, "")
  s = s.replace(
    /(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°)\s*(?:\\(?:text|mathrm)\{\s*[CFK]\s*\}|[CFK](?![a-zA-Z]))/g,
    "°"
  )
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°|\^\s*\{\s*o\s*\}/g, "°")
  s = s.replace(/\\%|\\percent(?![a-zA-Z])/g, "%")
  s = s.replace(/(\d)\s*(?:\\text\{\s*)?(?:percentage|percent|pct)(?![a-zA-Z])(?:\s*\})?/g, "$1%")
  s = s.replace(/\\(?:neq|ne)(?![a-zA-Z])|≠/g, "\\ne ")
  s = s.replace(/\\(?:leqslant|leq|le)(?![a-zA-Z])|≤|⩽/g, "\\le ")
  s = s.replace(/\\(?:geqslant|geq|ge)(?![a-zA-Z])|≥|⩾/g, "\\ge ")
  s = s.replace(/[−–]/g, "-")
  s = s.replace(/×/g, "\\times ")
  s = s.replace(/[·⋅]/g, "\\cdot ")
  s = s.replace(/÷/g, "\\div ")
  s = s.replace(/π/g, "\\pi ")
  s = s.replace(/∞/g, "\\infty ")
  s = s.replace(/√/g, "\\sqrt")
  s = s.replace(/±/g, "\\pm ")
  s = s.replace(/∪/g, "\\cup ")
  s = s.replace(/∈/g, "\\in ")
  s = s.replace(/Å|\\AA(?![a-zA-Z])|\\angstrom(?![a-zA-Z])/g, "\\text{Å}")
  s = s.replace(/[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+/g, (m) => `^{${[...m].map((ch) => SUPERSCRIPTS[ch] ?? "").join("")}}`)
  s = s.replace(/[₀₁₂₃₄₅₆₇₈₉₋ₐₑₒₓₛₚₙₘₖₗₜₕ]+/g, (m) => `_{${[...m].map((ch) => SUBSCRIPTS[ch] ?? "").join("")}}`)
  // 1.22 x 10^-18: an "x" between a number and a power of ten is a times sign.
  s = s.replace(/(\d)\s*[xX]\s*(10\s*\^)/g, "$1\\times $2")
  // "a = 3 \implies b = 5": the last statement is the answer.
  const parts = s.split(/\\(?:implies|Rightarrow|Longrightarrow|therefore)(?![a-zA-Z])/)
  if (parts.length > 1) s = parts[parts.length - 1]!
  // "Total: 7": a label before the value (a word of three letters or more, or several words).
  s = s.replace(/^\s*[A-Za-z][A-Za-z ]{2,}:\s*(?=[^,:]+$)/, "")
  // "Rayna: 7, Qing: 14": a list of labelled values is the list of values.
  if (/^\s*[A-Za-z][\w ]*:\s*[^,:]+(?:,\s*[A-Za-z][\w ]*:\s*[^,:]+)+$/.test(s))
    s = s.replace(/(^|,)\s*[A-Za-z][\w ]*:\s*/g, "$1")
  s = s.replace(/\\pmod\s*\{[^{}]*\}|\\pmod\s*\d+/g, "")
  return s.trim().replace(/^=\s*/, "")
}

const SUPERSCRIPTS: Record<string, string> = {
  "⁰": "0",
  "¹": "1",
  "²": "2",
  "³": "3",
  "⁴": "4",
  "⁵": "5",
  "⁶": "6",
  "⁷": "7",
  "⁸": "8",
  "⁹": "9",
  "⁻": "-",
  "⁺": "+"
}
const SUBSCRIPTS: Record<string, string> = {
  "₀": "0",
  "₁": "1",
  "₂": "2",
  "₃": "3",
  "₄": "4",
  "₅": "5",
  "₆": "6",
  "₇": "7",
  "₈": "8",
  "₉": "9",
  "₋": "-",
  ₐ: "a",
  ₑ: "e",
  ₒ: "o",
  ₓ: "x",
  ₛ: "s",
  ₚ: "p",
  ₙ: "n",
  ₘ: "m",
  ₖ: "k",
  ₗ: "l",
  ₜ: "t",
  ₕ: "h"
}

/** Drops what ends a sentence around an answer: `5.` is `5` (and `0.5` stays), `x,` is `x`. */
export const trimSentenceEnd = (s: string): string => s.replace(/(?:[\s.,;:]|\\\\)+$/, "").replace(/^[\s:,]+/, "")
