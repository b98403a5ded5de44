"""Client settings → configuration overrides.

Clients send camelCase keys (`baseUrl`, `apiKey`, `topK`, `testCommand`, ...) in
`initializationOptions` (flat, or under a `kat` key) and in
`workspace/didChangeConfiguration` (`{"settings": {"kat": {...}}}`, or flat). They become
the snake_case overrides of `load_config`, the top layer of the configuration chain.
Keys that are no setting of kat-lsp are ignored (and reported), so that a client
sending its own extra keys does not break every run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kat_lsp.config import FIELD_NAMES, load_config
from kat_lsp.exceptions import ConfigError

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def to_snake(key: str) -> str:
    """`baseUrl` → `base_url`; `top-k` → `top_k`; snake_case stays."""
    return _CAMEL.sub(r"_\1", key).replace("-", "_").lower()


def plain(value: Any) -> Any:
    """pygls hands custom params over as namedtuples: turn them back into dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def overrides_from(raw: Any) -> tuple[dict[str, Any], list[str]]:
    """The configuration overrides in a settings object, and the keys that were ignored."""
    data = plain(raw)
    if not isinstance(data, dict):
        return {}, []
    if isinstance(data.get("kat"), dict):
        data = data["kat"]
    overrides: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in data.items():
        name = to_snake(key)
        if name in FIELD_NAMES:
            if value is not None and value != "":
                overrides[name] = value
        else:
            ignored.append(key)
    return overrides, ignored


def check_overrides(overrides: dict[str, Any]) -> str | None:
    """The problem with these settings on their own (wrong type, bad value), or None."""
    try:
        load_config(None, overrides, environ={})
    except ConfigError as exc:
        return str(exc)
    return None
