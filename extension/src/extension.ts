/** Activation: builds the parts and wires them together; the logic lives in the modules. */
import * as vscode from "vscode";
import { registerCommands } from "./commands";
import { offerInstall } from "./commands/install";
import { refreshRuns } from "./commands/run";
import type { Services } from "./commands/services";
import { ServerApi } from "./common/api";
import {
  CANDIDATE_SCHEME,
  Commands,
  CONFIG_SECTION,
  OUTPUT_NAME,
  RESTART_SETTINGS,
  SECRET_API_KEY,
  VIEW_ID,
} from "./common/constants";
import { onInterpreterChanged } from "./common/python";
import { KatServer } from "./common/server";
import { readSettings } from "./common/settings";
import { CandidateContentProvider, locateFile, type Locate } from "./review/diff";
import { InlineReviewController } from "./review/inline";
import { InFlight } from "./state/requests";
import { RunStore } from "./state/runs";
import { CandidatesProvider } from "./views/candidates";
import { StatusBar } from "./views/status";

let server: KatServer | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel(OUTPUT_NAME, { log: true });
  const store = new RunStore();
  const inflight = new InFlight();
  const services = {} as Services;
  server = new KatServer(context.secrets, output, {
    onMissingModule: (python, check) => void offerInstall(services, python, check),
    onStartFailed: (detail) => void startFailed(services, detail),
    onFixIssueCommand: (args) => Promise.resolve(vscode.commands.executeCommand(Commands.fixIssue, args[0])),
  });
  const api = new ServerApi(server);
  const locate: Locate = (ref, path) => locateFile(store.get(ref.runId), store.candidate(ref), path);
  const diffs = new CandidateContentProvider(api, locate);
  const inline = new InlineReviewController(
    () => readSettings(vscode.workspace.getConfiguration(CONFIG_SECTION)).saveAfterAccept,
  );
  Object.assign(services, { context, output, server, api, store, inflight, diffs, inline, locate });

  const tree = new CandidatesProvider(store);
  context.subscriptions.push(
    output,
    store,
    server,
    diffs,
    inline,
    tree,
    new StatusBar(store, server.onDidChangeState),
    vscode.window.createTreeView(VIEW_ID, { treeDataProvider: tree, showCollapseAll: true }),
    vscode.workspace.registerTextDocumentContentProvider(CANDIDATE_SCHEME, diffs),
    vscode.languages.registerCodeLensProvider([{ scheme: "file" }, { scheme: "untitled" }], inline),
    ...registerCommands(services),
    server.onRunUpdate((update) => {
      const request = store.get(update.runId) ? inflight.forRun(update.runId) : inflight.claim(update.runId);
      store.update(update, request?.issue, request?.root);
    }),
    server.onDidChangeState((event) => {
      if (event.state === "running") {
        void refreshRuns(services, true);
      }
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (RESTART_SETTINGS.some((key) => event.affectsConfiguration(key))) {
        server?.scheduleRestart("kat.serverCommand changed");
      } else if (event.affectsConfiguration(CONFIG_SECTION)) {
        void server?.sendSettings();
      }
    }),
    context.secrets.onDidChange((event) => {
      if (event.key === SECRET_API_KEY) {
        void server?.sendSettings();
      }
    }),
  );
  void onInterpreterChanged(() => {
    if (readSettings(vscode.workspace.getConfiguration(CONFIG_SECTION)).serverCommand.length === 0) {
      server?.scheduleRestart("the Python interpreter changed");
    }
  }).then((disposable) => disposable && context.subscriptions.push(disposable));
  void server.start();
}

async function startFailed(services: Services, detail: string): Promise<void> {
  const choice = await vscode.window.showErrorMessage(
    `KAT could not start its language server: ${detail}. Check kat.serverCommand (or the Python ` +
      "interpreter), then run 'KAT: Restart Server'.",
    "Show Output",
    "Open Settings",
    "Restart Server",
  );
  if (choice === "Show Output") {
    services.output.show();
  } else if (choice === "Open Settings") {
    await vscode.commands.executeCommand("workbench.action.openSettings", "kat.serverCommand");
  } else if (choice === "Restart Server") {
    await services.server.restart("requested by the user");
  }
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
