import { describe, expect, it } from "vitest";
import { CloseAction, ErrorAction } from "vscode-languageclient/node";
import { RestartPolicy } from "../src/common/restart";

describe("RestartPolicy", () => {
  it("does not restart a server that never started (the user must fix the command)", () => {
    const gaveUp: string[] = [];
    const policy = new RestartPolicy((d) => gaveUp.push(d));
    expect(policy.closed()).toEqual({ action: CloseAction.DoNotRestart, handled: true });
    expect(gaveUp).toEqual([]);
  });

  it("restarts a crashed server 3 times in 3 minutes, then gives up and says so", () => {
    let now = 0;
    const gaveUp: string[] = [];
    const policy = new RestartPolicy(
      (d) => gaveUp.push(d),
      () => now,
    );
    policy.started = true;
    const actions = [0, 1, 2, 3].map(() => {
      now += 10_000;
      return policy.closed().action;
    });
    expect(actions).toEqual([
      CloseAction.Restart,
      CloseAction.Restart,
      CloseAction.Restart,
      CloseAction.DoNotRestart,
    ]);
    expect(gaveUp).toEqual(["the server stopped 4 times within 3 minutes"]);
  });

  it("forgets crashes older than 3 minutes", () => {
    let now = 0;
    const policy = new RestartPolicy(
      () => undefined,
      () => now,
    );
    policy.started = true;
    for (let i = 0; i < 3; i++) {
      policy.closed();
    }
    now = 200_000;
    expect(policy.closed().action).toBe(CloseAction.Restart);
  });

  it("keeps going over a few connection errors and shuts down when they repeat", () => {
    const policy = new RestartPolicy(() => undefined);
    expect(policy.error(new Error("x"), undefined, 1).action).toBe(ErrorAction.Continue);
    expect(policy.error(new Error("x"), undefined, 4).action).toBe(ErrorAction.Shutdown);
  });
});
