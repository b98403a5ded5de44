"""Decoding a tool call's arguments without recursion limits: a reply nested 50 000 deep
is a FormatError the model is told about, never a RecursionError that ends the sample.

The model's JSON goes through `loads_arguments` (function and text tool mode alike);
`kat_lsp.agent.tools.args` checks decoded arguments against the tool's schema and
their depth again (arguments may come from elsewhere, e.g. a server sending objects).
"""

from __future__ import annotations

import json
from typing import Any

from kat_lsp.exceptions import FormatError

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects in a tool call's arguments (ours need 2)."""


def nesting_depth(value: Any) -> int:
    """How deep arrays and objects nest in `value`, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def too_deep(name: str) -> FormatError:
    return FormatError(
        f"The arguments of your '{name}' call nest arrays or objects more than {MAX_DEPTH} "
        'levels deep; send a flat JSON object of named arguments, e.g. {"command": "ls"}.'
    )


def loads_arguments(name: str, raw: str) -> Any:
    """`json.loads(raw)` for a call's arguments: JSONDecodeError as json raises it,
    FormatError when they nest deeper than MAX_DEPTH."""
    try:
        value = json.loads(raw, strict=False)
    except RecursionError:
        raise too_deep(name) from None
    if nesting_depth(value) > MAX_DEPTH:
        raise too_deep(name)
    return value
