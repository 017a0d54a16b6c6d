import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** The built-in default pipeline: the article's recipe, shipped with @fastcot/core. */
export const DEFAULT_PIPELINE_FILE = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "recipes",
  "distilqwen-ds3-0324.yaml"
)

export const defaultPipelineText = (): string => readFileSync(DEFAULT_PIPELINE_FILE, "utf8")
