import { describe, expect, it } from "vitest";
import type * as vscode from "vscode";
import { RunStore } from "../src/state/runs";
import { CandidatesProvider, relativeFile, type Node } from "../src/views/candidates";
import { candidate, sample } from "./fixtures";

function labels(provider: CandidatesProvider, nodes: Node[]): Array<string | undefined> {
  return nodes.map((n) => {
    const item = provider.getTreeItem(n);
    return (item.label as string | undefined) ?? (item.resourceUri as vscode.Uri | undefined)?.fsPath;
  });
}

describe("the KAT Candidates view", () => {
  it("is empty before any run, so that its welcome text shows", () => {
    expect(new CandidatesProvider(new RunStore()).getChildren()).toEqual([]);
  });

  it("lists runs newest first, then candidates best first, then their files", () => {
    const store = new RunStore();
    const provider = new CandidatesProvider(store);
    store.finished({ runId: "r1", candidates: [candidate(1)] }, "first issue\nwith details", "/proj");
    store.finished(
      {
        runId: "r2",
        candidates: [candidate(2), candidate(1, { files: ["file:///proj/src/a.py", "file:///proj/b.py"] })],
      },
      "second issue",
      "/proj",
    );
    const runs = provider.getChildren();
    expect(labels(provider, runs)).toEqual(["second issue", "first issue"]);
    const [newest] = runs;
    const candidates = provider.getChildren(newest);
    expect(labels(provider, candidates)).toEqual(["#1 · a.py, b.py", "#2 · m2.py"]);
    const files = provider.getChildren(candidates[0]);
    expect(labels(provider, files)).toEqual(["/proj/src/a.py", "/proj/b.py"]);
    expect(files.map((f) => provider.getTreeItem(f).description)).toEqual(["src", ""]);
  });

  it("shows rank, score, tests and agreement, with Review as the click and the inline actions' context", () => {
    const store = new RunStore();
    const provider = new CandidatesProvider(store);
    store.finished(
      {
        runId: "r1",
        candidates: [candidate(1, { judgeScore: 9, testsPassed: 2, testsTotal: 2, clusterSize: 3 })],
      },
      "bug",
    );
    const [node] = provider.getChildren(provider.getChildren()[0]);
    const item = provider.getTreeItem(node!);
    expect(item.description).toBe("score 9 · tests 2/2 · 3 samples agree");
    expect(item.contextValue).toBe("kat.candidate");
    expect(item.command).toMatchObject({
      command: "kat.reviewCandidate",
      arguments: [{ runId: "r1", candidateId: "c1" }],
    });
    store.accept({ runId: "r1", candidateId: "c1" });
    expect(provider.getTreeItem(node!).description).toMatch(/^accepted · /);
  });

  it("updates live while a run is in flight and offers Cancel on it", () => {
    const store = new RunStore();
    const provider = new CandidatesProvider(store);
    let refreshes = 0;
    provider.onDidChangeTreeData(() => refreshes++);
    store.update(
      {
        runId: "r1",
        phase: "generate",
        percentage: 30,
        message: "",
        samples: [sample(0, "submitted"), sample(1, "running")],
        candidates: [],
      },
      "bug",
    );
    const [run] = provider.getChildren();
    const item = provider.getTreeItem(run!);
    expect(item.description).toBe("generate · 1/2 samples done");
    expect(item.contextValue).toBe("kat.run.running");
    store.update({
      runId: "r1",
      phase: "judge",
      percentage: 80,
      message: "",
      samples: [],
      candidates: [candidate(1)],
    });
    expect(provider.getChildren(run)).toHaveLength(1);
    expect(refreshes).toBe(2);
  });

  it("hides a rejected candidate", () => {
    const store = new RunStore();
    const provider = new CandidatesProvider(store);
    store.finished({ runId: "r1", candidates: [candidate(1), candidate(2)] }, "bug");
    store.reject({ runId: "r1", candidateId: "c1" });
    expect(labels(provider, provider.getChildren(provider.getChildren()[0]))).toEqual(["#2 · m2.py"]);
  });

  it("names files relative to the run's root", () => {
    expect(relativeFile({ root: "/proj" }, "file:///proj/src/a.py")).toBe("src/a.py");
    expect(relativeFile({ root: "/proj" }, "file:///other/a.py")).toBe("/other/a.py");
    expect(relativeFile({}, "file:///proj/a.py")).toBe("/proj/a.py");
  });
});
