"""Typed parameters of kat-lsp's requests and commands, checked before any use.

Every id that names something on disk matches its format (`RUN_ID`, `CANDIDATE_ID`), so
a path built from it stays in the state dir; `root` must be an absolute path or
`file://` uri (relative ones would mean the server's working directory). A bad value
is answered with InvalidParams naming the field; the log gets one short line.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.v import format_exception
from pygls.exceptions import JsonRpcInvalidParams

from kat_lsp.server.settings import plain

log = logging.getLogger("kat_lsp.server")

RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
"""`kat_lsp.pipeline.runner.new_run_id`: `20261202-094849-3fa2c1`."""
CANDIDATE_ID = re.compile(r"c\d{1,6}")
"""`c<representative sample>` (kat_lsp.pipeline.state)."""
ISSUE_LIMIT = 200_000
"""Characters of an issue text."""
PATH_LIMIT = 4096
"""Characters of a `root` (the kernel's PATH_MAX)."""
MESSAGE_LIMIT = 300
"""Characters of an InvalidParams message (and its log line)."""


def _matches(pattern: re.Pattern[str], what: str) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if not pattern.fullmatch(value):
            raise ValueError(f'"{attribute.alias}" is not a {what}: {value[:80]!r}')

    return check


def _whole(_: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise ValueError(f'"{attribute.alias}" must be a whole number >= 1, not {value!r}')


def _issue(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.strip():
        raise ValueError('"issue" is missing or empty: describe the problem to fix')
    if len(value) > ISSUE_LIMIT:
        raise ValueError(f'"issue" is longer than {ISSUE_LIMIT} characters')


def _root(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if not value or "\x00" in value or len(value) > PATH_LIMIT:
        raise ValueError('"root" must be an absolute folder path or a file:// uri')
    if not (value.startswith("/") or value.startswith("file:")):
        raise ValueError(f'"root" must be an absolute path or a file:// uri, not {value[:80]!r}')


@attrs.define(frozen=True)
class FixArgs:
    """`kat/fixIssue` / `kat.lsp.fixIssue`."""

    issue: str = attrs.field(validator=_issue)
    root: str | None = attrs.field(default=None, validator=_root)
    samples: int | None = attrs.field(default=None, validator=_whole)
    rounds: int | None = attrs.field(default=None, validator=_whole)
    work_done_token: int | str | None = attrs.field(default=None, alias="workDoneToken")


@attrs.define(frozen=True)
class RunRef:
    """`kat.lsp.cancel`."""

    run_id: str = attrs.field(alias="runId", validator=_matches(RUN_ID, "run id"))


@attrs.define(frozen=True)
class CandidateRef:
    """`kat.lsp.applyCandidate`, `kat.lsp.candidateDiff`, `kat.lsp.applyFileOperations`."""

    run_id: str = attrs.field(alias="runId", validator=_matches(RUN_ID, "run id"))
    candidate_id: str = attrs.field(
        alias="candidateId", validator=_matches(CANDIDATE_ID, 'candidate id (e.g. "c0")')
    )
    confirm_flagged: bool = attrs.field(default=False, alias="confirmFlagged")
    """Apply files flagged by the review (editor tasks, CI configs, ...) too."""


_converter = cattrs.Converter(use_alias=True)
_converter.register_structure_hook(
    int | str | None, lambda v, _: v if v is None or isinstance(v, int | str) else _bad(v)
)

T = TypeVar("T")


def _bad(value: Any) -> Any:
    raise ValueError(f"expected a number or a string, not {_json_type(value)}")


def _strict(value: Any, kind: type) -> Any:
    """`value` when it is exactly of `kind`; the error names its JSON type, never its
    contents (they may be huge)."""
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"expected true or false, not {_json_type(value)}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"expected a whole number, not {_json_type(value)}")
    if kind is str and not isinstance(value, str):
        raise ValueError(f"expected a string, not {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list | tuple) else "an object"


for _kind in (bool, int, str):
    _converter.register_structure_hook(_kind, _strict)


def _format(exc: BaseException, kind: type | None) -> str:
    if type(exc) is ValueError and exc.args:  # our validators' own words
        return str(exc)
    return format_exception(exc, kind)


def _short(exc: BaseException) -> str:
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        notes = cattrs.transform_error(exc, format_exception=_format)
        return "; ".join(notes) if notes else str(exc)
    return str(exc)


def parse(kind: type[T], raw: Any, usage: str, *, arguments: bool = True) -> T:
    """`raw` (a params object, or executeCommand arguments holding one) as `kind`."""
    data = plain(raw)
    if arguments and isinstance(data, list | tuple) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        raise invalid(f"pass one object: {usage}")
    try:
        return _converter.structure(data, kind)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise invalid(f"{_short(exc)} (pass {usage})") from None


def invalid(message: str) -> JsonRpcInvalidParams:
    """InvalidParams with `message` (clipped: values may be huge), logged as one line."""
    if len(message) > MESSAGE_LIMIT:
        message = f"{message[:MESSAGE_LIMIT]}... ({len(message)} characters)"
    log.warning("invalid params: %s", message)
    return JsonRpcInvalidParams(message)
