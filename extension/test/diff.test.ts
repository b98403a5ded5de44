import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as vscode from "vscode";
import type { CandidateRef } from "../src/common/protocol";
import {
  CandidateContentProvider,
  candidateUri,
  locateFile,
  openCandidateDiff,
  parseCandidateUri,
} from "../src/review/diff";
import { GitRepo } from "./gitRepo";

const stub = vscode as unknown as {
  commands: { executed: Array<{ command: string; args: unknown[] }> };
  window: { messages: Array<{ level: string; text: string }> };
};

const BUGGY = "def div(a, b):\n    return a * b\n\n\ndef sign(x):\n    return 1 if x > 0 else -1\n";
const FIXED =
  "def div(a, b):\n    return a / b\n\n\ndef sign(x):\n    if x == 0:\n        return 0\n    return 1 if x > 0 else -1\n";
const ref: CandidateRef = { runId: "run-1", candidateId: "c1" };

describe("the kat-candidate: documents", () => {
  let repo: GitRepo;
  let patch: string;
  let fetched: number;
  let provider: CandidateContentProvider;
  const locate = (_ref: CandidateRef, path: string) => vscode.Uri.file(join(repo.root, path));

  beforeAll(() => {
    repo = new GitRepo({ "pkg/ops.py": BUGGY, "README.md": "ops\n" });
    repo.write({ "pkg/ops.py": FIXED, "tests/test_ops.py": "from pkg.ops import div\n" });
    patch = repo.diff();
    repo.restore();
  });
  afterAll(() => repo.remove());

  beforeEach(() => {
    fetched = 0;
    stub.commands.executed.length = 0;
    stub.window.messages.length = 0;
    const api = {
      candidateDiff: async (asked: CandidateRef) => {
        expect(asked).toEqual(ref);
        fetched++;
        return patch;
      },
    };
    provider = new CandidateContentProvider(api, locate);
  });

  it("serve the file before and after the candidate, read from the workspace", async () => {
    const before = await provider.provideTextDocumentContent(candidateUri(ref, "pkg/ops.py", "before"));
    const after = await provider.provideTextDocumentContent(candidateUri(ref, "pkg/ops.py", "after"));
    expect(before).toBe(BUGGY);
    expect(after).toBe(FIXED);
    expect(fetched).toBe(1);
  });

  it("serve a created file as empty before", async () => {
    expect(await provider.provideTextDocumentContent(candidateUri(ref, "tests/test_ops.py", "before"))).toBe(
      "",
    );
    expect(await provider.provideTextDocumentContent(candidateUri(ref, "tests/test_ops.py", "after"))).toBe(
      "from pkg.ops import div\n",
    );
  });

  it("show an accepted candidate as applied once refreshed", async () => {
    expect((await provider.sides(ref, "pkg/ops.py")).fit).toBe("exact");
    repo.write({ "pkg/ops.py": FIXED });
    try {
      provider.refresh(ref);
      const sides = await provider.sides(ref, "pkg/ops.py");
      expect(sides).toEqual({ before: BUGGY, after: FIXED, fit: "applied" });
    } finally {
      repo.restore();
    }
  });

  it("round-trip their identity through the URI", () => {
    const uri = candidateUri({ runId: "r&1", candidateId: "c=2" }, "dir/a b.py", "after");
    expect(uri.scheme).toBe("kat-candidate");
    expect(parseCandidateUri(uri)).toEqual({
      runId: "r&1",
      candidateId: "c=2",
      path: "dir/a b.py",
      side: "after",
    });
    expect(parseCandidateUri(vscode.Uri.file("/x.py"))).toBeUndefined();
  });

  it("open in one diff editor for one file and in the multi-file diff for several", async () => {
    await openCandidateDiff(
      provider,
      ref,
      "KAT #1 fix div",
      locate,
      vscode.Uri.file(join(repo.root, "pkg/ops.py")).toString(),
    );
    const [single] = stub.commands.executed;
    expect(single?.command).toBe("vscode.diff");
    expect(single?.args.slice(0, 2).map((u) => parseCandidateUri(u as vscode.Uri)?.side)).toEqual([
      "before",
      "after",
    ]);
    expect(single?.args[2]).toBe("pkg/ops.py (KAT #1 fix div)");

    stub.commands.executed.length = 0;
    await openCandidateDiff(provider, ref, "KAT #1 fix div", locate);
    const [multi] = stub.commands.executed;
    expect(multi?.command).toBe("vscode.changes");
    const entries = multi?.args[1] as vscode.Uri[][];
    expect(entries.map((e) => e[0]?.fsPath)).toEqual([
      join(repo.root, "pkg/ops.py"),
      join(repo.root, "tests/test_ops.py"),
    ]);
    expect(stub.window.messages).toEqual([]);
  });

  it("warn when the file changed since the run so that only the hunks can be shown", async () => {
    repo.write({ "pkg/ops.py": BUGGY.replace("return a * b", "return a ** b") });
    try {
      await openCandidateDiff(provider, ref, "KAT #1", locate);
      expect(stub.window.messages.map((m) => m.level)).toEqual(["warning"]);
      expect(stub.window.messages[0]?.text).toMatch(/changed since the run/);
    } finally {
      repo.restore();
    }
  });
});

describe("locateFile", () => {
  it("puts the path under the run's root, else finds it among the candidate's files", () => {
    expect(locateFile({ root: "/work/proj" }, undefined, "a/b.py")?.fsPath).toBe("/work/proj/a/b.py");
    expect(locateFile({ root: "file:///work/proj" }, undefined, "a/b.py")?.fsPath).toBe("/work/proj/a/b.py");
    expect(locateFile({}, { files: ["file:///elsewhere/a/b.py"] }, "a/b.py")?.fsPath).toBe(
      "/elsewhere/a/b.py",
    );
  });
});
