/** Run-level commands: cancel a run, refresh the runs list, API key, output, restart. */
import * as vscode from "vscode";
import { SECRET_API_KEY } from "../common/constants";
import { errorText } from "../common/server";
import { firstLine } from "../state/runs";
import type { Services } from "./services";

interface Cancellable {
  runId?: string;
  issue: string;
  cancel(): Promise<void>;
}

function cancellables(services: Services): Cancellable[] {
  const { inflight, store, api } = services;
  const items: Cancellable[] = inflight.list().map((request) => ({
    runId: request.runId,
    issue: request.issue,
    cancel: async () => request.cancel.cancel(),
  }));
  for (const run of store.running()) {
    if (!items.some((item) => item.runId === run.runId)) {
      items.push({ runId: run.runId, issue: run.issue, cancel: () => api.cancel(run.runId) });
    }
  }
  return items;
}

/** Cancels the run named by `arg` (a view item), the only run in flight, or one picked. */
export async function cancelRun(services: Services, arg?: unknown): Promise<void> {
  const wanted = (arg as { runId?: unknown } | undefined)?.runId;
  const items = cancellables(services);
  let target = typeof wanted === "string" ? items.find((i) => i.runId === wanted) : undefined;
  if (!target && typeof wanted === "string") {
    target = { runId: wanted, issue: wanted, cancel: () => services.api.cancel(wanted) };
  }
  if (!target && items.length === 1) {
    target = items[0];
  }
  if (!target && items.length > 1) {
    const picked = await vscode.window.showQuickPick(
      items.map((item) => ({
        label: firstLine(item.issue) || item.runId || "run",
        description: item.runId,
        item,
      })),
      { title: "KAT: Cancel Run" },
    );
    target = picked?.item;
  }
  if (!target) {
    if (items.length === 0) {
      void vscode.window.showInformationMessage("No KAT run is in flight.");
    }
    return;
  }
  try {
    await target.cancel();
  } catch (error) {
    void vscode.window.showErrorMessage(`KAT could not cancel the run: ${errorText(error)}`);
  }
}

/** Loads the runs a (restarted) server remembers for this workspace. */
export async function refreshRuns(services: Services, quiet = false): Promise<void> {
  try {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const runs = await services.api.listRuns();
    services.store.load(
      runs.filter((run) => folders.some((folder) => isInside(run.root, folder))).slice(-20),
    );
  } catch (error) {
    services.output.warn(`Could not list the server's runs: ${errorText(error)}`);
    if (!quiet) {
      void vscode.window.showErrorMessage(`KAT could not list the runs: ${errorText(error)}`);
    }
  }
}

function isInside(root: string | undefined, folder: string): boolean {
  if (!root) {
    return false;
  }
  const path = root.startsWith("file:") ? vscode.Uri.parse(root).fsPath : root;
  return path === folder || path.startsWith(folder.endsWith("/") ? folder : `${folder}/`);
}

export async function setApiKey(services: Services): Promise<void> {
  const key = await vscode.window.showInputBox({
    title: "KAT: Set API Key",
    prompt:
      "API key of your OpenAI-compatible endpoint. It is kept in VS Code's secret storage, never in settings.json. " +
      "Leave empty to remove it (the server then uses OPENAI_API_KEY of its environment).",
    password: true,
    ignoreFocusOut: true,
  });
  if (key === undefined) {
    return;
  }
  if (key.trim()) {
    await services.context.secrets.store(SECRET_API_KEY, key.trim());
  } else {
    await services.context.secrets.delete(SECRET_API_KEY);
  }
  // Not left to secrets.onDidChange alone: VS Code for the web does not always fire it.
  await services.server.sendSettings();
  void vscode.window.showInformationMessage(
    key.trim() ? "KAT: API key saved in the secret storage." : "KAT: API key removed.",
  );
}
