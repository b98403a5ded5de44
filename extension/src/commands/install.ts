/** The "kat-lsp is not installed" notification: install it with pip (PyPI, a checkout or a wheel), or open the docs. */
import * as vscode from "vscode";
import { pipInstallArgs, type ModuleCheck } from "../common/python";
import type { Services } from "./services";

const PYPI = "From PyPI";
const LOCAL = "From a folder or wheel…";

/** Opens the extension's README (a packaged .vsix stores it as readme.md). */
export async function openDocs(context: vscode.ExtensionContext): Promise<void> {
  for (const name of ["readme.md", "README.md"]) {
    const uri = vscode.Uri.joinPath(context.extensionUri, name);
    try {
      await vscode.workspace.fs.stat(uri);
    } catch {
      continue;
    }
    await vscode.commands.executeCommand("markdown.showPreview", uri);
    return;
  }
}

export async function offerInstall(services: Services, python: string, check: ModuleCheck): Promise<void> {
  if (check.status === "no-python") {
    const choice = await vscode.window.showErrorMessage(
      `KAT needs Python to start its server, but ${python} was not found. Select an interpreter ` +
        'with the Python extension, or set kat.serverCommand to your kat-lsp (e.g. ["/path/to/venv/bin/kat-lsp", "serve"]).',
      "Open Settings",
      "Open Docs",
    );
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "kat.serverCommand");
    } else if (choice === "Open Docs") {
      await openDocs(services.context);
    }
    return;
  }
  const choice = await vscode.window.showErrorMessage(
    `The kat-lsp package is not installed in ${python}, so KAT cannot start its server. ` +
      "Install it there, or set kat.serverCommand to a kat-lsp installed elsewhere.",
    "Install",
    "Open Docs",
    "Open Settings",
  );
  if (choice === "Install") {
    await install(services, python);
  } else if (choice === "Open Docs") {
    await openDocs(services.context);
  } else if (choice === "Open Settings") {
    await vscode.commands.executeCommand("workbench.action.openSettings", "kat.serverCommand");
  }
}

async function install(services: Services, python: string): Promise<void> {
  const source = await vscode.window.showQuickPick(
    [
      { label: PYPI, description: "pip install kat-lsp" },
      { label: LOCAL, description: "a kat-lsp source checkout (pip install <folder>) or a .whl file" },
    ],
    { title: `Install kat-lsp into ${python}` },
  );
  let target: string | undefined;
  if (source?.label === PYPI) {
    target = "kat-lsp";
  } else if (source?.label === LOCAL) {
    const picked = await vscode.window.showOpenDialog({
      title: "A kat-lsp checkout (the folder with pyproject.toml) or a kat-lsp .whl file",
      canSelectFiles: true,
      canSelectFolders: true,
      filters: { "Python wheel": ["whl"] },
    });
    target = picked?.[0]?.fsPath;
  }
  if (!target) {
    return;
  }
  const args = pipInstallArgs(target);
  services.output.info(`Installing kat-lsp: ${python} ${args.join(" ")}`);
  const task = new vscode.Task(
    { type: "kat", action: "install" },
    vscode.TaskScope.Workspace,
    "install kat-lsp",
    "KAT",
    new vscode.ProcessExecution(python, args),
  );
  const execution = await vscode.tasks.executeTask(task);
  const exitCode = await new Promise<number | undefined>((resolve) => {
    const listener = vscode.tasks.onDidEndTaskProcess((e) => {
      if (e.execution === execution) {
        listener.dispose();
        resolve(e.exitCode);
      }
    });
  });
  if (exitCode === 0) {
    void vscode.window.showInformationMessage("kat-lsp is installed: starting the KAT server.");
    await services.server.restart("kat-lsp was installed");
  } else {
    void vscode.window.showErrorMessage(
      `pip could not install kat-lsp into ${python} (exit code ${exitCode ?? "unknown"}): see the terminal for why.`,
    );
  }
}
