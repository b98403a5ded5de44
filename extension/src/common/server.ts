/**
 * The language server's lifecycle: resolve the command, check that kat_lsp is there,
 * start vscode-languageclient, pass settings and the API key, restart (debounced).
 */
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  MessageType,
  ShowMessageNotification,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import {
  CONFIG_SECTION,
  RESTART_DEBOUNCE_MS,
  RUN_UPDATE_NOTIFICATION,
  SECRET_API_KEY,
  ServerCommands,
} from "./constants";
import type { RunUpdate } from "./protocol";
import { RecentMessages } from "./messages";
import { RestartPolicy } from "./restart";
import { checkKatModule, selectedInterpreter, type ModuleCheck } from "./python";
import {
  describeCommand,
  readSettings,
  resolveApiKey,
  resolveServerCommand,
  serverEnvironment,
  serverSettings,
  type ServerCommand,
} from "./settings";
import { forwardTrustGrants, withTrust } from "./trust";
import { firstWorkspaceFolder } from "./vscodeapi";

export type ServerState = "stopped" | "starting" | "running" | "error";

export interface ServerStateEvent {
  state: ServerState;
  detail?: string;
}

/** vscode-languageclient, minus its own notifications: the extension says what went wrong itself. */
class KatLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown): void {
    super.error(message, data, false);
  }
}

/** Raised by `ready()`; the message says what went wrong and what to do. */
export class ServerUnavailableError extends Error {}

export interface ServerHooks {
  /** The server could not start or keeps crashing; `detail` says why. */
  onStartFailed(detail: string): void;
  /** The module is missing in the interpreter (offer to install it). */
  onMissingModule(python: string, check: ModuleCheck): void;
  /** The server asked to run `kat.lsp.fixIssue` (a code action): run it with the UI. */
  onFixIssueCommand(args: unknown[]): Promise<unknown>;
}

export class KatServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private trustGrants: { dispose(): void } | undefined;
  private lastError = "";
  private readonly stateEmitter = new vscode.EventEmitter<ServerStateEvent>();
  private readonly runUpdateEmitter = new vscode.EventEmitter<RunUpdate>();
  readonly onDidChangeState = this.stateEmitter.event;
  readonly onRunUpdate = this.runUpdateEmitter.event;
  /** What the server showed lately (`window/showMessage`), so that commands do not repeat it. */
  readonly messages = new RecentMessages();

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly output: vscode.LogOutputChannel,
    private readonly hooks: ServerHooks,
  ) {}

  /** Starts the server once; concurrent callers share the same start. */
  start(): Promise<LanguageClient | undefined> {
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** The running client, starting it when needed. */
  async ready(): Promise<LanguageClient> {
    const client = this.client?.isRunning() ? this.client : await this.start();
    if (!client) {
      throw new ServerUnavailableError(
        `The KAT language server is not running${this.lastError ? `: ${this.lastError}` : ""}. ` +
          "Check kat.serverCommand or the Python interpreter, then run 'KAT: Restart Server' " +
          "(details in 'KAT: Show Output').",
      );
    }
    return client;
  }

  scheduleRestart(reason: string): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void this.restart(reason), RESTART_DEBOUNCE_MS);
  }

  async restart(reason: string): Promise<void> {
    this.output.info(`Restarting the server: ${reason}`);
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.output.warn(`The server did not stop cleanly: ${String(error)}`);
      }
    }
    this.setState({ state: "stopped" });
  }

  /** Sends the current settings and API key (`workspace/didChangeConfiguration`). */
  async sendSettings(): Promise<void> {
    // A start in progress may have read the settings before they changed: wait for it.
    const client = this.client?.isRunning() ? this.client : await this.starting;
    if (!client?.isRunning()) {
      return; // the next start reads them
    }
    const settings = serverSettings(this.settings(), await this.apiKey());
    await client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { [CONFIG_SECTION]: settings },
    });
  }

  dispose(): void {
    this.trustGrants?.dispose();
    clearTimeout(this.restartTimer);
    void this.stop();
    this.stateEmitter.dispose();
    this.runUpdateEmitter.dispose();
  }

  private settings() {
    return readSettings(vscode.workspace.getConfiguration(CONFIG_SECTION));
  }

  private async apiKey(): Promise<string | undefined> {
    return resolveApiKey(await this.secrets.get(SECRET_API_KEY));
  }

  private setState(event: ServerStateEvent): void {
    this.lastError = event.state === "error" ? (event.detail ?? "") : "";
    this.stateEmitter.fire(event);
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    if (this.client?.isRunning()) {
      return this.client;
    }
    this.setState({ state: "starting" });
    const folder = firstWorkspaceFolder();
    const settings = this.settings();
    const command = resolveServerCommand(settings, await selectedInterpreter(folder?.uri));
    const apiKey = await this.apiKey();
    const env = serverEnvironment(apiKey);
    this.output.info(`Starting the server (${command.source}): ${describeCommand(command)}`);
    if (command.python && !(await this.checkPython(command, env, folder?.uri.fsPath))) {
      return undefined;
    }
    const serverOptions: ServerOptions = {
      command: command.command,
      args: command.args,
      options: { env, cwd: folder?.uri.fsPath },
    };
    const policy = new RestartPolicy((detail) => {
      this.client = undefined; // it stopped for good: the next request starts a new one
      this.failed(detail);
    });
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: this.output,
      errorHandler: policy,
      initializationFailedHandler: () => false,
      initializationOptions: withTrust(serverSettings(settings, apiKey), vscode.workspace),
      middleware: {
        executeCommand: (name, args, next) =>
          name === ServerCommands.fixIssue ? this.hooks.onFixIssueCommand(args) : next(name, args),
      },
    };
    const client = new KatLanguageClient("kat", "KAT", serverOptions, clientOptions);
    client.onNotification(RUN_UPDATE_NOTIFICATION, (params: RunUpdate) => this.runUpdateEmitter.fire(params));
    try {
      await client.start();
    } catch (error) {
      this.failed(`${describeCommand(command)} did not start (${errorText(error)})`);
      void client.dispose().catch(() => undefined);
      return undefined;
    }
    policy.started = true;
    this.trustGrants?.dispose();
    this.trustGrants = forwardTrustGrants(vscode.workspace, (method, params) =>
      client.isRunning() ? client.sendNotification(method, params) : undefined,
    );
    client.onNotification(ShowMessageNotification.type, ({ type, message }) => {
      this.messages.record(message);
      const show =
        type === MessageType.Error
          ? vscode.window.showErrorMessage
          : type === MessageType.Warning
            ? vscode.window.showWarningMessage
            : vscode.window.showInformationMessage;
      void show(message);
    });
    this.client = client;
    this.output.info("The server is running.");
    this.setState({ state: "running" });
    return client;
  }

  private failed(detail: string): void {
    this.output.error(detail);
    this.setState({ state: "error", detail });
    this.hooks.onStartFailed(detail);
  }

  private async checkPython(
    command: ServerCommand,
    env: NodeJS.ProcessEnv,
    cwd: string | undefined,
  ): Promise<boolean> {
    const python = command.python ?? command.command;
    const check = await checkKatModule(python, env, cwd);
    if (check.status === "ok") {
      return true;
    }
    this.output.error(check.detail);
    this.setState({ state: "error", detail: check.detail });
    if (check.status === "missing" || check.status === "no-python") {
      this.hooks.onMissingModule(python, check);
    }
    return false;
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
