"""Prompt templates: the text files in `prompts/`, filled by `{{name}}` placeholders.

Templates are plain text so that prompts are reviewed as prose, not as string literals
scattered in code. Rendering is deliberately dumb (no logic, no escaping) and
deterministic, which keeps prompts byte-identical across samples (prefix caching).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@cache
def template(name: str) -> str:
    return (resources.files("kat_lsp.agent") / "prompts" / f"{name}.md").read_text(encoding="utf-8")


def render(name: str, **values: object) -> str:
    """Fill `{{key}}` placeholders; a placeholder without a value is a programming error."""
    text = template(name)

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template {name!r} needs a value for {{{{{key}}}}}")
        return str(values[key])

    return _PLACEHOLDER.sub(fill, text).rstrip("\n")
