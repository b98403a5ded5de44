/**
 * Diff review: the `kat-candidate:` documents (a candidate's file before and after its
 * patch) and opening them in VS Code's diff editor, one file or several.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import type { KatApi } from "../common/api";
import { CANDIDATE_SCHEME } from "../common/constants";
import type { Candidate, CandidateRef } from "../common/protocol";
import { currentText, uriFromServer } from "../common/vscodeapi";
import type { RunInfo } from "../state/runs";
import { candidateSides, parseCandidatePatch, type FilePatch, type Sides } from "./patch";

export type Side = "before" | "after";

export interface CandidateDocument extends CandidateRef {
  path: string;
  side: Side;
}

export function candidateUri(ref: CandidateRef, filePath: string, side: Side): vscode.Uri {
  const query = new URLSearchParams({ run: ref.runId, candidate: ref.candidateId, side });
  return vscode.Uri.from({ scheme: CANDIDATE_SCHEME, path: `/${filePath}`, query: query.toString() });
}

export function parseCandidateUri(uri: vscode.Uri): CandidateDocument | undefined {
  if (uri.scheme !== CANDIDATE_SCHEME) {
    return undefined;
  }
  const query = new URLSearchParams(uri.query);
  const runId = query.get("run");
  const candidateId = query.get("candidate");
  const side = query.get("side");
  if (!runId || !candidateId || (side !== "before" && side !== "after")) {
    return undefined;
  }
  return { runId, candidateId, side, path: uri.path.replace(/^\//, "") };
}

/** Where a candidate's file lives: under the run's root, else the candidate file that ends with it. */
export function locateFile(
  run: Pick<RunInfo, "root"> | undefined,
  candidate: Pick<Candidate, "files"> | undefined,
  filePath: string,
): vscode.Uri | undefined {
  if (run?.root) {
    return vscode.Uri.file(path.join(uriFromServer(run.root).fsPath, filePath));
  }
  const match = candidate?.files.map(uriFromServer).find((uri) => uri.path.endsWith(`/${filePath}`));
  if (match) {
    return match;
  }
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? vscode.Uri.joinPath(folder.uri, filePath) : undefined;
}

export type Locate = (ref: CandidateRef, filePath: string) => vscode.Uri | undefined;
export type ReadText = (uri: vscode.Uri) => Promise<string | undefined>;

export class CandidateContentProvider implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly patches = new Map<string, Promise<FilePatch[]>>();
  private readonly sidesCache = new Map<string, Promise<Sides>>();
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;

  constructor(
    private readonly api: Pick<KatApi, "candidateDiff">,
    private readonly locate: Locate,
    private readonly readText: ReadText = currentText,
  ) {}

  /** The candidate's files, from `kat.lsp.candidateDiff` (fetched once per candidate). */
  files(ref: CandidateRef): Promise<FilePatch[]> {
    const key = `${ref.runId}\n${ref.candidateId}`;
    let files = this.patches.get(key);
    if (!files) {
      files = this.api
        .candidateDiff({ runId: ref.runId, candidateId: ref.candidateId })
        .then(parseCandidatePatch);
      files.catch(() => this.patches.delete(key));
      this.patches.set(key, files);
    }
    return files;
  }

  sides(ref: CandidateRef, filePath: string): Promise<Sides> {
    const key = `${ref.runId}\n${ref.candidateId}\n${filePath}`;
    let sides = this.sidesCache.get(key);
    if (!sides) {
      sides = this.computeSides(ref, filePath);
      sides.catch(() => this.sidesCache.delete(key));
      this.sidesCache.set(key, sides);
    }
    return sides;
  }

  /** Forget the computed sides of a candidate (the files may have changed) and refresh open diffs. */
  refresh(ref: CandidateRef): void {
    for (const key of [...this.sidesCache.keys()]) {
      if (key.startsWith(`${ref.runId}\n${ref.candidateId}\n`)) {
        this.sidesCache.delete(key);
        const filePath = key.split("\n")[2] ?? "";
        this.emitter.fire(candidateUri(ref, filePath, "before"));
        this.emitter.fire(candidateUri(ref, filePath, "after"));
      }
    }
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const doc = parseCandidateUri(uri);
    if (!doc) {
      return `Not a KAT candidate document: ${uri.toString()}\n`;
    }
    const sides = await this.sides(doc, doc.path);
    return doc.side === "before" ? sides.before : sides.after;
  }

  dispose(): void {
    this.emitter.dispose();
  }

  private async computeSides(ref: CandidateRef, filePath: string): Promise<Sides> {
    const file = (await this.files(ref)).find((f) => f.path === filePath);
    if (!file) {
      throw new Error(`candidate ${ref.candidateId} does not change ${filePath}`);
    }
    const uri = this.locate(ref, file.kind === "rename" && file.oldPath ? file.oldPath : file.path);
    const current = uri ? await this.readText(uri) : undefined;
    return candidateSides(file, current);
  }
}

/** Opens the candidate's changes: one diff editor for one file, the multi-file diff for several. */
export async function openCandidateDiff(
  provider: CandidateContentProvider,
  ref: CandidateRef,
  label: string,
  locate: Locate,
  onlyFile?: string,
): Promise<void> {
  provider.refresh(ref);
  let files = await provider.files(ref);
  if (onlyFile) {
    const wanted = uriFromServer(onlyFile).path;
    const matched = files.filter((f) => wanted.endsWith(`/${f.path}`));
    files = matched.length > 0 ? matched : files;
  }
  if (files.length === 0) {
    void vscode.window.showInformationMessage(`${label} changes no files.`);
    return;
  }
  const fits = await Promise.all(files.map((f) => provider.sides(ref, f.path).then((s) => s.fit)));
  if (fits.includes("hunks-only")) {
    void vscode.window.showWarningMessage(
      `${label}: some files changed since the run, so only the candidate's hunks are shown for them. ` +
        "Accepting it may be refused; run the issue again to get candidates for the current files.",
    );
  }
  const entries = files.map((f) => {
    const resource = locate(ref, f.path) ?? candidateUri(ref, f.path, "after");
    return [resource, candidateUri(ref, f.path, "before"), candidateUri(ref, f.path, "after")] as const;
  });
  const [first] = entries;
  if (entries.length === 1 && first) {
    await vscode.commands.executeCommand("vscode.diff", first[1], first[2], `${files[0]?.path} (${label})`);
    return;
  }
  try {
    await vscode.commands.executeCommand("vscode.changes", label, entries);
  } catch {
    for (const [, before, after] of entries) {
      await vscode.commands.executeCommand(
        "vscode.diff",
        before,
        after,
        `${after.path.slice(1)} (${label})`,
        {
          preview: false,
        },
      );
    }
  }
}
