"""Text of one file as the editor sees it: `\\n`-normalised for editing, written back as it was.

Owns the byte-exact round trip (CRLF kept, odd bytes kept via surrogateescape, final
newline or its absence kept), `cat -n` numbering and the whitespace-insensitive search
behind the "would match if whitespace were ignored" hint.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TextFile:
    text: str
    """Content with CRLF turned into `\\n` when the file uses CRLF throughout."""
    crlf: bool

    @classmethod
    def decode(cls, raw: bytes) -> TextFile:
        text = raw.decode("utf-8", "surrogateescape")
        crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
        return cls(text.replace("\r\n", "\n") if crlf else text, crlf)

    def encode(self) -> bytes:
        text = self.text.replace("\n", "\r\n") if self.crlf else self.text
        return text.encode("utf-8", "surrogateescape")

    def normalise(self, fragment: str) -> str:
        """A model-written fragment in this file's editing form."""
        return fragment.replace("\r\n", "\n") if self.crlf else fragment

    @property
    def lines(self) -> list[str]:
        return split_lines(self.text)


def split_lines(text: str) -> list[str]:
    """Lines without terminators; a final newline does not start another line."""
    if not text:
        return []
    return text.removesuffix("\n").split("\n")


def join_lines(lines: list[str], final_newline: bool) -> str:
    return "\n".join(lines) + ("\n" if final_newline and lines else "")


def shown(text: str) -> str:
    """Printable form: undecodable bytes become U+FFFD instead of lone surrogates."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def numbered(lines: list[str], first: int, cap: int | None = None) -> tuple[str, int]:
    """`cat -n` rendering of `lines` (numbered from `first`) and how many fit in `cap` chars."""
    out: list[str] = []
    size = 0
    for offset, line in enumerate(lines):
        row = f"{first + offset:6}\t{shown(line)}"
        if cap is not None and out and size + len(row) + 1 > cap:
            break
        out.append(row)
        size += len(row) + 1
    return "\n".join(out), len(out)


def line_of(text: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, offset) + 1


def occurrences(text: str, fragment: str) -> list[int]:
    """Start offsets of every (possibly overlapping) occurrence."""
    found = []
    start = text.find(fragment)
    while start != -1:
        found.append(start)
        start = text.find(fragment, start + 1)
    return found


def _squash(line: str) -> str:
    return "".join(line.split())


def loose_match(text: str, fragment: str) -> tuple[int, int] | None:
    """Lines (first, last) where `fragment` would match if all whitespace were ignored."""
    wanted = [_squash(line) for line in fragment.strip("\n").split("\n")]
    if not any(wanted):
        return None
    have = [_squash(line) for line in split_lines(text)]
    if len(wanted) == 1:
        return next(((i + 1, i + 1) for i, line in enumerate(have) if wanted[0] in line), None)
    span = len(wanted)
    for i in range(len(have) - span + 1):
        window = have[i : i + span]
        if (
            window[0].endswith(wanted[0])
            and window[-1].startswith(wanted[-1])
            and window[1:-1] == wanted[1:-1]
        ):
            return i + 1, i + span
    return None
