/** The runs the extension knows about and their candidates, fed by the server's results and updates. */
import * as vscode from "vscode";
import {
  statusOfPhase,
  type Candidate,
  type CandidateRef,
  type FixIssueResult,
  type RunStatus,
  type RunSummary,
  type RunUpdate,
  type SampleInfo,
} from "../common/protocol";

export interface RunInfo {
  runId: string;
  issue: string;
  status: RunStatus;
  root?: string;
  /** ISO time the run was created (the server's when known, else first seen here). */
  created: string;
  phase: string;
  percentage: number;
  message: string;
  samples: SampleInfo[];
  candidates: Candidate[];
  rejected: Set<string>;
  accepted: Set<string>;
  /** Order of arrival: the newest run has the largest. */
  seq: number;
}

export class RunStore implements vscode.Disposable {
  private readonly byId = new Map<string, RunInfo>();
  private seq = 0;
  private readonly emitter = new vscode.EventEmitter<RunInfo | undefined>();
  /** Fires with the run that changed (undefined: several did). */
  readonly onDidChange = this.emitter.event;

  /** Newest first (by creation time, then arrival). */
  runs(): RunInfo[] {
    return [...this.byId.values()].sort((a, b) => b.created.localeCompare(a.created) || b.seq - a.seq);
  }

  get(runId: string): RunInfo | undefined {
    return this.byId.get(runId);
  }

  latest(): RunInfo | undefined {
    return this.runs()[0];
  }

  /** The newest run that still has candidates to show. */
  latestWithCandidates(): RunInfo | undefined {
    return this.runs().find((run) => visibleCandidates(run).length > 0);
  }

  running(): RunInfo[] {
    return this.runs().filter((run) => run.status === "running");
  }

  candidate(ref: CandidateRef): Candidate | undefined {
    return this.byId.get(ref.runId)?.candidates.find((c) => c.id === ref.candidateId);
  }

  update(update: RunUpdate, issue?: string, root?: string): RunInfo {
    const run = this.ensure(update.runId);
    run.phase = update.phase;
    run.status = statusOfPhase(update.phase);
    run.percentage = update.percentage;
    run.message = update.message;
    run.samples = update.samples ?? run.samples;
    run.candidates = sortByRank(update.candidates ?? run.candidates);
    run.issue = issue ?? run.issue;
    run.root = root ?? run.root;
    this.emitter.fire(run);
    return run;
  }

  /** A `kat/fixIssue` result: the run is over and these are its final candidates. */
  finished(result: FixIssueResult, issue: string, root?: string): RunInfo {
    const run = this.ensure(result.runId);
    run.issue = issue || run.issue;
    run.root = root ?? run.root;
    if (run.status === "running") {
      run.status = "done";
      run.phase = "done";
    }
    run.percentage = 100;
    run.candidates = sortByRank(result.candidates);
    this.emitter.fire(run);
    return run;
  }

  markStatus(runId: string, status: RunStatus): void {
    const run = this.byId.get(runId);
    if (run) {
      run.status = status;
      run.phase = status;
      this.emitter.fire(run);
    }
  }

  /** Runs a restarted server remembers (`kat.lsp.listRuns`), oldest first in arrival. */
  load(summaries: readonly RunSummary[]): void {
    const ordered = [...summaries].sort((a, b) => (a.created ?? "").localeCompare(b.created ?? ""));
    for (const summary of ordered) {
      const known = this.byId.has(summary.runId);
      const run = this.ensure(summary.runId);
      run.issue = summary.issue;
      run.root = summary.root;
      run.created = summary.created || run.created;
      if (!known || run.status !== "running") {
        run.status = statusOfPhase(summary.status);
        run.phase = summary.status;
        run.candidates = sortByRank(summary.candidates ?? []);
      }
    }
    this.emitter.fire(undefined);
  }

  reject(ref: CandidateRef): void {
    this.byId.get(ref.runId)?.rejected.add(ref.candidateId);
    this.emitter.fire(this.byId.get(ref.runId));
  }

  accept(ref: CandidateRef): void {
    this.byId.get(ref.runId)?.accepted.add(ref.candidateId);
    this.emitter.fire(this.byId.get(ref.runId));
  }

  dispose(): void {
    this.emitter.dispose();
  }

  private ensure(runId: string): RunInfo {
    let run = this.byId.get(runId);
    if (!run) {
      run = {
        runId,
        issue: "",
        created: new Date().toISOString(),
        status: "running",
        phase: "snapshot",
        percentage: 0,
        message: "",
        samples: [],
        candidates: [],
        rejected: new Set(),
        accepted: new Set(),
        seq: ++this.seq,
      };
      this.byId.set(runId, run);
    }
    return run;
  }
}

function sortByRank(candidates: readonly Candidate[]): Candidate[] {
  return [...candidates].sort((a, b) => a.rank - b.rank);
}

/** The candidates to offer, best first, without the rejected ones. */
export function visibleCandidates(run: RunInfo): Candidate[] {
  return run.candidates.filter((c) => !run.rejected.has(c.id));
}

export function samplesDone(samples: readonly SampleInfo[]): { done: number; total: number } {
  const generation = samples.filter((s) => s.phase === "generate");
  const done = generation.filter((s) => s.status !== "pending" && s.status !== "running").length;
  return { done, total: generation.length };
}

/** "#1 · calc.py, util.py": the rank and the files (the server's title repeats the evidence). */
export function candidateName(candidate: Pick<Candidate, "rank" | "files">): string {
  const names = candidate.files.map((f) => decodeURIComponent(f.split("/").pop() ?? f));
  const shown = names.slice(0, 2).join(", ") + (names.length > 2 ? ` +${names.length - 2}` : "");
  return shown ? `#${candidate.rank} · ${shown}` : `#${candidate.rank}`;
}

/** "score 8.5 · tests 2/3 · 2 samples agree" */
export function describeCandidate(candidate: Candidate): string {
  const score = candidate.judgeScore == null ? "not judged" : `score ${formatScore(candidate.judgeScore)}`;
  const agree = candidate.clusterSize === 1 ? "1 sample" : `${candidate.clusterSize} samples agree`;
  return `${score} · tests ${candidate.testsPassed}/${candidate.testsTotal} · ${agree}`;
}

function formatScore(score: number): string {
  return Number.isInteger(score) ? String(score) : score.toFixed(1);
}

/** "generate · 2/4 samples done · <server message>" for the progress notification and status bar. */
export function describeProgress(run: Pick<RunInfo, "phase" | "samples" | "message">): string {
  const parts = [run.phase];
  const { done, total } = samplesDone(run.samples);
  if (total > 0) {
    parts.push(`${done}/${total} samples done`);
  }
  if (run.message && run.message !== run.phase) {
    parts.push(run.message);
  }
  return parts.join(" · ");
}

export function firstLine(text: string, max = 60): string {
  const line = text.trim().split(/\r?\n/, 1)[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
