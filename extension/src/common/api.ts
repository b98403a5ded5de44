/** Typed calls to the server's requests and commands (DESIGN.md §4), over the running client. */
import { randomUUID } from "node:crypto";
import type * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  WorkDoneProgress,
  type WorkDoneProgressBegin,
  type WorkDoneProgressReport,
} from "vscode-languageclient/node";
import { FIX_ISSUE_REQUEST, ServerCommands } from "./constants";
import type {
  ApplyResult,
  CandidateRef,
  CandidateReview,
  FixIssueParams,
  FixIssueResult,
  RunSummary,
} from "./protocol";
import type { KatServer } from "./server";

export interface ProgressValue {
  message?: string;
  percentage?: number;
}

/** What the commands need from the server; tests pass a fake. */
export interface KatApi {
  fixIssue(
    params: FixIssueParams,
    token: vscode.CancellationToken,
    onProgress: (value: ProgressValue) => void,
  ): Promise<FixIssueResult>;
  candidateDiff(ref: CandidateRef): Promise<string>;
  reviewCandidate(ref: CandidateRef): Promise<CandidateReview>;
  applyCandidate(ref: CandidateRef): Promise<ApplyResult>;
  cancel(runId: string): Promise<void>;
  listRuns(): Promise<RunSummary[]>;
}

export class ServerApi implements KatApi {
  constructor(private readonly server: KatServer) {}

  async fixIssue(
    params: FixIssueParams,
    token: vscode.CancellationToken,
    onProgress: (value: ProgressValue) => void,
  ): Promise<FixIssueResult> {
    const client = await this.server.ready();
    const workDoneToken = randomUUID();
    const subscription = client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
      if (value.kind !== "end") {
        const { message, percentage } = value as WorkDoneProgressBegin | WorkDoneProgressReport;
        onProgress({ message, percentage });
      }
    });
    try {
      return await client.sendRequest<FixIssueResult>(FIX_ISSUE_REQUEST, { ...params, workDoneToken }, token);
    } finally {
      subscription.dispose();
    }
  }

  async candidateDiff(ref: CandidateRef): Promise<string> {
    const diff = await this.command<unknown>(ServerCommands.candidateDiff, ref);
    if (typeof diff !== "string") {
      throw new Error(`the server sent no diff for candidate ${ref.candidateId} of run ${ref.runId}`);
    }
    return diff;
  }

  async reviewCandidate(ref: CandidateRef): Promise<CandidateReview> {
    const review = await this.command<Partial<CandidateReview> | null>(ServerCommands.reviewCandidate, ref);
    if (!review || !Array.isArray(review.refused) || !Array.isArray(review.flagged)) {
      throw new Error(`the server sent no review for candidate ${ref.candidateId} of run ${ref.runId}`);
    }
    return { files: review.files ?? [], refused: review.refused, flagged: review.flagged };
  }

  async applyCandidate(ref: CandidateRef): Promise<ApplyResult> {
    const result = await this.command<Partial<ApplyResult> | null>(ServerCommands.applyCandidate, ref);
    return { applied: result?.applied !== false, message: result?.message };
  }

  async cancel(runId: string): Promise<void> {
    await this.command(ServerCommands.cancel, { runId });
  }

  async listRuns(): Promise<RunSummary[]> {
    const runs = await this.command<unknown>(ServerCommands.listRuns);
    return Array.isArray(runs) ? (runs as RunSummary[]) : [];
  }

  private async command<T>(command: string, ...args: unknown[]): Promise<T> {
    const client = await this.server.ready();
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }) as Promise<T>;
  }
}
