"""Writes docs/reference/settings.md from KatConfig's fields and their docstrings.

Run `python scripts/gen_settings_doc.py`; tests/test_config.py checks it is up to date.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "kat_lsp" / "config.py"
TARGET = ROOT / "docs" / "reference" / "settings.md"

HEADER = """# Settings

Every setting of a run. Layers, lowest to highest: these defaults, `[tool.kat]` in the
workspace's `pyproject.toml` or `.kat.toml` (`.kat.toml` wins when both exist), the
environment (`OPENAI_BASE_URL` → `base_url`, `OPENAI_API_KEY` → `api_key`, `KAT_MODEL` →
`model`), then command-line flags (`kat-lsp fix --help`) or the editor's settings
(LSP `initializationOptions` / `workspace/didChangeConfiguration`, camelCase there:
`baseUrl`, `topK`, ...). Unknown names and values of the wrong type are refused with a
message naming the setting.

Generated from `kat_lsp/config.py` by `scripts/gen_settings_doc.py`.

| setting | type | default | meaning |
| --- | --- | --- | --- |
"""


ALIASES = {"ToolMode": '"function" or "text"', "SandboxMode": '"bwrap" or "none"'}


def rows() -> list[str]:
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "KatConfig")
    out: list[str] = []
    body = cls.body
    for i, node in enumerate(body):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        doc = ""
        nxt = body[i + 1] if i + 1 < len(body) else None
        if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            doc = " ".join(str(nxt.value.value).split())
        default = ast.unparse(node.value) if node.value is not None else ""
        if "default_factory" in default:
            default = "number of CPUs" if "cpu_count" in default else default
        kind = ALIASES.get(ast.unparse(node.annotation), ast.unparse(node.annotation)).replace(
            " | ", " or "
        )
        out.append(f"| `{node.target.id}` | `{kind}` | `{default}` | {doc.replace('|', '/')} |")
    return out


def render() -> str:
    return HEADER + "\n".join(rows()) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}", file=sys.stderr)
