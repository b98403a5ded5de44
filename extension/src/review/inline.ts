/**
 * Inline diff review in the normal editor: each hunk's removed lines (red, struck through)
 * stay above its added lines (green) until the user accepts or rejects it by CodeLens.
 */
import * as vscode from "vscode";
import { INLINE_CONTEXT_KEY } from "../common/constants";
import type { CandidateRef } from "../common/protocol";
import { computeHunks, InlineSession, splitLines, toTextEdit, type Block, type LineEdit } from "./hunks";
import { HunkDecorations, reviewLenses } from "./decorations";
import { candidateSides, type FilePatch } from "./patch";

interface Review {
  session: InlineSession;
  document: vscode.TextDocument;
  label: string;
  ref: CandidateRef;
  wasDirty: boolean;
}

export class InlineReviewController implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly reviews = new Map<string, Review>();
  private readonly lensEmitter = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensEmitter.event;
  private readonly decorations = new HunkDecorations();
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly saveAfterAccept: () => boolean) {
    this.subscriptions = [
      vscode.workspace.onDidChangeTextDocument((e) => this.onDocumentChanged(e.document)),
      vscode.workspace.onDidCloseTextDocument((d) => this.end(d.uri.toString(), false)),
      vscode.window.onDidChangeVisibleTextEditors(() => this.decorateAll()),
      vscode.window.onDidChangeActiveTextEditor(() => this.updateContext()),
    ];
  }

  /** Starts reviewing each file the candidate modifies; returns the messages of files it could not. */
  async start(
    ref: CandidateRef,
    label: string,
    files: FilePatch[],
    locate: (p: string) => vscode.Uri | undefined,
  ): Promise<string[]> {
    const problems: string[] = [];
    let firstEditor: vscode.TextEditor | undefined;
    for (const file of files) {
      if (file.kind !== "modify") {
        problems.push(
          `${file.path}: ${file.kind === "create" ? "a new file" : `a ${file.kind}`}, shown by 'KAT: Review Candidate' only`,
        );
        continue;
      }
      const uri = locate(file.path);
      if (!uri) {
        problems.push(`${file.path}: not found in the workspace`);
        continue;
      }
      if (this.reviews.has(uri.toString())) {
        problems.push(`${file.path}: already under review; finish that review first`);
        continue;
      }
      const document = await vscode.workspace.openTextDocument(uri);
      const sides = candidateSides(file, document.getText());
      if (sides.fit !== "exact") {
        problems.push(
          sides.fit === "applied"
            ? `${file.path}: already contains the candidate's changes`
            : `${file.path}: changed since the run, so the candidate's hunks no longer fit`,
        );
        continue;
      }
      const review: Review = {
        session: new InlineSession(sides.before, computeHunks(sides.before, sides.after)),
        document,
        label,
        ref,
        wasDirty: document.isDirty,
      };
      this.reviews.set(uri.toString(), review);
      await this.applyInitial(review);
      const editor = await vscode.window.showTextDocument(document, { preview: false });
      firstEditor ??= editor;
    }
    if (firstEditor) {
      await vscode.window.showTextDocument(firstEditor.document);
    }
    this.changed();
    return problems;
  }

  isReviewing(uri: vscode.Uri): boolean {
    return this.reviews.has(uri.toString());
  }

  async resolve(action: "accept" | "reject", uri?: string, blockId?: number): Promise<void> {
    const review = this.reviewFor(uri);
    if (!review) {
      void vscode.window.showInformationMessage("No KAT inline review in this editor.");
      return;
    }
    const id = blockId ?? this.blockAtCursor(review)?.id;
    if (id === undefined) {
      void vscode.window.showInformationMessage(
        "Put the cursor in a KAT hunk, or use the Accept / Reject lenses above it.",
      );
      return;
    }
    const edit = action === "accept" ? review.session.accept(id) : review.session.reject(id);
    await this.applyEdit(review, edit);
    await this.afterResolve(review);
  }

  async resolveAll(action: "accept" | "reject", uri?: string): Promise<void> {
    const review = this.reviewFor(uri);
    if (!review) {
      void vscode.window.showInformationMessage("No KAT inline review in this editor.");
      return;
    }
    for (const block of [...review.session.pending()].reverse()) {
      const edit = action === "accept" ? review.session.accept(block.id) : review.session.reject(block.id);
      await this.applyEdit(review, edit);
    }
    await this.afterResolve(review);
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const review = this.reviews.get(document.uri.toString());
    if (!review) {
      return [];
    }
    return reviewLenses(review.label, document.uri.toString(), review.session.pending()).map(
      (lens) => new vscode.CodeLens(new vscode.Range(lens.line, 0, lens.line, 0), lens.command),
    );
  }

  dispose(): void {
    this.subscriptions.forEach((s) => s.dispose());
    this.decorations.dispose();
    this.lensEmitter.dispose();
  }

  private reviewFor(uri?: string): Review | undefined {
    const key = uri ?? vscode.window.activeTextEditor?.document.uri.toString();
    return key ? this.reviews.get(key) : undefined;
  }

  private blockAtCursor(review: Review): Block | undefined {
    const editor = vscode.window.visibleTextEditors.find((e) => e.document === review.document);
    const line = editor?.selection.active.line;
    return review.session
      .pending()
      .find((b) => line !== undefined && line >= b.start && line < b.start + b.removed + b.added);
  }

  /** Inserts every hunk's added lines below its removed lines, in one edit. */
  private async applyInitial(review: Review): Promise<void> {
    const lines = splitLines(review.session.original);
    const eol = eolOf(review.document);
    const edit = new vscode.WorkspaceEdit();
    let shift = 0;
    for (const block of review.session.blocks) {
      const start = block.start - shift + block.removed;
      const inserted = review.session.lines.slice(
        block.start + block.removed,
        block.start + block.removed + block.added,
      );
      shift += block.added;
      if (inserted.length > 0) {
        addEdit(
          edit,
          review.document.uri,
          toTextEdit(lines, { start, deleteCount: 0, insert: inserted }, eol),
        );
      }
    }
    await vscode.workspace.applyEdit(edit);
  }

  private async applyEdit(review: Review, edit: LineEdit | undefined): Promise<void> {
    if (!edit) {
      return;
    }
    const previous = splitLines(review.document.getText());
    const workspaceEdit = new vscode.WorkspaceEdit();
    addEdit(workspaceEdit, review.document.uri, toTextEdit(previous, edit, eolOf(review.document)));
    await vscode.workspace.applyEdit(workspaceEdit);
  }

  private onDocumentChanged(document: vscode.TextDocument): void {
    const review = this.reviews.get(document.uri.toString());
    if (!review || document.getText() === review.session.text(eolOf(document))) {
      return;
    }
    review.session.sync(splitLines(document.getText()));
    if (review.session.done) {
      void this.afterResolve(review);
    } else {
      this.changed();
    }
  }

  private async afterResolve(review: Review): Promise<void> {
    if (!review.session.done) {
      this.changed();
      return;
    }
    const key = review.document.uri.toString();
    const accepted = review.session.blocks.filter((b) => b.state === "accepted").length;
    const total = review.session.blocks.length;
    const untouched = review.document.getText() === review.session.original;
    this.end(key, true);
    if (!review.wasDirty && ((accepted > 0 && this.saveAfterAccept()) || untouched)) {
      await review.document.save();
    }
    void vscode.window.setStatusBarMessage(
      `${review.label}: ${accepted} of ${total} hunks accepted in ${vscode.workspace.asRelativePath(review.document.uri)}`,
      5000,
    );
  }

  private end(key: string, refresh: boolean): void {
    const review = this.reviews.get(key);
    if (!review) {
      return;
    }
    this.reviews.delete(key);
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document === review.document) {
        this.decorations.show(editor, []);
      }
    }
    if (refresh) {
      this.changed();
    }
  }

  private changed(): void {
    this.decorateAll();
    this.lensEmitter.fire();
    this.updateContext();
  }

  private decorateAll(): void {
    for (const editor of vscode.window.visibleTextEditors) {
      const review = this.reviews.get(editor.document.uri.toString());
      if (!review) {
        continue;
      }
      this.decorations.show(editor, review.session.pending());
    }
  }

  private updateContext(): void {
    const uri = vscode.window.activeTextEditor?.document.uri;
    void vscode.commands.executeCommand(
      "setContext",
      INLINE_CONTEXT_KEY,
      !!uri && this.reviews.has(uri.toString()),
    );
  }
}

function eolOf(document: vscode.TextDocument): string {
  return document.eol === vscode.EndOfLine.CRLF ? "\r\n" : "\n";
}

function addEdit(edit: vscode.WorkspaceEdit, uri: vscode.Uri, spec: ReturnType<typeof toTextEdit>): void {
  const range = new vscode.Range(spec.startLine, spec.startCharacter, spec.endLine, spec.endCharacter);
  edit.replace(uri, range, spec.text);
}
