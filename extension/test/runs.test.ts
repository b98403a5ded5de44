import { describe, expect, it } from "vitest";
import type { RunUpdate } from "../src/common/protocol";
import { InFlight } from "../src/state/requests";
import { candidate, sample } from "./fixtures";
import {
  candidateName,
  describeCandidate,
  describeProgress,
  RunStore,
  samplesDone,
  visibleCandidates,
} from "../src/state/runs";

function update(runId: string, phase: string, extra: Partial<RunUpdate> = {}): RunUpdate {
  return { runId, phase, percentage: 40, message: "", samples: [], candidates: [], ...extra };
}

describe("RunStore", () => {
  it("follows a run from its updates to its result, candidates best first", () => {
    const store = new RunStore();
    const changes: Array<string | undefined> = [];
    store.onDidChange((run) => changes.push(run?.runId));
    store.update(
      update("r1", "generate", { samples: [sample(0, "submitted"), sample(1, "running")] }),
      "fix div",
      "/proj",
    );
    expect(store.running().map((r) => r.runId)).toEqual(["r1"]);
    expect(store.get("r1")).toMatchObject({
      issue: "fix div",
      root: "/proj",
      status: "running",
      phase: "generate",
    });

    store.finished({ runId: "r1", candidates: [candidate(2), candidate(1)] }, "fix div");
    const run = store.get("r1")!;
    expect(run.status).toBe("done");
    expect(run.candidates.map((c) => c.rank)).toEqual([1, 2]);
    expect(store.running()).toEqual([]);
    expect(changes).toEqual(["r1", "r1"]);
  });

  it("takes the final status a cancelled or failed run reports", () => {
    const store = new RunStore();
    store.update(update("r1", "generate"));
    store.update(update("r1", "cancelled"));
    expect(store.get("r1")?.status).toBe("cancelled");
    store.finished({ runId: "r1", candidates: [] }, "x");
    expect(store.get("r1")?.status).toBe("cancelled");
  });

  it("hides rejected candidates and offers the newest run that still has some", () => {
    const store = new RunStore();
    store.finished({ runId: "old", candidates: [candidate(1)] }, "old issue");
    store.finished({ runId: "new", candidates: [candidate(1), candidate(2)] }, "new issue");
    expect(store.latestWithCandidates()?.runId).toBe("new");
    store.reject({ runId: "new", candidateId: "c1" });
    expect(visibleCandidates(store.get("new")!).map((c) => c.id)).toEqual(["c2"]);
    store.reject({ runId: "new", candidateId: "c2" });
    expect(store.latestWithCandidates()?.runId).toBe("old");
  });

  it("loads the runs a restarted server remembers, oldest first, without undoing a live run", () => {
    const store = new RunStore();
    store.update(update("live", "judge", { candidates: [candidate(1)] }));
    store.load([
      {
        runId: "b",
        issue: "second",
        status: "done",
        root: "/p",
        created: "2026-01-02T00:00:00Z",
        candidates: [candidate(1)],
      },
      {
        runId: "a",
        issue: "first",
        status: "cancelled",
        root: "/p",
        created: "2026-01-01T00:00:00Z",
        candidates: [],
      },
      {
        runId: "live",
        issue: "live one",
        status: "running",
        root: "/p",
        created: "2026-01-03T00:00:00Z",
        candidates: [],
      },
    ]);
    expect(store.runs().map((r) => r.runId)).toEqual(["live", "b", "a"]);
    expect(store.get("a")?.status).toBe("cancelled");
    expect(store.get("live")).toMatchObject({ phase: "judge", issue: "live one" });
    expect(store.get("live")?.candidates).toHaveLength(1);
  });
});

describe("descriptions", () => {
  it("say score, tests and agreement of a candidate", () => {
    expect(
      describeCandidate(candidate(1, { judgeScore: 8.25, testsPassed: 2, testsTotal: 3, clusterSize: 3 })),
    ).toBe("score 8.3 · tests 2/3 · 3 samples agree");
    expect(describeCandidate(candidate(1, { judgeScore: null, clusterSize: 1 }))).toBe(
      "not judged · tests 2/3 · 1 sample",
    );
  });

  it("name a candidate by rank and files", () => {
    expect(
      candidateName(candidate(2, { files: ["file:///p/a.py", "file:///p/src/b%20c.py", "file:///p/d.py"] })),
    ).toBe("#2 · a.py, b c.py +1");
    expect(candidateName(candidate(1, { files: [] }))).toBe("#1");
  });

  it("count the generation samples done for the progress", () => {
    const samples = [
      sample(0, "submitted"),
      sample(1, "no_change"),
      sample(2, "running"),
      sample(3, "pending"),
      sample(0, "submitted", "testgen"),
    ];
    expect(samplesDone(samples)).toEqual({ done: 2, total: 4 });
    expect(describeProgress({ phase: "generate", samples, message: "sample 1 ran pytest" })).toBe(
      "generate · 2/4 samples done · sample 1 ran pytest",
    );
  });
});

describe("InFlight", () => {
  it("gives a new run to the oldest request without one, and cancels through the request", () => {
    const inflight = new InFlight();
    const first = inflight.add("first", "/p");
    const second = inflight.add("second", "/p");
    expect(inflight.claim("r1")).toBe(first);
    expect(inflight.claim("r1")).toBe(first);
    expect(inflight.claim("r2")).toBe(second);
    expect(inflight.forRun("r2")?.issue).toBe("second");
    second.cancel.cancel();
    expect(second.cancel.token.isCancellationRequested).toBe(true);
    inflight.remove(first);
    expect(inflight.list()).toEqual([second]);
  });
});
