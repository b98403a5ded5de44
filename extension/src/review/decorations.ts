/**
 * How an inline review looks: removed lines red and struck through, added lines green, and
 * the CodeLens buttons (Accept / Reject per hunk, Accept All / Reject All at the top).
 */
import * as vscode from "vscode";
import { Commands } from "../common/constants";
import type { Block } from "./hunks";

export interface LensSpec {
  line: number;
  command: { title: string; command: string; arguments?: unknown[] };
}

/** The lenses of a review of `uri` whose `pending` blocks are left. */
export function reviewLenses(label: string, uri: string, pending: readonly Block[]): LensSpec[] {
  const count = `${pending.length} ${pending.length === 1 ? "hunk" : "hunks"}`;
  const lenses: LensSpec[] = [
    { line: 0, command: { title: `${label}: ${count} to review`, command: "" } },
    { line: 0, command: { title: "Accept All", command: Commands.acceptAllHunks, arguments: [uri] } },
    { line: 0, command: { title: "Reject All", command: Commands.rejectAllHunks, arguments: [uri] } },
  ];
  for (const block of pending) {
    const args = [uri, block.id];
    lenses.push(
      { line: block.start, command: { title: "Accept", command: Commands.acceptHunk, arguments: args } },
      { line: block.start, command: { title: "Reject", command: Commands.rejectHunk, arguments: args } },
    );
  }
  return lenses;
}

export class HunkDecorations implements vscode.Disposable {
  private readonly removed = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor("diffEditor.removedLineBackground"),
    textDecoration: "line-through",
    opacity: "0.75",
    overviewRulerColor: new vscode.ThemeColor("editorOverviewRuler.deletedForeground"),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });
  private readonly added = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor("diffEditor.insertedLineBackground"),
    overviewRulerColor: new vscode.ThemeColor("editorOverviewRuler.addedForeground"),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });

  /** Decorates the pending `blocks` in `editor` (none: clears it). */
  show(editor: vscode.TextEditor, blocks: readonly Block[]): void {
    const removed: vscode.Range[] = [];
    const added: vscode.Range[] = [];
    for (const block of blocks) {
      if (block.removed > 0) {
        removed.push(new vscode.Range(block.start, 0, block.start + block.removed - 1, 0));
      }
      if (block.added > 0) {
        const first = block.start + block.removed;
        added.push(new vscode.Range(first, 0, first + block.added - 1, 0));
      }
    }
    editor.setDecorations(this.removed, removed);
    editor.setDecorations(this.added, added);
  }

  dispose(): void {
    this.removed.dispose();
    this.added.dispose();
  }
}
