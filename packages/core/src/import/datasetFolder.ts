import * as Either from "effect/Either"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative, sep } from "node:path"
import { parse as parseYaml } from "yaml"
import { formatFromPath } from "./readers.js"

export interface DatasetFolderOptions {
  /** The split to import (default `train`). */
  readonly split?: string | undefined
  /** The dataset card's configuration (default: the one marked default, or named `default`, else the first). */
  readonly config?: string | undefined
}

export interface DatasetFiles {
  /** The data files of the split, in order (shards sorted by name). */
  readonly files: ReadonlyArray<string>
  /** Where they were found: the snapshot folder. */
  readonly root: string
  readonly split: string
  readonly config?: string | undefined
}

interface CardConfig {
  readonly config_name?: string
  readonly default?: boolean
  readonly data_files?:
    string | ReadonlyArray<string | { readonly split?: string; readonly path?: string | ReadonlyArray<string> }>
}

const DATA_FILE = /\.(parquet|jsonl|ndjson|json|csv|tsv)$/i

const walk = (root: string, dir = root, out: Array<string> = []): Array<string> => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue
    const path = join(dir, entry.name)
    // Snapshot entries are symbolic links into blobs/: follow them.
    const isDir = entry.isDirectory() || (entry.isSymbolicLink() && statSync(path).isDirectory())
    if (isDir) walk(root, path, out)
    else if (DATA_FILE.test(entry.name) && formatFromPath(entry.name) !== undefined)
      out.push(relative(root, path).split(sep).join("/"))
  }
  return out
}

/** A dataset card's glob (`data/train-*`, `**\/*.parquet`) as a regular expression over relative paths. */
const globRegex = (glob: string): RegExp => {
  let re = ""
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*"
      i++
      if (glob[i + 1] === "/") i++
    } else if (c === "*") re += "[^/]*"
    else if (c === "?") re += "[^/]"
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&")
  }
  return new RegExp(`^${re}$`)
}

/** The snapshot a Hugging Face cache entry (`datasets--org--name`) points at: refs/main's, else the newest. */
const snapshotOf = (dir: string): string => {
  const snapshots = join(dir, "snapshots")
  if (!existsSync(snapshots)) return dir
  const ref = join(dir, "refs", "main")
  if (existsSync(ref)) {
    const commit = readFileSync(ref, "utf8").trim()
    if (existsSync(join(snapshots, commit))) return join(snapshots, commit)
  }
  const all = readdirSync(snapshots)
    .map((name) => join(snapshots, name))
    .filter((p) => statSync(p).isDirectory())
  if (all.length === 0) return dir
  return all.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!
}

const cardConfigs = (root: string): ReadonlyArray<CardConfig> => {
  const card = join(root, "README.md")
  if (!existsSync(card)) return []
  const m = /^---\r?\n([\s\S]*?)\r?\n---/.exec(readFileSync(card, "utf8"))
  if (m === null) return []
  try {
    const front = parseYaml(m[1]!) as { configs?: unknown } | null
    return Array.isArray(front?.configs) ? (front.configs as ReadonlyArray<CardConfig>) : []
  } catch {
    return []
  }
}

/**
 * The data files of one split of a dataset folder: a Hugging Face cache entry
 * (`~/.cache/huggingface/hub/datasets--open-r1--OpenR1-Math-220k`, read at the snapshot `refs/main`
 * names) or a downloaded copy of a dataset repository. The dataset card's `configs` say which files
 * make which split; without them, files named for the split (`train-00000-of-00010.parquet`,
 * `train.jsonl`, a `train/` folder) are taken, preferring the `data/` folder of the default layout.
 */
export const datasetFiles = (dir: string, options: DatasetFolderOptions = {}): Either.Either<DatasetFiles, string> => {
  const split = options.split ?? "train"
  const root = snapshotOf(dir)
  const files = walk(root).sort()
  if (files.length === 0) return Either.left(`${dir}: no data files (Parquet, JSONL, JSON, CSV) in it`)
  const configs = cardConfigs(root)
  if (configs.length > 0) {
    const config =
      options.config !== undefined
        ? configs.find((c) => c.config_name === options.config)
        : (configs.find((c) => c.default === true) ?? configs.find((c) => c.config_name === "default") ?? configs[0])
    if (config === undefined)
      return Either.left(
        `${dir}: no configuration \`${options.config}\`; the dataset card has ${configs.map((c) => c.config_name ?? "(unnamed)").join(", ")}`
      )
    const entries =
      typeof config.data_files === "string"
        ? [{ split: "train", path: config.data_files }]
        : (config.data_files ?? []).map((e) => (typeof e === "string" ? { split: "train", path: e } : e))
    const forSplit = entries.filter((e) => (e.split ?? "train") === split)
    if (forSplit.length === 0) {
      return Either.left(
        `${dir}: the configuration \`${config.config_name ?? "default"}\` has no split \`${split}\`; it has ${[...new Set(entries.map((e) => e.split ?? "train"))].join(", ")} (--split)`
      )
    }
    const globs = forSplit
      .flatMap((e) => (Array.isArray(e.path) ? e.path : e.path === undefined ? [] : [e.path]))
      .map((p) => globRegex(String(p)))
    const chosen = files.filter((f) => globs.some((g) => g.test(f)))
    if (chosen.length === 0)
      return Either.left(
        `${dir}: the files of split \`${split}\` are not downloaded (none matches ${forSplit.map((e) => e.path).join(", ")})`
      )
    return Either.right({ files: chosen.map((f) => join(root, f)), root, split, config: config.config_name })
  }
  const named = new RegExp(`(^|/)${split.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([-_.][^/]*)?(/|$)`)
  let chosen = files.filter((f) => named.test(f))
  // Several configurations side by side: the default layout keeps its files under data/.
  const underData = chosen.filter((f) => f.startsWith("data/"))
  if (underData.length > 0) chosen = underData
  if (chosen.length === 0) {
    const splits = [
      ...new Set(
        files
          .map((f) => /(?:^|\/)([a-z]+)(?:[-_.]|\/)/i.exec(f.split("/").pop() ?? "")?.[1])
          .filter((s) => s !== undefined)
      )
    ]
    return Either.left(
      `${dir}: no files of split \`${split}\`${splits.length > 0 ? ` (files are named for ${splits.join(", ")}; --split)` : ""}`
    )
  }
  return Either.right({ files: chosen.map((f) => join(root, f)), root, split })
}
