import type { Item } from "./item.js"
import type { Problem } from "./problem.js"

/**
 * An item just saved pending at a stage, handed to that stage in memory with its problem, so
 * that the stage neither waits for its next pass over the store to find it nor reads it back.
 */
export interface HandedItem {
  readonly item: Item
  readonly problem: Problem
}
