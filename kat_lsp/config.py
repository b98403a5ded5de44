"""Configuration: typed settings and the precedence chain of DESIGN.md §2.

built-in defaults < `[tool.kat]` in the workspace's pyproject.toml or `.kat.toml`
< environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `KAT_MODEL`) < explicit overrides
(CLI flags, LSP initializationOptions and settings).

Settings are flat keys (`samples`, `base_url`, ...) so that every layer speaks the same
names; `docs/reference/settings.md` lists them all.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from kat_lsp.exceptions import ConfigError

ToolMode = Literal["function", "text"]
SandboxMode = Literal["bwrap", "none"]


@dataclass
class KatConfig:
    """Every setting of a run. Field docstrings are the reference documentation."""

    # --- model ---
    base_url: str | None = None
    """OpenAI-compatible endpoint, with its `/v1` suffix (e.g. `http://localhost:8000/v1`)."""
    api_key: str | None = None
    """API key; local servers accept any non-empty string."""
    model: str | None = None
    """Model name as the endpoint knows it."""
    tool_mode: ToolMode = "function"
    """`function`: OpenAI function tools. `text`: one fenced action block per reply."""
    temperature_generate: float = 1.0
    """Sampling temperature of phase `generate` (high: the K samples should differ)."""
    temperature_testgen: float = 0.8
    """Sampling temperature of phase `testgen` (reproduction tests)."""
    temperature_judge: float = 0.2
    """Sampling temperature of phase `judge` (low: scores should be stable)."""
    temperature_reflect: float = 0.3
    """Sampling temperature of phase `reflect`."""
    max_tokens: int | None = None
    """Completion token cap per request (None: the endpoint's default)."""
    request_timeout: float = 300.0
    """Seconds before one model request times out (it is then retried)."""
    max_retries: int = 4
    """Retries of 429/5xx/timeouts/connection errors, with exponential backoff and jitter."""
    price_input_per_mtok: float | None = None
    """Price per million prompt tokens; with the output price it enables cost tracking."""
    price_output_per_mtok: float | None = None
    """Price per million completion tokens."""
    stream: bool = False
    """Stream completions (tokens arrive as they are produced; same result)."""

    # --- limits per sample ---
    step_limit: int = 40
    """Model turns per sample."""
    time_limit: float = 900.0
    """Wall seconds per sample."""
    token_limit: int | None = None
    """Total tokens per sample (None: no limit)."""
    cost_limit: float | None = None
    """Money per sample when prices are known (None: no limit)."""
    format_error_limit: int = 3
    """Consecutive malformed turns (no tool call, several, bad arguments) before the sample ends."""
    command_timeout: float = 60.0
    """Seconds per `bash` command; the whole process group is killed after it."""
    output_cap: int = 10_000
    """Characters of command output shown to the model (head and tail kept)."""

    # --- pipeline ---
    samples: int = 4
    """K: generation samples over all rounds."""
    rounds: int = 1
    """R: rounds the K samples are spread over (reflection between rounds)."""
    top_k: int = 3
    """Candidates that go on from execution filtering to the judge."""
    test_samples: int = 4
    """T: reproduction-test samples (phase testgen)."""
    judge_samples: int = 1
    """J: judge samples per candidate, averaged."""
    test_timeout: float = 60.0
    """Seconds per reproduction test run."""
    test_command: str | None = None
    """The project's own test command, for regression checks (e.g. `pytest -q`)."""
    model_concurrency: int = 8
    """Model requests in flight at once."""
    test_concurrency: int = field(default_factory=lambda: os.cpu_count() or 2)
    """Sandboxed test runs at once."""
    early_stop: bool = True
    """Skip remaining rounds when one group holds most samples and passes every test."""

    # --- safety ---
    sandbox: SandboxMode = "bwrap"
    """`bwrap` (bubblewrap, required by default) or `none` (explicit opt-out: commands run unsandboxed)."""
    sandbox_memory_mb: int = 2048
    """Memory per sample's sandbox in MiB, its /tmp included where cgroups allow (0: no limit)."""
    sandbox_pids: int = 512
    """Processes (and threads) per sample's sandbox (0: no limit)."""
    sandbox_tmp_mb: int = 1024
    """Size of the sandbox's private /tmp in MiB (0: no limit)."""
    sandbox_file_mb: int = 1024
    """Largest file a sandboxed command may write, in MiB (0: no limit)."""
    sandbox_env: list[str] = field(default_factory=list)
    """Names of further environment variables passed into the sandbox (the default is an allowlist)."""
    sandbox_read_paths: list[str] = field(default_factory=list)
    """Further folders the sandbox may read (toolchains outside the usual places)."""

    def temperature(self, phase: str) -> float:
        return float(getattr(self, f"temperature_{phase}"))

    def require_endpoint(self) -> None:
        """Raise ConfigError naming the fix when no endpoint or model is configured."""
        if not self.base_url:
            raise ConfigError(
                "no model endpoint configured: set OPENAI_BASE_URL (e.g. "
                "http://localhost:8000/v1), pass --base-url, or put base_url in "
                "[tool.kat] of pyproject.toml / .kat.toml"
            )
        if not self.model:
            raise ConfigError(
                "no model name configured: set KAT_MODEL, pass --model, or put model in "
                "[tool.kat] of pyproject.toml / .kat.toml"
            )

    def public_dict(self) -> dict[str, Any]:
        """The settings without secrets (for run.json and logs)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["api_key"] = "***" if self.api_key else None
        return data


FIELD_NAMES = frozenset(f.name for f in fields(KatConfig))
ENV_KEYS = {"OPENAI_BASE_URL": "base_url", "OPENAI_API_KEY": "api_key", "KAT_MODEL": "model"}


def _file_settings(root: Path) -> tuple[dict[str, Any], Path | None]:
    """`.kat.toml` wins over `[tool.kat]` of pyproject.toml when both exist."""
    for name in (".kat.toml", "pyproject.toml"):
        path = root / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); fix or remove the file") from exc
        section = data if name == ".kat.toml" else data.get("tool", {}).get("kat")
        if section:
            if "tool" in section and name == ".kat.toml":
                section = section["tool"].get("kat", {})
            return dict(section), path
    return {}, None


def _coerce(name: str, value: Any, source: str) -> Any:
    """Check a value against the field's default type; strings from env/CLI are converted."""
    default = getattr(KatConfig(), name)
    annotation = {f.name: f.type for f in fields(KatConfig)}[name]
    if value is None:
        if "None" in str(annotation):
            return None
        raise ConfigError(f"{source}: setting '{name}' cannot be empty")
    try:
        if name in ("tool_mode", "sandbox"):
            allowed = ("function", "text") if name == "tool_mode" else ("bwrap", "none")
            if value not in allowed:
                raise ValueError(f"must be one of {', '.join(allowed)}")
            return value
        if isinstance(default, list):
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError("must be a list of strings")
            return [i.strip() for i in items if i.strip()]
        kind = type(default) if default is not None else None
        if kind is None:
            kind = float if "float" in str(annotation) else int if "int" in str(annotation) else str
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError("must be true or false")
            return bool(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("must be a whole number")
            converted: Any = int(value)
            if converted < 0:
                raise ValueError("must not be negative")
            return converted
        if kind is float:
            converted = float(value)
            if converted < 0:
                raise ValueError("must not be negative")
            return converted
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: setting '{name}' = {value!r}: {exc}") from exc


def _apply(data: dict[str, Any], layer: dict[str, Any], source: str) -> None:
    for key, value in layer.items():
        name = key.replace("-", "_")
        if name not in FIELD_NAMES:
            known = ", ".join(sorted(FIELD_NAMES))
            raise ConfigError(f"{source}: unknown setting '{key}' (known settings: {known})")
        data[name] = _coerce(name, value, source)


def load_config(
    root: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> KatConfig:
    """Build the configuration for a workspace. Overrides whose value is None are skipped."""
    data: dict[str, Any] = {}
    if root is not None:
        layer, path = _file_settings(Path(root))
        _apply(data, layer, str(path))
    env = os.environ if environ is None else environ
    _apply(
        data, {field: env[key] for key, field in ENV_KEYS.items() if env.get(key)}, "environment"
    )
    _apply(data, {k: v for k, v in (overrides or {}).items() if v is not None}, "settings")
    config = KatConfig(**data)
    if config.samples < 1 or config.rounds < 1 or config.top_k < 1:
        raise ConfigError("samples, rounds and top_k must be at least 1")
    if config.rounds > config.samples:
        raise ConfigError(
            f"rounds ({config.rounds}) cannot exceed samples ({config.samples}): "
            "each round needs at least one sample"
        )
    return config
