/** Small helpers over the VS Code API that several modules need (workspace folders, files). */
import * as vscode from "vscode";

export function firstWorkspaceFolder(): vscode.WorkspaceFolder | undefined {
  return vscode.workspace.workspaceFolders?.[0];
}

/** The folder a run should work on: the active editor's folder, else the first one. */
export function activeWorkspaceFolder(): vscode.WorkspaceFolder | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  return (uri && vscode.workspace.getWorkspaceFolder(uri)) || firstWorkspaceFolder();
}

/** A file's text as the user sees it: the open buffer (unsaved edits too), else the disk. */
export async function currentText(uri: vscode.Uri): Promise<string | undefined> {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (open) {
    return open.getText();
  }
  try {
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch {
    return undefined;
  }
}

/** Saves each of `uris` that is open with unsaved changes; returns the ones that failed. */
export async function saveDocuments(uris: readonly vscode.Uri[]): Promise<vscode.Uri[]> {
  const failed: vscode.Uri[] = [];
  for (const uri of uris) {
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (doc?.isDirty && !(await doc.save())) {
      failed.push(uri);
    }
  }
  return failed;
}

export function uriFromServer(value: string): vscode.Uri {
  return value.includes("://") || value.startsWith("file:")
    ? vscode.Uri.parse(value)
    : vscode.Uri.file(value);
}
