"""Snapshot + sample checkouts against raw `git worktree add`, measured side by side.

Generates a packed repository of ~5,000 small files (one commit, a few dirty and
untracked files) and times, in every round:
  (a1) take_snapshot + 8 create_checkout, one after another, and
  (b)  8 x `git worktree add --detach HEAD` in a copy of the repository (it writes the
       copy's .git), the two interleaved checkout by checkout (order alternating), so
       that both see the same machine load and disk state, and the worktrees in the
       same parent folder as the checkouts;
  (a)  take_snapshot + 8 create_checkout made by 2 worker threads, as the pipeline
       makes them (anyio.to_thread), right beside
  (b2) 8 x `git worktree add` again (the order of the two alternating by round).
Each round starts after a flush and an untimed warm-up (the first file creations after
idle or after a big deletion are several times slower here); removal is not timed.
Prints medians over rounds and the median per-round ratios; the goal is (a)/(b2) <= 1.0x.

    python bench/bench_snapshot.py [--files 5000] [--checkouts 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path, files: int) -> Path:
    repo = root / "user"
    for i in range(files):
        path = repo / f"pkg{i % 10}" / f"mod{i % 100 // 10}" / f"file_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Module {i}."""\n\n\ndef f_{i}(x):\n    return x + {i}\n')
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "-c", "gc.auto=0", "commit", "-qm", "i")
    git(repo, "gc", "-q")  # packed, like most real repositories (and no background gc)
    for i in range(0, 50, 10):
        (repo / f"pkg{i % 10}" / "mod0" / f"file_{i}.py").write_text(f"# dirty {i}\n")
    for i in range(3):
        (repo / f"untracked_{i}.py").write_text("x = 1\n")
    return repo


def settle() -> None:
    """Flush pending writes and deletions so that neither side pays for the other's
    (on ext4 with `discard`, file creation stays slow for seconds after a big rmtree)."""
    os.sync()
    time.sleep(2)


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def threaded(repo: Path, run: str, k: int) -> None:
    from kat_lsp.workspace import create_checkout, take_snapshot

    snapshot = take_snapshot(repo, run_id=run)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda i: create_checkout(snapshot, f"s{i}"), range(k)))


def one_round(repo: Path, copy: Path, r: int, k: int) -> dict[str, float]:
    """Paired sequential timings, then the threaded blocks; removal afterwards."""
    from kat_lsp.paths import cache_dir
    from kat_lsp.workspace import create_checkout, remove_run, take_snapshot

    # Worktrees go beside our checkouts: file creation speed depends on where on the
    # disk the folder lies (ext4 allocation groups), by several times here.
    scratch = cache_dir() / "checkouts" / f"worktrees-{r}"

    def worktree(name: str) -> None:
        git(copy, "worktree", "add", "-q", "--detach", str(scratch / name), "HEAD")

    def worktrees(prefix: str) -> None:
        for i in range(k):
            worktree(f"{prefix}{i}")

    settle()
    warm = take_snapshot(repo, run_id=f"warm{r}")  # the first creations after idle are slow
    create_checkout(warm, "w")
    worktree(f"warm{r}")
    start = time.perf_counter()
    snapshot = take_snapshot(repo, run_id=f"a1-{r}")
    result = {"a1": time.perf_counter() - start, "b": 0.0}
    for i in range(k):  # interleaved, the order alternating: both see the same disk
        pair: list[tuple[str, Callable[[], object]]] = [
            ("a1", partial(create_checkout, snapshot, f"s{i}")),
            ("b", partial(worktree, f"wt{r}-{i}")),
        ]
        for side, func in pair if i % 2 == 0 else pair[::-1]:
            result[side] += timed(func)
    blocks: list[tuple[str, Callable[[], object]]] = [
        ("a", partial(threaded, repo, f"a-{r}", k)),
        ("b2", partial(worktrees, f"wu{r}-")),
    ]
    for side, func in blocks if r % 2 == 0 else blocks[::-1]:
        result[side] = timed(func)
    for run in (f"warm{r}", f"a1-{r}", f"a-{r}"):
        remove_run(run)
    shutil.rmtree(scratch)
    git(copy, "worktree", "prune")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--checkouts", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    k = args.checkouts
    with tempfile.TemporaryDirectory(prefix="kat-bench-") as tmp:
        scratch = Path(tmp)
        os.environ["KAT_CACHE_DIR"] = str(scratch / "cache")
        repo = make_repo(scratch, args.files)
        copy = scratch / "copy"
        shutil.copytree(repo, copy, symlinks=True)
        rounds = [one_round(repo, copy, r, k) for r in range(args.repeat)]
        print(f"repository: {args.files} files, {k} checkouts, {args.repeat} rounds, in {tmp}")
        rows = [
            (f"(a1) take_snapshot + {k} create_checkout, 1 thread ", "a1", "b"),
            (f"(b)  {k} x git worktree add, interleaved with (a1) ", "b", "b"),
            (f"(a)  take_snapshot + {k} create_checkout, 2 threads", "a", "b2"),
            (f"(b2) {k} x git worktree add, right beside (a)      ", "b2", "b2"),
        ]
        for label, side, base in rows:
            med = statistics.median(r[side] for r in rounds)
            ratio = statistics.median(r[side] / r[base] for r in rounds)
            shown = " ".join(f"{r[side] * 1000:.0f}" for r in rounds)
            print(f"{label}  median {med * 1000:7.0f} ms  ratio {ratio:4.2f}x  rounds: {shown}")
        print("ratio: median over rounds of the time against its (b) of the same round")
        print("goal: (a)/(b2) <= 1.0x")


if __name__ == "__main__":
    main()
