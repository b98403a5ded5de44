/** `KAT: Fix This Issue`: ask for the issue, run `kat/fixIssue` under a cancellable progress notification. */
import * as vscode from "vscode";
import { Commands } from "../common/constants";
import type { FixIssueResult } from "../common/protocol";
import { errorText, ServerUnavailableError } from "../common/server";
import { activeWorkspaceFolder } from "../common/vscodeapi";
import { candidateName, describeCandidate, describeProgress, firstLine } from "../state/runs";
import type { Services } from "./services";

export interface FixIssueArgs {
  issue?: string;
  root?: string;
}

function asArgs(value: unknown): FixIssueArgs {
  if (typeof value === "string") {
    return { issue: value };
  }
  const v = (value ?? {}) as Record<string, unknown>;
  return {
    issue: typeof v.issue === "string" ? v.issue : undefined,
    root: typeof v.root === "string" ? v.root : undefined,
  };
}

async function askIssue(): Promise<string | undefined> {
  const editor = vscode.window.activeTextEditor;
  const selection = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : "";
  return vscode.window.showInputBox({
    title: "KAT: Fix This Issue",
    prompt: "Describe the issue: what goes wrong, how to see it, what you expect instead.",
    placeHolder: "e.g. parse_date('2024-02-30') returns March 1st instead of raising ValueError",
    value: selection.trim(),
    ignoreFocusOut: true,
  });
}

export async function fixIssue(services: Services, arg?: unknown): Promise<FixIssueResult | undefined> {
  const args = asArgs(arg);
  const issue = (args.issue ?? (await askIssue()))?.trim();
  if (!issue) {
    return undefined;
  }
  const root = args.root ?? activeWorkspaceFolder()?.uri.fsPath;
  if (!root) {
    void vscode.window.showErrorMessage(
      "KAT works on a folder: open the project folder first (File > Open Folder).",
    );
    return undefined;
  }
  const { api, store, inflight } = services;
  const request = inflight.add(issue, root);
  const title = `KAT: ${firstLine(issue, 50)}`;
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => request.cancel.cancel());
        let shown = 0;
        const report = (message: string | undefined, percentage: number | undefined) => {
          const increment = percentage !== undefined && percentage > shown ? percentage - shown : undefined;
          shown = Math.max(shown, percentage ?? 0);
          progress.report({ message, increment });
        };
        report("starting", 0);
        const updates = store.onDidChange((run) => {
          if (run && run.runId === request.runId) {
            report(describeProgress(run), run.percentage);
          }
        });
        try {
          return await api.fixIssue({ issue, root }, request.cancel.token, (value) => {
            if (!request.runId) {
              report(value.message, value.percentage);
            }
          });
        } finally {
          updates.dispose();
        }
      },
    );
    if (request.cancel.token.isCancellationRequested || result.status === "cancelled") {
      return cancelled(services, request.runId ?? result.runId);
    }
    const run = store.finished(result, issue, root);
    void announce(result, issue, run.runId);
    return result;
  } catch (error) {
    if (error instanceof vscode.CancellationError || request.cancel.token.isCancellationRequested) {
      return cancelled(services, request.runId);
    }
    void showRunError(services, error);
    if (request.runId) {
      store.markStatus(request.runId, "failed");
    }
    return undefined;
  } finally {
    inflight.remove(request);
  }
}

function cancelled(services: Services, runId: string | undefined): undefined {
  if (runId) {
    services.store.markStatus(runId, "cancelled");
  }
  void vscode.window.showInformationMessage("KAT run cancelled. Your files are unchanged.");
  return undefined;
}

/** Buttons of a run that failed, or ended without a candidate, on the model endpoint. */
const ENDPOINT_FIXES: Record<string, [string, ...unknown[]]> = {
  "Open Settings": ["workbench.action.openSettings", "kat."],
  "Set API Key": [Commands.setApiKey],
  "Show Output": [Commands.showOutput],
};

export async function announce(result: FixIssueResult, issue: string, runId: string): Promise<void> {
  const [best] = [...result.candidates].sort((a, b) => a.rank - b.rank);
  if (!best) {
    const failed = result.status === "failed";
    const text = result.error
      ? `KAT ${failed ? "stopped" : "finished"} "${firstLine(issue, 50)}" without a candidate: ${result.error}`
      : `KAT finished "${firstLine(issue, 50)}" without a candidate: no sample changed the code. ` +
        "Try more samples (kat.samples), a more precise issue text, or check the model in 'KAT: Show Output'.";
    const buttons = result.error ? Object.keys(ENDPOINT_FIXES) : ["Show Output"];
    const choice = await (failed
      ? vscode.window.showErrorMessage(text, ...buttons)
      : vscode.window.showWarningMessage(text, ...buttons));
    if (choice) {
      const [command, ...args] = ENDPOINT_FIXES[choice];
      await vscode.commands.executeCommand(command, ...args);
    }
    return;
  }
  const n = result.candidates.length;
  const choice = await vscode.window.showInformationMessage(
    `KAT found ${n} candidate${n === 1 ? "" : "s"} for "${firstLine(issue, 50)}". ` +
      `Best: ${candidateName(best)} (${describeCandidate(best)}).`,
    "Review",
    "Review Inline",
    "Accept Best",
  );
  const ref = { runId, candidateId: best.id };
  const commands: Record<string, string> = {
    Review: Commands.reviewCandidate,
    "Review Inline": Commands.reviewCandidateInline,
    "Accept Best": Commands.acceptCandidate,
  };
  const command = choice && commands[choice];
  if (command) {
    await vscode.commands.executeCommand(command, ref);
  }
}

export async function showRunError(services: Services, error: unknown): Promise<void> {
  const message =
    error instanceof ServerUnavailableError
      ? error.message
      : `KAT could not finish the run: ${errorText(error)}`;
  services.output.error(message);
  const choice = await vscode.window.showErrorMessage(message, "Show Output", "Restart Server");
  if (choice === "Show Output") {
    services.output.show();
  } else if (choice === "Restart Server") {
    await services.server.restart("requested after an error");
  }
}
