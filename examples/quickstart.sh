#!/usr/bin/env bash
# Quick start: install kat-lsp and run a real `kat-lsp fix` on the bundled example
# (examples/median: median() is wrong for even-length lists).
#
# With OPENAI_BASE_URL (and KAT_MODEL, OPENAI_API_KEY) set, the run talks to that endpoint.
# Without it, a recorded session of this example is replayed through the same
# OpenAI-compatible HTTP path by the scripted server, and the output says so.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo_root="$(dirname "$here")"

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "quickstart: installing bubblewrap (the sandbox for model commands)"
    apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap git >/dev/null
  else
    echo "quickstart: bubblewrap is missing: install it (sudo apt-get install bubblewrap)" >&2
    exit 2
  fi
fi
# shellcheck source=../scripts/venv.sh
source "$repo_root/scripts/venv.sh"
echo "quickstart: installing kat-lsp into $kat_venv"
"$kat_python" -m pip install -q -e "$repo_root" 2>&1 \
  | grep -v -e '^WARNING' -e 'pip version' -e 'is ignored' || true

work="$(mktemp -d "${TMPDIR:-/tmp}/kat-quickstart.XXXXXX")"
trap '[ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true' EXIT
cp "$here/median/stats.py" "$here/median/test_stats.py" "$work/"
git -C "$work" init -q
git -C "$work" add -A
git -C "$work" -c user.name=quickstart -c user.email=quickstart@example.invalid commit -qm "example project"

if [ -z "${OPENAI_BASE_URL:-}" ]; then
  "$kat_python" -m kat_lsp.model.scripted --script "$here/median/session.json" --port 0 > "$work.url" &
  server_pid=$!
  for _ in $(seq 100); do [ -s "$work.url" ] && break; sleep 0.1; done
  OPENAI_BASE_URL="$(head -n 1 "$work.url")"
  rm -f "$work.url"
  export OPENAI_BASE_URL KAT_MODEL="recorded-session"
  echo "================================================================================"
  echo " REPLAY: OPENAI_BASE_URL is not set, so this run replays a RECORDED session of"
  echo " examples/median (examples/median/session.json) through the scripted"
  echo " OpenAI-compatible server at $OPENAI_BASE_URL. Everything else is real:"
  echo " snapshot, sandboxed checkouts, tools, tests, dedup, ranking."
  echo " Set OPENAI_BASE_URL and KAT_MODEL to run against a real model."
  echo "================================================================================"
fi

out="$work/kat-out"
status=0
kat-lsp fix --repo "$work" --issue-file "$here/median/ISSUE.md" \
  --samples "${KAT_SAMPLES:-3}" --test-samples "${KAT_TEST_SAMPLES:-2}" --out "$out" || status=$?
echo
echo "--- best.patch ---"
cat "$out/best.patch" 2>/dev/null || true
echo
echo "quickstart: the example project is $work; its results:"
echo "  $out/ranked.json   every candidate with rank, score, tests and patch"
echo "  $out/best.patch    the best candidate (kat-lsp fix --apply applies it)"
run_id="$(sed -n 's/.*"run_id": "\([^"]*\)".*/\1/p' "$out/ranked.json" 2>/dev/null | head -n 1)"
if [ -n "$run_id" ]; then
  runs="$("$kat_python" -c 'from kat_lsp.paths import runs_dir; print(runs_dir())')"
  echo "  $runs/$run_id   the run folder (run.json, trajectories)"
fi
echo "quickstart: kat-lsp is installed in $kat_venv; use it with: source $kat_venv/bin/activate"
exit "$status"
