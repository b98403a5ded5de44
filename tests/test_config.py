"""The configuration chain: defaults < pyproject/.kat.toml < environment < overrides."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from kat_lsp.config import KatConfig, load_config
from kat_lsp.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_layers_in_order(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.kat]\nmodel = "from-file"\nsamples = 6\nbase_url = "http://file/v1"\ntop-k = 2\n'
    )
    env = {"KAT_MODEL": "from-env", "OPENAI_API_KEY": "sk-env"}
    config = load_config(tmp_path, {"samples": 8, "rounds": None}, environ=env)
    assert config.model == "from-env"  # env beats file
    assert config.samples == 8  # overrides beat file
    assert config.base_url == "http://file/v1"  # file beats default
    assert config.top_k == 2  # dashes accepted
    assert config.rounds == 1  # None override skipped
    assert config.api_key == "sk-env"
    assert config.public_dict()["api_key"] == "***"


def test_kat_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.kat]\nmodel = "pyproject"\n')
    (tmp_path / ".kat.toml").write_text('model = "kat-toml"\n')
    assert load_config(tmp_path, environ={}).model == "kat-toml"


def test_strings_from_cli_or_env_are_converted() -> None:
    config = load_config(
        None, {"samples": "5", "early_stop": "false", "test_timeout": "2.5"}, environ={}
    )
    assert (config.samples, config.early_stop, config.test_timeout) == (5, False, 2.5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sampels": 3}, "unknown setting 'sampels'"),
        ({"samples": "many"}, "setting 'samples'"),
        ({"samples": 2.5}, "whole number"),
        ({"sandbox": "docker"}, "must be one of bwrap, none"),
        ({"samples": 0}, "at least 1"),
        ({"samples": 2, "rounds": 3}, "cannot exceed samples"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides, environ={})


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / ".kat.toml").write_text("model = \n")
    with pytest.raises(ConfigError, match=r"\.kat\.toml: not valid TOML"):
        load_config(tmp_path, environ={})


def test_missing_endpoint_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        KatConfig().require_endpoint()
    with pytest.raises(ConfigError, match="KAT_MODEL"):
        KatConfig(base_url="http://x/v1").require_endpoint()


def test_settings_reference_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_settings_doc.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    current = (ROOT / "docs" / "reference" / "settings.md").read_text(encoding="utf-8")
    assert current == gen.render(), "run: python scripts/gen_settings_doc.py"
