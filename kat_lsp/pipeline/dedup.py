"""Semantic dedup of candidate patches (DESIGN.md §1 step 3a).

Candidates are grouped by what their changed files become, compared by normal form
(`kat_lsp.pipeline.normalize`): two candidates that differ only in formatting,
comments, quote style, trailing commas or Python docstrings fall into one group; any
real change (an operator, a constant, a name, a string's content) keeps them apart.

A candidate's key covers only the files it really changes: a file whose normal form
equals the snapshot's (a reformatting) drops out. A candidate that changes nothing but
formatting therefore gets `UNCHANGED_KEY`; the pipeline may treat that group as "no fix".
A candidate with no files at all is empty: it has no key and is not grouped.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field

import anyio.to_thread

from kat_lsp.pipeline.normalize import form_digest


def _key(parts: list[str]) -> str:
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


UNCHANGED_KEY = _key([])
"""The key of a candidate whose every change is formatting only."""


@dataclass
class DedupInput:
    """One candidate as the pipeline knows it."""

    sample: int
    """Sample index (earliest = smallest)."""
    files: dict[str, bytes | None]
    """Changed path -> resulting content (None = deleted)."""
    base: dict[str, bytes | None] = field(default_factory=dict)
    """The same paths' content at the snapshot (None or missing = did not exist)."""


@dataclass
class Group:
    """Candidates that produce the same code; the earliest sample represents them."""

    representative: int
    samples: list[int]
    key: str
    """A stable hex digest of the members' normal form."""

    @property
    def size(self) -> int:
        return len(self.samples)

    @property
    def unchanged(self) -> bool:
        """The members only reformat the snapshot."""
        return self.key == UNCHANGED_KEY


def candidate_key(item: DedupInput) -> str | None:
    """The candidate's group key; None for an empty candidate (no files)."""
    if not item.files:
        return None
    parts = []
    for path, content in item.files.items():
        base = item.base.get(path)
        after = form_digest(path, content, base)  # first: it caches the base's tree
        if after != form_digest(path, base):
            name = posixpath.normpath(path.replace("\\", "/"))
            parts.append(f"{name}\0{after}")
    return _key(sorted(parts))


def group_candidates(items: list[DedupInput]) -> list[Group]:
    """Group candidates by key, ordered by representative; empty candidates are dropped.

    CPU-bound: from async code call `group_candidates_async` (or a worker thread)."""
    members: dict[str, list[int]] = {}
    for item in items:
        key = candidate_key(item)
        if key is not None:
            members.setdefault(key, []).append(item.sample)
    groups = [Group(min(s), sorted(s), key) for key, s in members.items()]
    return sorted(groups, key=lambda g: g.representative)


async def group_candidates_async(items: list[DedupInput]) -> list[Group]:
    """`group_candidates` in a worker thread, so that the event loop keeps running."""
    return await anyio.to_thread.run_sync(group_candidates, items)
