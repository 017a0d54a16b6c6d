import { diffWords } from "diff"

/** Two texts as one, word by word: what the second added underlined, what it removed struck out. */
export const WordDiff = ({ before, after }: { before: string; after: string }) => (
  <p className="diff">
    {diffWords(before, after).map((p, i) =>
      p.added ? <ins key={i}>{p.value}</ins> : p.removed ? <del key={i}>{p.value}</del> : <span key={i}>{p.value}</span>
    )}
  </p>
)
