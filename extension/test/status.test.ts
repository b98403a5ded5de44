import { describe, expect, it } from "vitest";
import { RunStore } from "../src/state/runs";
import { statusText } from "../src/views/status";
import { sample } from "./fixtures";

describe("the status bar item", () => {
  it("says idle and offers Fix This Issue when nothing runs", () => {
    expect(statusText({ state: "running" }, new RunStore())).toMatchObject({
      text: "$(sparkle) KAT",
      command: "kat.fixIssue",
      error: false,
    });
  });

  it("shows the phase and the samples done of a run in flight", () => {
    const store = new RunStore();
    store.update({
      runId: "r1",
      phase: "generate",
      percentage: 10,
      message: "",
      samples: [sample(0, "failed"), sample(1, "running")],
      candidates: [],
    });
    expect(statusText({ state: "running" }, store).text).toBe("$(sync~spin) KAT: generate 1/2");
  });

  it("turns red with the reason when the server failed, and opens the log on click", () => {
    const status = statusText(
      { state: "error", detail: "kat_lsp cannot be imported by python3" },
      new RunStore(),
    );
    expect(status).toMatchObject({ text: "$(error) KAT", command: "kat.showOutput", error: true });
    expect(status.tooltip).toContain("kat_lsp cannot be imported by python3");
  });
});
