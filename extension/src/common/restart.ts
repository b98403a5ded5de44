/** What vscode-languageclient does when the server errs or exits: our policy, without its pop-ups. */
import {
  CloseAction,
  ErrorAction,
  type CloseHandlerResult,
  type ErrorHandler,
  type ErrorHandlerResult,
} from "vscode-languageclient/node";

export const MAX_RESTARTS = 3;
export const RESTART_WINDOW_MS = 180_000;

/** Restarts a server that crashed after it had started, at most MAX_RESTARTS times in RESTART_WINDOW_MS, silently. */
export class RestartPolicy implements ErrorHandler {
  started = false;
  private restarts: number[] = [];

  constructor(
    private readonly onGiveUp: (detail: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  error(_error: Error, _message: unknown, count: number | undefined): ErrorHandlerResult {
    return { action: (count ?? 1) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true };
  }

  closed(): CloseHandlerResult {
    if (!this.started) {
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    const now = this.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restarts.length >= MAX_RESTARTS) {
      this.onGiveUp(
        `the server stopped ${MAX_RESTARTS + 1} times within ${RESTART_WINDOW_MS / 60_000} minutes`,
      );
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.restarts.push(now);
    return { action: CloseAction.Restart, handled: true };
  }
}
