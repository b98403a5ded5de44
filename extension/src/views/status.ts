/** The status bar item: idle, starting, running (phase and samples done), or error. */
import * as vscode from "vscode";
import { Commands, VIEW_ID } from "../common/constants";
import type { ServerStateEvent } from "../common/server";
import { describeProgress, samplesDone, type RunStore } from "../state/runs";

export interface StatusText {
  text: string;
  tooltip: string;
  command: string;
  error: boolean;
}

/** What the item shows for a server state and the runs in flight (pure, for the tests). */
export function statusText(server: ServerStateEvent, store: Pick<RunStore, "running">): StatusText {
  if (server.state === "error") {
    return {
      text: "$(error) KAT",
      tooltip: `KAT server error: ${server.detail ?? "see the output"}. Click for the log.`,
      command: Commands.showOutput,
      error: true,
    };
  }
  if (server.state === "starting") {
    return {
      text: "$(loading~spin) KAT",
      tooltip: "KAT: starting the server…",
      command: Commands.showOutput,
      error: false,
    };
  }
  const [run, ...more] = store.running();
  if (run) {
    const { done, total } = samplesDone(run.samples);
    const samples = total > 0 ? ` ${done}/${total}` : "";
    return {
      text: `$(sync~spin) KAT: ${run.phase}${samples}${more.length ? ` (+${more.length})` : ""}`,
      tooltip: `KAT is working: ${describeProgress(run)}. Click to see the candidates.`,
      command: `${VIEW_ID}.focus`,
      error: false,
    };
  }
  if (server.state === "stopped") {
    return {
      text: "$(circle-slash) KAT",
      tooltip: "KAT: the server is stopped. Click for the log.",
      command: Commands.showOutput,
      error: false,
    };
  }
  return {
    text: "$(sparkle) KAT",
    tooltip: "KAT: idle. Click to fix an issue.",
    command: Commands.fixIssue,
    error: false,
  };
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("kat.status", vscode.StatusBarAlignment.Left, 10);
  private server: ServerStateEvent = { state: "starting" };
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly store: RunStore,
    onServerState: vscode.Event<ServerStateEvent>,
  ) {
    this.item.name = "KAT";
    this.subscriptions = [
      onServerState((event) => {
        this.server = event;
        this.render();
      }),
      store.onDidChange(() => this.render()),
    ];
    this.render();
    this.item.show();
  }

  private render(): void {
    const status = statusText(this.server, this.store);
    this.item.text = status.text;
    this.item.tooltip = status.tooltip;
    this.item.command = status.command;
    this.item.backgroundColor = status.error
      ? new vscode.ThemeColor("statusBarItem.errorBackground")
      : undefined;
  }

  dispose(): void {
    this.subscriptions.forEach((s) => s.dispose());
    this.item.dispose();
  }
}
