/**
 * Python: the interpreter selected in the Python extension (when it is installed) and
 * whether `kat_lsp` can be imported by an interpreter.
 */
import { execFile } from "node:child_process";
import * as vscode from "vscode";

const PYTHON_EXTENSION_ID = "ms-python.python";

async function pythonApi() {
  if (!vscode.extensions.getExtension(PYTHON_EXTENSION_ID)) {
    return undefined;
  }
  const { PythonExtension } = await import("@vscode/python-extension");
  return PythonExtension.api();
}

/** The interpreter the Python extension has selected for `resource`, if it is installed. */
export async function selectedInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
  try {
    const api = await pythonApi();
    if (!api) {
      return undefined;
    }
    const active = api.environments.getActiveEnvironmentPath(resource);
    const env = await api.environments.resolveEnvironment(active);
    return env?.executable.uri?.fsPath ?? active.path;
  } catch {
    return undefined;
  }
}

/** Calls `listener` when the user selects another interpreter in the Python extension. */
export async function onInterpreterChanged(listener: () => void): Promise<vscode.Disposable | undefined> {
  try {
    const api = await pythonApi();
    return api?.environments.onDidChangeActiveEnvironmentPath(() => listener());
  } catch {
    return undefined;
  }
}

export type ModuleStatus = "ok" | "missing" | "no-python" | "error";

export interface ModuleCheck {
  status: ModuleStatus;
  detail: string;
}

const FIND_SPEC = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('kat_lsp') else 3)";

/** Whether `python` exists and can import kat_lsp in `cwd` (where the server would start). */
export function checkKatModule(
  python: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd?: string,
  timeoutMs = 20_000,
): Promise<ModuleCheck> {
  return new Promise((resolve) => {
    execFile(python, ["-c", FIND_SPEC], { env, cwd, timeout: timeoutMs }, (error, _stdout, stderr) => {
      if (!error) {
        resolve({ status: "ok", detail: "" });
      } else if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        resolve({ status: "no-python", detail: `${python}: no such program` });
      } else if (error.code === 3) {
        resolve({ status: "missing", detail: `kat_lsp cannot be imported by ${python}` });
      } else {
        resolve({ status: "error", detail: `${python} failed: ${stderr.trim() || error.message}` });
      }
    });
  });
}

/** The arguments of `python -m pip install …` for a PyPI name, a wheel or a project folder. */
export function pipInstallArgs(target: string): string[] {
  return ["-m", "pip", "install", "--upgrade", target];
}
