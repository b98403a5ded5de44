/** The shapes the server sends and takes (DESIGN.md §4 "LSP"), as the extension reads them. */

export interface Candidate {
  id: string;
  rank: number;
  title: string;
  judgeScore: number | null;
  testsPassed: number;
  testsTotal: number;
  clusterSize: number;
  /** URIs of the files the candidate changes. */
  files: string[];
}

export interface SampleInfo {
  index: number;
  phase: "generate" | "testgen";
  round: number;
  status: string;
  steps: number;
  lastAction: string;
}

export type RunStatus = "running" | "done" | "cancelled" | "failed";

export interface FixIssueParams {
  issue: string;
  root?: string;
  samples?: number;
  rounds?: number;
  workDoneToken?: string;
}

export interface FixIssueResult {
  runId: string;
  /** How the run ended (a run cancelled by `kat.lsp.cancel` still answers). */
  status?: RunStatus;
  candidates: Candidate[];
  error?: string;
}

export interface RunUpdate {
  runId: string;
  phase: string;
  percentage: number;
  message: string;
  samples: SampleInfo[];
  candidates: Candidate[];
}

export interface RunSummary {
  runId: string;
  issue: string;
  status: string;
  root: string;
  created: string;
  candidates: Candidate[];
}

export interface ApplyResult {
  applied: boolean;
  message?: string;
}

/** `kat.lsp.reviewCandidate`: what applying would touch; refused items are never applied. */
export interface CandidateReview {
  files: string[];
  refused: { path: string; reason: string }[];
  flagged: { path: string; reason: string }[];
}

export interface CandidateRef {
  runId: string;
  candidateId: string;
}

export const FINAL_PHASES: ReadonlySet<string> = new Set(["done", "cancelled", "failed"]);

export function statusOfPhase(phase: string): RunStatus {
  return FINAL_PHASES.has(phase) ? (phase as RunStatus) : "running";
}

export function isCandidateRef(value: unknown): value is CandidateRef {
  const v = value as Partial<CandidateRef> | undefined;
  return typeof v?.runId === "string" && typeof v?.candidateId === "string";
}
