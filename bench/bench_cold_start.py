"""Cold start: `kat-lsp fix` process start to its first model request.

Spawns the real console script against the scripted server, notes when the server
receives the first request, then stops the run. For scale it also times a bare
`python -c pass` and `python -c "import openai"` in the same loop.
Issue goal: <= 1.5 s.

    python bench/bench_cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kat_lsp.model.scripted import ScriptedServer  # noqa: E402

SCRIPT = {
    "phases": {p: {"default": [{"delay": 30, "content": "..."}]} for p in ("generate", "testgen")}
}


def first_request(server: ScriptedServer, repo: Path, env: dict[str, str]) -> float:
    seen = len(server.requests)
    t0 = time.time()
    proc = subprocess.Popen(
        [
            shutil.which("kat-lsp") or "kat-lsp",
            "fix",
            "--repo",
            str(repo),
            "--issue",
            "bench",
            "-q",
            "--samples",
            "1",
            "--test-samples",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while len(server.requests) == seen:
            if proc.poll() is not None:
                raise SystemExit(f"kat-lsp exited with {proc.returncode} before any request")
            time.sleep(0.002)
        return server.requests[seen]["time"] - t0
    finally:
        proc.kill()
        proc.wait()


def bare(code: str) -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.time() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ours, py, oa = [], [], []
    with ScriptedServer(SCRIPT) as server, tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        (repo / "a.py").write_text("x = 1\n")
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        env = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "KAT_MODEL": "bench",
            "KAT_CACHE_DIR": f"{tmp}/cache",
            "KAT_STATE_DIR": f"{tmp}/state",
        }
        first_request(server, repo, env)  # warm the page cache
        for _ in range(args.runs):
            ours.append(first_request(server, repo, env))
            py.append(bare("pass"))
            oa.append(bare("import openai"))
    print(f"cold start, median of {args.runs} runs:")
    print(f"  kat-lsp fix -> first model request : {statistics.median(ours):.3f} s (goal <= 1.5 s)")
    print(f"  python -c pass                     : {statistics.median(py):.3f} s")
    print(f"  python -c 'import openai'          : {statistics.median(oa):.3f} s")
    print(
        f"  ratio to bare interpreter start    : {statistics.median(ours) / statistics.median(py):.1f}x"
    )


if __name__ == "__main__":
    main()
