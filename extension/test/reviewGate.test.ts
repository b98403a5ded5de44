import { beforeEach, describe, expect, it } from "vitest";
import * as vscode from "vscode";
import { reviewAllows, type Chosen } from "../src/commands/candidates";
import type { Services } from "../src/commands/services";
import type { CandidateReview } from "../src/common/protocol";

const stub = vscode as unknown as {
  window: { messages: Array<{ level: string; text: string }>; answers: string[] };
};

const chosen = {
  ref: { runId: "20261202-101010-abcdef", candidateId: "c1" },
  run: {},
  candidate: {
    id: "c1",
    rank: 1,
    title: "c1",
    judgeScore: 8,
    testsPassed: 1,
    testsTotal: 1,
    clusterSize: 1,
    files: [],
  },
} as unknown as Chosen;

function services(review: CandidateReview, asked: unknown[]): Services {
  return {
    api: {
      reviewCandidate: async (ref: unknown) => {
        asked.push(ref);
        return review;
      },
    },
  } as unknown as Services;
}

describe("the inline review asks the server's apply review first", () => {
  beforeEach(() => {
    stub.window.messages.length = 0;
    stub.window.answers.length = 0;
  });

  it("reviews an ordinary candidate without asking", async () => {
    const asked: unknown[] = [];
    const ok = await reviewAllows(services({ files: ["calc.py"], refused: [], flagged: [] }, asked), chosen);
    expect(ok).toBe(true);
    expect(asked).toEqual([chosen.ref]);
    expect(stub.window.messages).toEqual([]);
  });

  it("never reviews a refused candidate, and says why", async () => {
    const review = {
      files: ["calc.py", "key"],
      refused: [{ path: "key", reason: "a symbolic link leaving the repository (to ~/.ssh/id_rsa)" }],
      flagged: [],
    };
    stub.window.answers.push("Review Anyway");
    expect(await reviewAllows(services(review, []), chosen)).toBe(false);
    expect(stub.window.messages).toHaveLength(1);
    expect(stub.window.messages[0].level).toBe("error");
    expect(stub.window.messages[0].text).toContain("key: a symbolic link leaving the repository");
  });

  it("asks before reviewing files that run code or configure tools", async () => {
    const review = {
      files: [".vscode/tasks.json"],
      refused: [],
      flagged: [{ path: ".vscode/tasks.json", reason: "VS Code runs its tasks" }],
    };
    expect(await reviewAllows(services(review, []), chosen)).toBe(false); // dismissed
    expect(stub.window.messages[0].text).toContain(".vscode/tasks.json (VS Code runs its tasks)");
    stub.window.answers.push("Review Anyway");
    expect(await reviewAllows(services(review, []), chosen)).toBe(true);
  });
});
