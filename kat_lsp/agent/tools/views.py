"""What `str_replace_editor view` shows: numbered file lines or a two-level folder listing.

Both are clipped to a character budget with a note that says how to see the rest.
"""

from __future__ import annotations

from kat_lsp.agent.tools.textfile import TextFile, numbered
from kat_lsp.workspace.confined import Entry

BINARY_SNIFF = 8192


def is_binary(raw: bytes) -> bool:
    return b"\0" in raw[:BINARY_SNIFF]


def binary_note(shown: str, raw: bytes) -> str:
    return (
        f"{shown} is a binary file ({len(raw)} bytes); the editor does not show or edit binary "
        "content. Inspect it through bash if needed (e.g. `file`, `xxd FILE | head`)."
    )


def view_file(shown: str, raw: bytes, view_range: list[int] | None, cap: int) -> str:
    """`cat -n` of the file or of view_range [start, end] (1-based, inclusive, end -1 = last)."""
    if is_binary(raw):
        return binary_note(shown, raw)
    content = TextFile.decode(raw)
    lines = content.lines
    total = len(lines)
    if total == 0:
        return f"{shown} is empty (0 lines)."
    start, end, note = 1, total, ""
    if view_range is not None:
        start, end = view_range
        if not 1 <= start <= total:
            return (
                f"Invalid view_range {view_range}: start must be between 1 and {total} "
                f"({shown} has {total} lines)."
            )
        if end == -1:
            end = total
        elif end < start:
            return (
                f"Invalid view_range {view_range}: end must be at least start, or -1 for the "
                f"end of the file ({shown} has {total} lines)."
            )
        elif end > total:
            note = f"\n({shown} has only {total} lines: showing {start}-{total}.)"
            end = total
    body, count = numbered(lines[start - 1 : end], start, cap)
    header = f"Here's the result of running `cat -n` on {shown}"
    header += " (CRLF line endings, kept on edit):" if content.crlf else ":"
    if count < end - start + 1:
        last = start + count - 1
        note = (
            f"\n[... clipped: showing lines {start}-{last} of {total} ({len(content.text)} "
            f"characters). Use view_range [{last + 1}, -1] (or any range) to see more, or "
            f"`grep -n PATTERN {shown}` through bash to find lines.]"
        )
    return f"{header}\n{body}{note}"


def view_dir(entries: list[Entry], complete: bool, shown: str, cap: int) -> str:
    """Listing rows: folders end in `/`, symbolic links in `@` (listed, never followed)."""
    suffix = {"folder": "/", "link": "@"}
    rows = [entry.rel + suffix.get(entry.kind, "") for entry in entries]
    header = f"Files and folders in {shown}, up to 2 levels deep (hidden items excluded):"
    if not rows:
        return f"{header}\n(empty folder)"
    kept: list[str] = []
    size = 0
    for line in rows:
        if size + len(line) + 1 > cap:
            break
        kept.append(line)
        size += len(line) + 1
    clip = ""
    if len(kept) < len(rows) or not complete:
        more = f"{len(rows) - len(kept)} more entries" if complete else "More entries"
        clip = f"\n[... {more} not shown: view a subfolder, or use `find`/`ls` through bash.]"
    if any(entry.kind == "link" for entry in entries):
        clip += "\n(name@ is a symbolic link: the editor does not follow links, use the real path.)"
    return header + "\n" + "\n".join(kept) + clip
