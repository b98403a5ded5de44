/** Review (diff or inline), accept and reject a candidate, chosen by argument, view item or quick pick. */
import * as vscode from "vscode";
import { Commands, CONFIG_SECTION } from "../common/constants";
import { isCandidateRef, type Candidate, type CandidateRef } from "../common/protocol";
import { readSettings } from "../common/settings";
import { errorText } from "../common/server";
import { saveDocuments, uriFromServer } from "../common/vscodeapi";
import { openCandidateDiff, parseCandidateUri } from "../review/diff";
import { candidateName, describeCandidate, visibleCandidates, type RunInfo } from "../state/runs";
import { relativeFile } from "../views/candidates";
import type { Services } from "./services";

export interface Chosen {
  ref: CandidateRef;
  run: RunInfo;
  candidate: Candidate;
  /** A single file to show (the view's file items). */
  file?: string;
}

/** The candidate an argument names (view node, diff editor URI, `{runId, candidateId}`), else a quick pick. */
export async function chooseCandidate(
  services: Services,
  arg: unknown,
  action: string,
): Promise<Chosen | undefined> {
  const { store } = services;
  const ref = arg instanceof vscode.Uri ? parseCandidateUri(arg) : isCandidateRef(arg) ? arg : undefined;
  if (ref) {
    const run = store.get(ref.runId);
    const candidate = store.candidate(ref);
    if (!run || !candidate) {
      void vscode.window.showErrorMessage(
        `KAT does not know candidate ${ref.candidateId} of run ${ref.runId}: refresh the KAT Candidates view.`,
      );
      return undefined;
    }
    const file =
      typeof (arg as { file?: unknown }).file === "string" ? (arg as { file: string }).file : undefined;
    return { ref: { runId: ref.runId, candidateId: ref.candidateId }, run, candidate, file };
  }
  const run = store.latestWithCandidates();
  if (!run) {
    const choice = await vscode.window.showInformationMessage(
      "No KAT candidates yet: run 'KAT: Fix This Issue' first.",
      "Fix This Issue",
    );
    if (choice) {
      await vscode.commands.executeCommand(Commands.fixIssue);
    }
    return undefined;
  }
  const items = visibleCandidates(run).map((candidate) => ({
    label: candidateName(candidate),
    description: describeCandidate(candidate),
    detail: candidate.files.map((f) => relativeFile(run, f)).join(", "),
    candidate,
  }));
  const picked = await vscode.window.showQuickPick(items, {
    title: `KAT: ${action}`,
    placeHolder: `Candidates for "${run.issue.split("\n")[0]}", best first`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  return (
    picked && {
      ref: { runId: run.runId, candidateId: picked.candidate.id },
      run,
      candidate: picked.candidate,
    }
  );
}

export async function reviewCandidate(services: Services, arg?: unknown): Promise<void> {
  const chosen = await chooseCandidate(services, arg, "Review Candidate");
  if (!chosen) {
    return;
  }
  try {
    await openCandidateDiff(
      services.diffs,
      chosen.ref,
      `KAT #${chosen.candidate.rank}`,
      services.locate,
      chosen.file,
    );
  } catch (error) {
    void vscode.window.showErrorMessage(
      `KAT could not show ${candidateName(chosen.candidate)}: ${errorText(error)}`,
    );
  }
}

export async function reviewCandidateInline(services: Services, arg?: unknown): Promise<void> {
  const chosen = await chooseCandidate(services, arg, "Review Candidate Inline");
  if (!chosen) {
    return;
  }
  try {
    if (!(await reviewAllows(services, chosen))) {
      return;
    }
    const files = await services.diffs.files(chosen.ref);
    const problems = await services.inline.start(
      chosen.ref,
      `KAT ${candidateName(chosen.candidate)}`,
      files,
      (p) => services.locate(chosen.ref, p),
    );
    if (problems.length > 0) {
      void vscode.window.showWarningMessage(
        `KAT cannot review every file of ${candidateName(chosen.candidate)} inline: ${problems.join("; ")}. ` +
          "Use 'KAT: Review Candidate' for those.",
      );
    }
  } catch (error) {
    void vscode.window.showErrorMessage(
      `KAT could not review ${candidateName(chosen.candidate)} inline: ${errorText(error)}`,
    );
  }
}

/**
 * The server's apply review, asked before the inline review puts hunks into the editor
 * (it applies them itself, not through `kat.lsp.applyCandidate`): a refused candidate is
 * not reviewed at all, files that run code or configure tools need a yes first.
 */
export async function reviewAllows(services: Services, chosen: Chosen): Promise<boolean> {
  const name = candidateName(chosen.candidate);
  const review = await services.api.reviewCandidate(chosen.ref);
  if (review.refused.length > 0) {
    const why = review.refused.map((r) => `${r.path}: ${r.reason}`).join("; ");
    void vscode.window.showErrorMessage(`KAT will not apply ${name}: ${why}.`);
    return false;
  }
  if (review.flagged.length === 0) {
    return true;
  }
  const what = review.flagged.map((f) => `${f.path} (${f.reason})`).join("; ");
  const answer = await vscode.window.showWarningMessage(
    `${name} changes files that run code or configure tools: ${what}. Review it inline anyway?`,
    { modal: true },
    REVIEW_ANYWAY,
  );
  return answer === REVIEW_ANYWAY;
}

const REVIEW_ANYWAY = "Review Anyway";

export async function acceptCandidate(services: Services, arg?: unknown): Promise<boolean> {
  const chosen = await chooseCandidate(services, arg, "Accept Candidate");
  if (!chosen) {
    return false;
  }
  const name = candidateName(chosen.candidate);
  let result;
  try {
    result = await services.api.applyCandidate(chosen.ref);
  } catch (error) {
    void vscode.window.showErrorMessage(`KAT could not apply ${name}: ${errorText(error)}`);
    return false;
  }
  if (!result.applied) {
    if (services.server.messages.has(result.message)) {
      return false; // the server has said why
    }
    void vscode.window.showErrorMessage(
      `KAT did not apply ${name}: ${result.message ?? "the editor refused the edit"}. ` +
        "Your files are unchanged; run the issue again to get candidates for the current files.",
    );
    return false;
  }
  services.store.accept(chosen.ref);
  const [first] = chosen.candidate.files;
  const settings = readSettings(
    vscode.workspace.getConfiguration(CONFIG_SECTION, first ? uriFromServer(first) : undefined),
  );
  if (settings.saveAfterAccept) {
    const failed = await saveDocuments(chosen.candidate.files.map(uriFromServer));
    if (failed.length > 0) {
      void vscode.window.showWarningMessage(
        `KAT applied ${name} but could not save ${failed.map((u) => u.fsPath).join(", ")}.`,
      );
    }
  }
  services.diffs.refresh(chosen.ref);
  void vscode.window.showInformationMessage(
    `KAT applied ${name}${result.message ? `: ${result.message}` : "."}`,
  );
  return true;
}

export async function rejectCandidate(services: Services, arg?: unknown): Promise<void> {
  const chosen = await chooseCandidate(services, arg, "Reject Candidate");
  if (chosen) {
    services.store.reject(chosen.ref);
    vscode.window.setStatusBarMessage(`KAT: ${candidateName(chosen.candidate)} rejected`, 4000);
  }
}
