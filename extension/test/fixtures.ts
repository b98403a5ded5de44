/** Test data shaped like the server's messages. */
import type { Candidate, SampleInfo } from "../src/common/protocol";

export function candidate(rank: number, extra: Partial<Candidate> = {}): Candidate {
  return {
    id: `c${rank}`,
    rank,
    title: `KAT #${rank} · score ${10 - rank}.0 · tests ${3 - Math.min(rank, 3)}/3 · 1 sample`,
    judgeScore: 10 - rank,
    testsPassed: 3 - Math.min(rank, 3),
    testsTotal: 3,
    clusterSize: 1,
    files: [`file:///proj/src/m${rank}.py`],
    ...extra,
  };
}

export function sample(index: number, status: string, phase: SampleInfo["phase"] = "generate"): SampleInfo {
  return { index, phase, round: 0, status, steps: 3, lastAction: "bash" };
}
