"""Checking a tool call's arguments against the tool's own JSON schema.

Arguments that do not fit (unknown or missing parameters, wrong types, values outside
an enum, nesting deeper than MAX_DEPTH) raise FormatError with a message for the model;
the agent loop sends it back (deep nesting: kat_lsp.model.arguments).
"""

from __future__ import annotations

from typing import Any

from kat_lsp.exceptions import FormatError
from kat_lsp.model.arguments import MAX_DEPTH, nesting_depth, too_deep

__all__ = ["MAX_DEPTH", "check_arguments"]

JSON_TYPES = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
              list: "an array", dict: "an object"}  # fmt: skip


def _kind(value: Any) -> str:
    return "null" if value is None else JSON_TYPES.get(type(value), type(value).__name__)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _convert(spec: dict[str, Any], value: Any) -> tuple[Any, str | None]:
    """(value in its schema type, None) or (value, what is wrong with it)."""
    kind = spec.get("type")
    if kind == "string" and not isinstance(value, str):
        return value, f"must be a string, not {_kind(value)}"
    if kind == "integer":
        number = _integer(value)
        if number is None:
            return value, f"must be an integer, not {_kind(value)}"
        value = number
    if kind == "array":
        size = len(value) if isinstance(value, list) else -1
        low, high = spec.get("minItems", 0), spec.get("maxItems", size)
        if not low <= size <= high:
            count = f"{low}" if low == high else f"{low} to {high}"
            return value, f"must be an array of {count} items, not {_kind(value)} {value!r}"
        items = [_convert(spec.get("items", {}), item) for item in value]
        if any(problem for _, problem in items):
            return value, f"must hold only {spec['items']['type']}s, not {value!r}"
        value = [item for item, _ in items]
    if "enum" in spec and value not in spec["enum"]:
        return value, f"must be one of {', '.join(map(str, spec['enum']))}, not {value!r}"
    return value, None


def check_arguments(schema: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """The arguments of a call to the tool `schema` describes, nulls dropped, numbers
    converted; FormatError when they do not fit."""
    function = schema["function"]
    name = function["name"]
    properties: dict[str, Any] = function["parameters"].get("properties", {})
    if not isinstance(arguments, dict):
        raise FormatError(f"{name}: the arguments must be a JSON object, not {_kind(arguments)}.")
    if nesting_depth(arguments) > MAX_DEPTH:
        raise too_deep(name)
    args = {key: value for key, value in arguments.items() if value is not None}
    unknown = sorted(set(args) - set(properties))
    if unknown:
        known = ", ".join(properties) or "none"
        raise FormatError(
            f"{name}: unknown parameter(s) {', '.join(unknown)}; its parameters are: {known}."
        )
    for key in function["parameters"].get("required", []):
        if key not in args:
            raise FormatError(f"{name}: the required parameter `{key}` is missing.")
    for key, value in args.items():
        args[key], problem = _convert(properties[key], value)
        if problem:
            raise FormatError(f"{name}: parameter `{key}` {problem}.")
    return args
