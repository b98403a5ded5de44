/**
 * Inline review as plain data: the change regions of a file, a review buffer holding each
 * region's removed lines followed by its added lines, and the line edits that accepting or
 * rejecting a region makes. `inline.ts` applies these edits to the real document.
 */
import { diffArrays } from "diff";

/** One change region, positioned in the original file's lines. */
export interface Hunk {
  start: number;
  removed: string[];
  added: string[];
}

/** Replace `deleteCount` lines at `start` with `insert`, in the document's line model. */
export interface LineEdit {
  start: number;
  deleteCount: number;
  insert: string[];
}

export type BlockState = "pending" | "accepted" | "rejected" | "edited";

/** A hunk in the review buffer: `removed` red lines at `start`, then `added` green lines. */
export interface Block {
  id: number;
  start: number;
  removed: number;
  added: number;
  state: BlockState;
}

/** Lines as an editor counts them: "a\nb\n" has three, the last one empty. */
export function splitLines(text: string): string[] {
  return text.split(/\r\n|\n/);
}

export function computeHunks(before: string, after: string): Hunk[] {
  const hunks: Hunk[] = [];
  let line = 0;
  let current: Hunk | undefined;
  for (const change of diffArrays(splitLines(before), splitLines(after))) {
    if (!change.added && !change.removed) {
      current = undefined;
      line += change.count;
      continue;
    }
    if (!current) {
      current = { start: line, removed: [], added: [] };
      hunks.push(current);
    }
    if (change.removed) {
      current.removed.push(...change.value);
      line += change.count;
    } else {
      current.added.push(...change.value);
    }
  }
  return hunks;
}

export function applyLineEdit(lines: readonly string[], edit: LineEdit): string[] {
  const result = [...lines];
  result.splice(edit.start, edit.deleteCount, ...edit.insert);
  return result;
}

/** A text edit (zero-based positions) equal to `edit` on a document whose lines are `lines`. */
export interface TextEditSpec {
  startLine: number;
  startCharacter: number;
  endLine: number;
  endCharacter: number;
  text: string;
}

export function toTextEdit(lines: readonly string[], edit: LineEdit, eol: string): TextEditSpec {
  const end = edit.start + edit.deleteCount;
  if (end < lines.length) {
    const text = edit.insert.map((line) => line + eol).join("");
    return { startLine: edit.start, startCharacter: 0, endLine: end, endCharacter: 0, text };
  }
  const last = lines.length - 1;
  const endCharacter = lines[last]?.length ?? 0;
  if (edit.start > 0) {
    // The edit reaches the last line, which has no line break after it: take the one before.
    const startCharacter = lines[edit.start - 1]?.length ?? 0;
    const text = edit.insert.map((line) => eol + line).join("");
    return { startLine: edit.start - 1, startCharacter, endLine: last, endCharacter, text };
  }
  return { startLine: 0, startCharacter: 0, endLine: last, endCharacter, text: edit.insert.join(eol) };
}

export class InlineSession {
  readonly blocks: Block[];
  private currentLines: string[];

  /** `edits` turn `before` into the review buffer; apply them in order. */
  readonly edits: LineEdit[];

  constructor(
    readonly original: string,
    hunks: readonly Hunk[],
  ) {
    this.currentLines = splitLines(original);
    this.blocks = [];
    this.edits = [];
    let shift = 0;
    hunks.forEach((hunk, id) => {
      const start = hunk.start + shift;
      this.blocks.push({
        id,
        start,
        removed: hunk.removed.length,
        added: hunk.added.length,
        state: "pending",
      });
      if (hunk.added.length > 0) {
        const edit = { start: start + hunk.removed.length, deleteCount: 0, insert: hunk.added };
        this.edits.push(edit);
        this.currentLines = applyLineEdit(this.currentLines, edit);
      }
      shift += hunk.added.length;
    });
  }

  get lines(): readonly string[] {
    return this.currentLines;
  }

  text(eol = "\n"): string {
    return this.currentLines.join(eol);
  }

  pending(): Block[] {
    return this.blocks.filter((b) => b.state === "pending");
  }

  get done(): boolean {
    return this.pending().length === 0;
  }

  /** Keeps the block's added lines; returns the edit made (undefined: nothing to delete). */
  accept(id: number): LineEdit | undefined {
    return this.resolve(id, "accepted");
  }

  /** Restores the block's removed lines; returns the edit made. */
  reject(id: number): LineEdit | undefined {
    return this.resolve(id, "rejected");
  }

  /**
   * The document no longer holds the review text (the user typed, undid, ...): blocks below
   * the changed lines move, blocks the change touches leave the review as the user left them.
   */
  sync(lines: readonly string[]): void {
    const regions: Array<{ first: number; removed: number; added: number }> = [];
    let line = 0;
    for (const change of diffArrays(this.currentLines, [...lines])) {
      if (!change.added && !change.removed) {
        line += change.count;
        continue;
      }
      const last = regions.at(-1);
      const region =
        last && last.first + last.removed === line ? last : { first: line, removed: 0, added: 0 };
      if (region !== last) {
        regions.push(region);
      }
      if (change.removed) {
        region.removed += change.count;
        line += change.count;
      } else {
        region.added += change.count;
      }
    }
    for (const region of regions.reverse()) {
      const last = region.first + region.removed - 1;
      for (const block of this.pending()) {
        const end = block.start + block.removed + block.added - 1;
        if (block.start > last) {
          block.start += region.added - region.removed;
        } else if (end >= region.first) {
          block.state = "edited";
        }
      }
    }
    this.currentLines = [...lines];
  }

  private resolve(id: number, state: "accepted" | "rejected"): LineEdit | undefined {
    const block = this.blocks.find((b) => b.id === id && b.state === "pending");
    if (!block) {
      return undefined;
    }
    block.state = state;
    const edit: LineEdit =
      state === "accepted"
        ? { start: block.start, deleteCount: block.removed, insert: [] }
        : { start: block.start + block.removed, deleteCount: block.added, insert: [] };
    if (edit.deleteCount === 0) {
      return undefined;
    }
    this.currentLines = applyLineEdit(this.currentLines, edit);
    for (const other of this.blocks) {
      if (other.start > block.start) {
        other.start -= edit.deleteCount;
      }
    }
    return edit;
  }
}
