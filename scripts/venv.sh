# Sourced by examples/quickstart.sh and scripts/test.sh: make (or reuse) a virtual
# environment and put it first on PATH, so that both README commands work with any
# python3, the distribution's externally managed one (PEP 668) included.
#   KAT_VENV    the environment's folder (default: .venv at the repository root)
#   KAT_PYTHON  the interpreter that creates it (default: python3 on PATH)
# Afterwards: $kat_python is the environment's interpreter. Activate it yourself with
#   source .venv/bin/activate
kat_venv="${KAT_VENV:-$repo_root/.venv}"
kat_base_python="${KAT_PYTHON:-python3}"
if ! "$kat_venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  if ! "$kat_base_python" -m venv "$kat_venv" >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's ensurepip separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "venv: apt-get install python3-venv"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$kat_venv"
      "$kat_base_python" -m venv "$kat_venv"
    else
      echo "venv: '$kat_base_python -m venv' failed: install python3-venv (sudo apt-get install python3-venv)" >&2
      exit 2
    fi
  fi
fi
kat_python="$kat_venv/bin/python"
export PATH="$kat_venv/bin:$PATH"
export VIRTUAL_ENV="$kat_venv"
