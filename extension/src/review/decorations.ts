/** How an inline review looks: removed lines red and struck through, added lines green. */
import * as vscode from "vscode";
import type { Block } from "./hunks";

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
