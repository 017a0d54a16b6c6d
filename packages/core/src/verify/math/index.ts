/**
 * The math grader's parts: the LaTeX parser, expression trees, answer extraction and the
 * equivalence test that `gradeMath` combines. Exported from the package as `MathGrader`.
 */
export { LatexSyntaxError, ParseBudgetExceeded, parseLatex, type ParseOptions } from "./parseLatex.js"
export { freeSymbols, type MathNode, type RelOp, show } from "./ast.js"
export { type AnswerCandidate, answerCandidates, type AnswerSource, replySections } from "./extractAnswer.js"
export { equivalent, type EquivalenceContext, GradeTimeout } from "./equivalence.js"
