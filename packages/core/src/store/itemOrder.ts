import type { Item } from "../schema/item.js"

/** The columns an item list sorts by. */
export type ItemSortKey = "id" | "tokens" | "fate" | "review"

/** How an item list is ordered: by one column, ties broken by id in the same direction. */
export interface ItemOrder {
  readonly by: ItemSortKey
  readonly direction: "asc" | "desc"
}

/** The value of the order's column that keyset paging carries: a number for tokens, else text. */
export type ItemSortValue = string | number

/**
 * Each sort key's SQL expression, the same on SQLite and PostgreSQL: `tokens` is the current
 * trace's reasoning tokens (items without a count are left out when sorting by it); an item nobody
 * reviewed sorts as the empty review (`items_review_key` indexes the expression).
 */
export const ITEM_SORT_SQL: Record<ItemSortKey, string> = {
  id: "id",
  tokens: "reasoning_tokens",
  fate: "fate",
  review: "COALESCE(review, '')"
}

/** An item's value of the order's column, for the next page's keyset. */
export const itemSortValue = (item: Item, by: ItemSortKey): ItemSortValue | undefined =>
  by === "id"
    ? item.id
    : by === "tokens"
      ? item.trace?.tokens?.reasoning
      : by === "fate"
        ? item.fate
        : (item.review?.decision ?? "")
