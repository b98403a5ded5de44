"""Writes docs/reference/settings.md from KatConfig's fields and their docstrings.

Run `python scripts/gen_settings_doc.py`; tests/test_config.py checks it is up to date.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kat_lsp import config  # noqa: E402

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

## Workspace trust

A repository's `.kat.toml` and `[tool.kat]` are the repository's, not yours: a cloned
project must not switch the sandbox off or send your API key elsewhere. Settings marked
**trusted only** below are taken from those files only when you trust the workspace;
otherwise they are ignored, and `kat-lsp fix` prints (the language server logs) which
ones and how to trust the folder. "trusted only to weaken" means a value that keeps or
tightens the default (`sandbox = "bwrap"`, a lower limit, an empty list) applies anyway.
`model` and the prices are trusted only as well: on a gateway the model name chooses
which company receives your code and what it costs, and a low price would defeat your
`cost_limit`; `test_concurrency` multiplies the per-sample sandbox limits. Settings that
only cost time or tokens (`samples`, timeouts, `step_limit`, ...) and `test_command`
(it runs in the sandbox) apply from workspace files.
The environment, command-line flags and the editor's settings are yours and always apply.

Ways to trust a workspace:

- for one run: `kat-lsp fix --trust-workspace ...`;
- for good: list it (or a folder above it) in your own config file,
  `~/.config/kat-lsp/config.toml` on Linux (the platform's user config folder elsewhere;
  `KAT_CONFIG_DIR` moves it): `trusted_folders = ["/home/me/src"]`. Paths are resolved,
  so a symlink into a trusted folder is judged by where it leads.

Generated from `kat_lsp/config.py` by `scripts/gen_settings_doc.py`.

| setting | type | default | from workspace files | meaning |
| --- | --- | --- | --- | --- |
"""


ALIASES = {
    name: " or ".join(f'"{value}"' for value in get_args(getattr(config, name)))
    for name in ("ToolMode", "SandboxMode")
}


def trust(name: str) -> str:
    weakens = config.TRUSTED_ONLY.get(name)
    if weakens is None:
        return "yes"
    default = getattr(config.KatConfig(), name)
    return "**trusted only to weaken**" if not weakens(default) else "**trusted only**"


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
            if "cpu_count" in default:
                default = "2 × CPUs, at least 8" if "max(8" in default else "number of CPUs"
            default = "[]" if default == "field(default_factory=list)" else default
        kind = ALIASES.get(ast.unparse(node.annotation), ast.unparse(node.annotation)).replace(
            " | ", " or "
        )
        name = node.target.id
        out.append(
            f"| `{name}` | `{kind}` | `{default}` | {trust(name)} | {doc.replace('|', '/')} |"
        )
    return out


def render() -> str:
    return HEADER + "\n".join(rows()) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}", file=sys.stderr)
