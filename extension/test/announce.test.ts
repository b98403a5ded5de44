import { beforeEach, describe, expect, it } from "vitest";
import * as vscode from "vscode";
import { announce } from "../src/commands/fixIssue";

const stub = vscode as unknown as {
  commands: { executed: Array<{ command: string; args: unknown[] }> };
  window: { messages: Array<{ level: string; text: string }>; answers: string[] };
};

const RUN = "20261202-101010-abcdef";
const BAD_KEY =
  "the model endpoint http://127.0.0.1:9/v1 answered HTTP 401 for model 'm': bad key -- check the API key";

describe("the end of a run without a candidate", () => {
  beforeEach(() => {
    stub.window.messages.length = 0;
    stub.window.answers.length = 0;
    stub.commands.executed.length = 0;
  });

  it("shows the endpoint's error with the buttons that fix it", async () => {
    stub.window.answers.push("Set API Key");
    await announce({ runId: RUN, status: "failed", candidates: [], error: BAD_KEY }, "divide by zero", RUN);
    expect(stub.window.messages).toHaveLength(1);
    expect(stub.window.messages[0].level).toBe("error");
    expect(stub.window.messages[0].text).toContain("HTTP 401");
    expect(stub.commands.executed.map((c) => c.command)).toEqual(["kat.setApiKey"]);
  });

  it("opens the kat settings from the same message", async () => {
    stub.window.answers.push("Open Settings");
    await announce({ runId: RUN, status: "failed", candidates: [], error: BAD_KEY }, "x", RUN);
    expect(stub.commands.executed).toEqual([{ command: "workbench.action.openSettings", args: ["kat."] }]);
  });

  it("says no sample changed the code when there is no error", async () => {
    await announce({ runId: RUN, status: "done", candidates: [] }, "x", RUN);
    expect(stub.window.messages[0].level).toBe("warning");
    expect(stub.window.messages[0].text).toContain("no sample changed the code");
  });
});
