"""How much one run may start: the ceiling on samples (K and T) and on samples alive at
once. Light on purpose (no pipeline imports), so the CLI checks its flags with it before
anything loads."""

from __future__ import annotations

from kat_lsp.config import KatConfig
from kat_lsp.exceptions import ConfigError

MAX_SAMPLES = 64
"""Ceiling on K (`samples`) and T (`test_samples`): more is refused before anything starts
(a constant: a ceiling, not a preference)."""


def check_sample_counts(config: KatConfig) -> None:
    """Refuse K or T outside 0..MAX_SAMPLES, naming the setting (raises ConfigError)."""
    for name in ("samples", "test_samples"):
        value = getattr(config, name)
        if value < 0 or value > MAX_SAMPLES:
            raise ConfigError(
                f"{name} = {value} is outside 0..{MAX_SAMPLES} (the ceiling max_samples): "
                f"use at most {MAX_SAMPLES}; samples beyond {config.sandbox_concurrency} already wait "
                "for a free sandbox"
            )
