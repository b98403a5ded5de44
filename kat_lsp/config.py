"""Configuration: typed settings and their precedence chain.

built-in defaults < `[tool.kat]` in the workspace's pyproject.toml or `.kat.toml`
< environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `KAT_MODEL`) < explicit overrides
(CLI flags, LSP initializationOptions and settings).

The workspace's files are the repository's, not the user's: settings in TRUSTED_ONLY
(those that weaken the sandbox or redirect the key) come from them only when the user
trusts the workspace (`trusted_folders` in the user's config file, `--trust-workspace`,
the editor's workspace trust). Environment and overrides are the user's and always apply.

Settings are flat keys (`samples`, `base_url`, ...) so that every layer speaks the same
names; `docs/reference/settings.md` lists them all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, cast, get_args, get_origin, get_type_hints

from kat_lsp.exceptions import ConfigError
from kat_lsp.userconfig import is_trusted, read_toml, user_config_file

log = logging.getLogger(__name__)

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
    """Seconds one attempt of a model request may take in all (a deadline over the whole attempt, not per read); then it is retried."""
    stream_stall_timeout: float = 60.0
    """Seconds a streamed reply may go without a byte once its first chunk came (never more than request_timeout)."""
    max_retries: int = 4
    """Retries of 408/409/429/5xx, timeouts, dropped, stalled or cut streams and refused connections, with backoff."""
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
    sandbox_concurrency: int = field(default_factory=lambda: max(8, 2 * (os.cpu_count() or 4)))
    """Samples (each a checkout and a sandbox) alive at once; the others wait."""
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

    # Not settings (no annotation, so no dataclass fields): what load_config dropped from
    # the workspace's files because the workspace is not trusted, and the file.
    untrusted_ignored = cast("tuple[str, ...]", ())
    untrusted_source = cast("str | None", None)

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
_HINTS = get_type_hints(KatConfig)
_DEFAULTS = KatConfig()


def _above_default_or_unlimited(name: str) -> Callable[[Any], bool]:
    return lambda value: value == 0 or value > getattr(_DEFAULTS, name)


TRUSTED_ONLY: dict[str, Callable[[Any], bool]] = {
    "base_url": lambda _: True,  # would send the user's key and code to another host
    "api_key": lambda _: True,  # would log the user's code under someone else's account
    "model": lambda _: True,  # on a gateway the name picks who gets the code, and the price
    "price_input_per_mtok": lambda _: True,  # a low price would defeat the user's cost_limit
    "price_output_per_mtok": lambda _: True,
    "sandbox": lambda value: value != "bwrap",
    "sandbox_env": lambda value: bool(value),  # would pass the user's secrets in
    "sandbox_read_paths": lambda value: bool(value),  # would show the user's files
    **{
        name: _above_default_or_unlimited(name)
        for name in (
            "sandbox_memory_mb",
            "sandbox_pids",
            "sandbox_tmp_mb",
            "sandbox_file_mb",
            "test_concurrency",  # the per-sample limits multiply by it
            "sandbox_concurrency",
        )
    },
}
"""Settings a workspace file may set only when the user trusts the workspace, each with
the test of a value that weakens safety (`docs/reference/settings.md`, "trusted only")."""


def _file_settings(root: Path) -> tuple[dict[str, Any], Path | None]:
    """`.kat.toml` wins over `[tool.kat]` of pyproject.toml when both exist."""
    for name in (".kat.toml", "pyproject.toml"):
        path = root / name
        data = read_toml(path)
        if data is None:
            continue
        section: Any = data
        if name == "pyproject.toml" or "tool" in data:
            section = data.get("tool", {})
            section = section.get("kat") if isinstance(section, dict) else section
        if section is None or section == {}:
            continue
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [tool.kat] must be a table of settings, not {section!r}")
        return dict(section), path
    return {}, None


def _coerce(name: str, value: Any, source: str) -> Any:
    """Check a value against the field's type; strings from env/CLI are converted."""
    hint = _HINTS[name]
    args = get_args(hint)
    optional = type(None) in args
    if optional:
        (hint,) = [a for a in args if a is not type(None)]
        args = get_args(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: setting '{name}' cannot be empty")
    try:
        return _convert(hint, args, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: setting '{name}' = {value!r}: {exc}") from exc


def _convert(hint: Any, args: tuple[Any, ...], value: Any) -> Any:
    if get_origin(hint) is Literal:
        if value not in args:
            raise ValueError(f"must be one of {', '.join(args)}")
        return value
    if get_origin(hint) is list:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("must be a list of strings")
        return [i.strip() for i in items if i.strip()]
    if hint is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("must be true or false")
        return bool(value)
    if hint is str:
        if isinstance(value, dict | list):
            raise ValueError("must be a text")
        return str(value)
    if isinstance(value, bool) or (
        hint is int and isinstance(value, float) and not value.is_integer()
    ):
        raise ValueError("must be a whole number" if hint is int else "must be a number")
    converted = hint(value)
    if converted < 0:
        raise ValueError("must not be negative")
    return converted


def _layer(layer: dict[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in layer.items():
        name = str(key).replace("-", "_")
        if name not in FIELD_NAMES:
            known = ", ".join(sorted(FIELD_NAMES))
            raise ConfigError(f"{source}: unknown setting '{key}' (known settings: {known})")
        out[name] = _coerce(name, value, source)
    return out


def untrusted_message(config: KatConfig, root: Path, how: str) -> str:
    """What was ignored and why; `how` names the ways to trust the folder."""
    return (
        f"settings of {config.untrusted_source or root} ignored because the workspace is not "
        f"trusted: {', '.join(config.untrusted_ignored)}. A repository may not weaken the "
        f"sandbox or redirect the API key; if it is yours, trust it: {how}"
    )


def load_config(
    root: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    trusted: bool | None = None,
) -> KatConfig:
    """Build the configuration for a workspace. Overrides whose value is None are skipped.

    Workspace files may set a TRUSTED_ONLY setting to a weakening value only when the
    workspace is trusted (`trusted`; None: the user's trusted_folders decide); otherwise
    it is dropped, named in `untrusted_ignored` and logged."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    ignored: list[str] = []
    path = None
    if root is not None:
        layer, path = _file_settings(Path(root))
        from_file = _layer(layer, str(path))
        weakening = [k for k, v in from_file.items() if k in TRUSTED_ONLY and TRUSTED_ONLY[k](v)]
        if weakening and not (trusted if trusted is not None else is_trusted(Path(root), env)):
            ignored = weakening
            from_file = {k: v for k, v in from_file.items() if k not in weakening}
        data.update(from_file)
    data.update(_layer({f: env[k] for k, f in ENV_KEYS.items() if env.get(k)}, "environment"))
    data.update(_layer({k: v for k, v in (overrides or {}).items() if v is not None}, "settings"))
    config = KatConfig(**data)
    if config.samples < 1 or config.rounds < 1 or config.top_k < 1:
        raise ConfigError("samples, rounds and top_k must be at least 1")
    if config.rounds > config.samples:
        raise ConfigError(
            f"rounds ({config.rounds}) cannot exceed samples ({config.samples}): "
            "each round needs at least one sample"
        )
    if ignored and root is not None:
        config.untrusted_ignored, config.untrusted_source = tuple(ignored), str(path)
        how = f"add it to trusted_folders in {user_config_file(env)}"
        log.warning("%s", untrusted_message(config, Path(root), how))
    return config
