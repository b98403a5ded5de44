/** The "KAT Candidates" view: runs → ranked candidates → files, live while a run is in flight. */
import * as path from "node:path";
import * as vscode from "vscode";
import { Commands } from "../common/constants";
import type { Candidate } from "../common/protocol";
import { uriFromServer } from "../common/vscodeapi";
import {
  candidateName,
  describeCandidate,
  describeProgress,
  firstLine,
  visibleCandidates,
  type RunInfo,
  type RunStore,
} from "../state/runs";

export interface RunNode {
  kind: "run";
  runId: string;
}

export interface CandidateNode {
  kind: "candidate";
  runId: string;
  candidateId: string;
}

export interface FileNode {
  kind: "file";
  runId: string;
  candidateId: string;
  file: string;
}

export type Node = RunNode | CandidateNode | FileNode;

export class CandidatesProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly store: RunStore) {
    this.subscription = store.onDidChange(() => this.emitter.fire(undefined));
  }

  getChildren(node?: Node): Node[] {
    if (!node) {
      return this.store.runs().map((run) => ({ kind: "run", runId: run.runId }));
    }
    const run = this.store.get(node.runId);
    if (!run) {
      return [];
    }
    if (node.kind === "run") {
      return visibleCandidates(run).map((c) => ({ kind: "candidate", runId: run.runId, candidateId: c.id }));
    }
    if (node.kind === "candidate") {
      const candidate = run.candidates.find((c) => c.id === node.candidateId);
      return (candidate?.files ?? []).map((file) => ({ ...node, kind: "file", file }));
    }
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const run = this.store.get(node.runId);
    if (!run) {
      return new vscode.TreeItem(node.runId);
    }
    if (node.kind === "run") {
      return runItem(run, run === this.store.latest());
    }
    const candidate = run.candidates.find((c) => c.id === node.candidateId);
    if (!candidate) {
      return new vscode.TreeItem(node.candidateId);
    }
    return node.kind === "candidate" ? candidateItem(run, candidate) : fileItem(run, candidate, node.file);
  }

  dispose(): void {
    this.subscription.dispose();
    this.emitter.dispose();
  }
}

const STATUS_ICONS = { running: "sync~spin", done: "checklist", cancelled: "circle-slash", failed: "error" };

function runItem(run: RunInfo, newest: boolean): vscode.TreeItem {
  const state = newest ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed;
  const item = new vscode.TreeItem(firstLine(run.issue) || `Run ${run.runId}`, state);
  item.id = `run:${run.runId}`;
  const count = visibleCandidates(run).length;
  item.description =
    run.status === "running"
      ? describeProgress(run)
      : `${run.status} · ${count} candidate${count === 1 ? "" : "s"}`;
  item.tooltip = new vscode.MarkdownString().appendText(run.issue || run.runId);
  item.iconPath = new vscode.ThemeIcon(STATUS_ICONS[run.status]);
  item.contextValue = run.status === "running" ? "kat.run.running" : "kat.run";
  return item;
}

function candidateItem(run: RunInfo, candidate: Candidate): vscode.TreeItem {
  const item = new vscode.TreeItem(candidateName(candidate), vscode.TreeItemCollapsibleState.Collapsed);
  const ref = { runId: run.runId, candidateId: candidate.id };
  item.id = `candidate:${run.runId}:${candidate.id}`;
  const accepted = run.accepted.has(candidate.id);
  item.description = `${accepted ? "accepted · " : ""}${describeCandidate(candidate)}`;
  item.tooltip = new vscode.MarkdownString()
    .appendMarkdown(`**KAT candidate #${candidate.rank}**\n\n`)
    .appendText(`${describeCandidate(candidate)}\n\n`)
    .appendText(candidate.files.map((f) => relativeFile(run, f)).join("\n"));
  item.iconPath = new vscode.ThemeIcon(
    accepted ? "pass-filled" : candidate.rank === 1 ? "star-full" : "lightbulb",
  );
  item.contextValue = "kat.candidate";
  item.command = { command: Commands.reviewCandidate, title: "Review Candidate", arguments: [ref] };
  return item;
}

function fileItem(run: RunInfo, candidate: Candidate, file: string): vscode.TreeItem {
  const uri = uriFromServer(file);
  const item = new vscode.TreeItem(uri, vscode.TreeItemCollapsibleState.None);
  item.id = `file:${run.runId}:${candidate.id}:${file}`;
  const rel = relativeFile(run, file);
  item.description = path.posix.dirname(rel) === "." ? "" : path.posix.dirname(rel);
  item.contextValue = "kat.candidateFile";
  item.command = {
    command: Commands.reviewCandidate,
    title: "Review Candidate",
    arguments: [{ runId: run.runId, candidateId: candidate.id, file }],
  };
  return item;
}

/** A candidate file's path relative to the run's root (or its full path without a root). */
export function relativeFile(run: Pick<RunInfo, "root">, file: string): string {
  const filePath = uriFromServer(file).fsPath;
  if (!run.root) {
    return filePath;
  }
  const rel = path.relative(uriFromServer(run.root).fsPath, filePath);
  return rel.startsWith("..") ? filePath : rel.split(path.sep).join("/");
}
