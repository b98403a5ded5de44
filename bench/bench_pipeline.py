"""Pipeline benchmarks of the KAT workflow, all against the scripted model in one run:

1. Parallel efficiency: a 6-step trajectory at a fixed latency per model call;
   wall(K=8) / wall(K=1), best of two alternating runs after a warm-up. Goal <= 1.10.
2. Overhead: on the example task (examples/median, its recorded session), pipeline
   wall time minus the time during which at least one model request was in flight,
   as a fraction of that model time, at 0.3 s and 1 s per model call. Goal <= 5 %.
   What is not model time: the snapshot, checkouts, the agents' own commands (bwrap +
   the command), validating the tests on the snapshot, running them on the last
   candidates (the others run while generation goes on).
3. Prefix stability: share of requests within a trajectory whose messages extend the
   previous request's messages exactly; and whether the K first requests of a round
   are identical. Goal 100 %.

    python bench/bench_pipeline.py [--latency 0.3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kat_lsp.config import KatConfig  # noqa: E402
from kat_lsp.model.openai_model import OpenAIModel  # noqa: E402
from kat_lsp.model.scripted import ScriptedServer  # noqa: E402
from kat_lsp.pipeline.runner import Pipeline  # noqa: E402

EXAMPLE = ROOT / "examples" / "median"


class IntervalModel:
    """Records when each model request was in flight."""

    def __init__(self, inner):
        self.inner = inner
        self.intervals: list[tuple[float, float]] = []

    async def query(self, messages, **kwargs):
        t0 = time.perf_counter()
        try:
            return await self.inner.query(messages, **kwargs)
        finally:
            self.intervals.append((t0, time.perf_counter()))


def union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def make_repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    repo.mkdir()
    for name in ("stats.py", "test_stats.py"):
        shutil.copy(EXAMPLE / name, repo / name)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "i"],
        check=True,
    )
    return repo


def run(server: ScriptedServer, repo: Path, **settings) -> tuple[float, IntervalModel, object]:
    config = KatConfig(
        base_url=server.base_url, model="bench", api_key="x", max_retries=0, **settings
    )
    model = IntervalModel(OpenAIModel(config))
    pipeline = Pipeline(config, model)
    t0 = time.perf_counter()
    result = anyio.run(lambda: pipeline.run("bench issue", repo))
    return time.perf_counter() - t0, model, result


def parallel(latency: float, repo: Path) -> tuple[float, float]:
    steps = [{"tool": "bash", "args": {"command": f"echo {i} >> notes.txt"}} for i in range(5)]
    script = {
        "latency": latency,
        "phases": {
            "generate": {"default": [*steps, {"tool": "submit", "args": {}}]},
            "judge": {"default": [{"tool": "score", "args": {"score": 5, "reason": "ok"}}]},
        },
    }
    with ScriptedServer(script) as server:
        run(server, repo, samples=1, test_samples=0)  # warm-up: imports, grammars, client
        w1s, w8s = [], []
        for _ in range(2):
            w1s.append(run(server, repo, samples=1, test_samples=0)[0])
            w8s.append(run(server, repo, samples=8, test_samples=0)[0])
    return min(w1s), min(w8s)


def prefix_stability(requests: list[dict]) -> tuple[int, int, bool]:
    by_traj: dict[tuple, list[dict]] = {}
    for r in requests:
        h = r["headers"]
        if h.get("x-kat-phase") in ("generate", "testgen"):
            by_traj.setdefault((h["x-kat-run"], h["x-kat-phase"], h["x-kat-sample"]), []).append(r)
    ok = total = 0
    for reqs in by_traj.values():
        reqs.sort(key=lambda r: r["time"])
        for prev, cur in itertools.pairwise(reqs):
            total += 1
            a, b = prev["body"]["messages"], cur["body"]["messages"]
            ok += json.dumps(b[: len(a)], sort_keys=True) == json.dumps(a, sort_keys=True)
    firsts = {
        json.dumps(reqs[0]["body"]["messages"]) for k, reqs in by_traj.items() if k[1] == "generate"
    }
    return ok, total, len(firsts) == 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--overhead-latencies", type=float, nargs="+", default=[0.3, 1.0])
    args = parser.parse_args()
    os.environ.setdefault("KAT_CACHE_DIR", tempfile.mkdtemp(prefix="kat-bench-cache-"))
    os.environ.setdefault("KAT_STATE_DIR", tempfile.mkdtemp(prefix="kat-bench-state-"))
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        w1, w8 = parallel(args.latency, repo)
        print(
            f"1. parallel efficiency at {args.latency:g} s/call, 6 steps: wall K=1 {w1:.2f} s, "
            f"K=8 {w8:.2f} s, ratio {w8 / w1:.3f} (goal <= 1.10)"
        )

        requests: list[dict] = []
        for latency in args.overhead_latencies:
            session = json.loads((EXAMPLE / "session.json").read_text())
            session["latency"] = latency
            with ScriptedServer(session) as server:
                wall, model, result = run(server, repo, samples=3, test_samples=2)
                requests = requests or list(server.requests)
            busy = union(model.intervals)
            print(
                f"2. overhead on the example task at {latency:g} s/call (K=3, T=2, "
                f"{len(model.intervals)} model calls): wall {wall:.2f} s, model busy {busy:.2f} s, "
                f"overhead {(wall - busy) / busy:.1%} (goal <= 5 %); "
                f"{len(result.candidates)} candidate(s)"  # type: ignore[attr-defined]
            )
        ok, total, same_first = prefix_stability(requests)
        print(
            f"3. prefix stability: {ok}/{total} requests extend the previous one exactly "
            f"({ok / max(total, 1):.0%}); the K first requests identical: {same_first}"
        )


if __name__ == "__main__":
    main()
