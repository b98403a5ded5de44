#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs every check:
# lint, types, the Python test suite (real git, bubblewrap, HTTP, LSP over stdio,
# headless Neovim, batch Emacs with eglot) and the VS Code extension's unit and real-VS-Code tests.
# Skip parts with KAT_SKIP_EXTENSION=1 or KAT_SKIP_E2E=1 (the extension's VS Code run).
# Everything Python goes into a virtual environment (.venv; scripts/venv.sh). Last, the
# README's quick start runs once more with the distribution's own python3 when there is
# one (/usr/bin/python3, externally managed on Debian/Ubuntu), in its own environment;
# KAT_SKIP_QUICKSTART=1 skips that.
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo_root"

need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
command -v nvim >/dev/null 2>&1 || need_apt+=(neovim)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v emacs >/dev/null 2>&1 || need_apt+=(emacs-nox elpa-eglot)  # the eglot how-to is tested
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "test.sh: apt-get install ${need_apt[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# shellcheck source=scripts/venv.sh
source "$repo_root/scripts/venv.sh"
echo "test.sh: pip install -e .[dev] into $kat_venv"
"$kat_python" -m pip install -q -e ".[dev]" 2>&1 | grep -v -e '^WARNING' -e 'pip version' -e 'is ignored' || true

echo "test.sh: ruff"
python3 -m ruff check kat_lsp tests bench
python3 -m ruff format --check kat_lsp tests bench
echo "test.sh: mypy"
python3 -m mypy kat_lsp

echo "test.sh: pytest"
python3 -m pytest -q -p no:cacheprovider

if [ "${KAT_SKIP_EXTENSION:-0}" != 1 ]; then
  echo "test.sh: extension (npm ci, typecheck, lint, unit tests)"
  (cd extension && npm ci --no-audit --no-fund --loglevel=error && npm run -s typecheck \
    && npm run -s lint && npm test)
  if [ "${KAT_SKIP_E2E:-0}" != 1 ]; then
    echo "test.sh: extension in real VS Code (code-server + headless Chromium)"
    KAT_E2E_PYTHON="$(command -v python3)" bash extension/scripts/e2e.sh
  fi
fi

if [ "${KAT_SKIP_QUICKSTART:-0}" != 1 ] && [ -x /usr/bin/python3 ]; then
  echo "test.sh: the quick start with the distribution's python3 (/usr/bin/python3)"
  env -u VIRTUAL_ENV PATH=/usr/bin:/bin KAT_VENV="$repo_root/.venv-system" \
    bash examples/quickstart.sh
fi
