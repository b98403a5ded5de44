/** `kat/fixIssue` requests in flight, each with its cancel switch and, once known, its run id. */
import * as vscode from "vscode";

export interface PendingRequest {
  issue: string;
  root?: string;
  runId?: string;
  readonly cancel: vscode.CancellationTokenSource;
}

export class InFlight {
  private readonly requests: PendingRequest[] = [];

  add(issue: string, root?: string): PendingRequest {
    const request: PendingRequest = { issue, root, cancel: new vscode.CancellationTokenSource() };
    this.requests.push(request);
    return request;
  }

  remove(request: PendingRequest): void {
    const index = this.requests.indexOf(request);
    if (index >= 0) {
      this.requests.splice(index, 1);
    }
    request.cancel.dispose();
  }

  /**
   * A `kat/runUpdate` for `runId`: the run belongs to the oldest request that has no run
   * yet (the server starts runs in the order they were asked for).
   */
  claim(runId: string): PendingRequest | undefined {
    const owner = this.requests.find((r) => r.runId === runId);
    if (owner) {
      return owner;
    }
    const free = this.requests.find((r) => r.runId === undefined);
    if (free) {
      free.runId = runId;
    }
    return free;
  }

  forRun(runId: string): PendingRequest | undefined {
    return this.requests.find((r) => r.runId === runId);
  }

  list(): readonly PendingRequest[] {
    return this.requests;
  }
}
