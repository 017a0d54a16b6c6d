// The pipeline bench's scripted teacher, rewriter and judge: a quarter of the teacher's traces
// rated easy, a quarter hard, by a hash of the judge's prompt (the same on every run).
import { createHash } from "node:crypto"
import { arithmeticScript } from "@fastcot/core/testing"

export const pipelineScript = arithmeticScript(
  (_n, user) =>
    ["easy", "medium", "hard", "medium"][parseInt(createHash("sha256").update(user).digest("hex").slice(0, 4), 16) % 4]
)
