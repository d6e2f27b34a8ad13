#!/usr/bin/env bash
# Set up the gateway on Debian or Ubuntu, as root or as a user with sudo:
#   1. the Debian packages it and its tests need (PDF libraries, OpenSSH, Chromium, ...),
#   2. a virtual environment, .venv in the repository, made with the distribution's Python
#      or any other (PEP 668 forbids installing into the distribution's own),
#   3. the gateway with its test extras, installed editable into that environment.
# One line per step; the details go to .setup.log. A re-run changes nothing and is quick.
#
#   PYTHON=/usr/bin/python3 ./scripts/setup.sh   the interpreter to build .venv from
#                                                (default: python3 on PATH)
#   GATEWAY_VENV=DIR ./scripts/setup.sh          another place for the environment
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG=$ROOT/.setup.log
PYTHON=${PYTHON:-python3}
VENV=${GATEWAY_VENV:-$ROOT/.venv}
# Extras of pyproject.toml that the test suite needs.
EXTRAS=test,dev,postgres,scale,peppol-rules  # peppol-rules: the Peppol BIS UBL schematron (xml_einvoice)

APT_PACKAGES=(
  python3-venv                       # venv and ensurepip for the distribution's Python
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-liberation
  poppler-utils openssh-server openssh-client chromium
  libreoffice-calc-nogui  # CSV plugin: proves Calc opens the export with numbers as numbers
  dnsmasq  # peppol plugin: the SML's DNS (NAPTR records) in tests
  postgresql  # the PostgreSQL store's tests start a throwaway cluster (initdb/pg_ctl)
  redis-server  # Celery broker for the distributed tests and bench (started by the tests)
  libzbar0  # pdf plugin: a real QR reader (through pyzbar) reads the EPC codes back in tests
)

: >"$LOG"
step() { printf '%-28s' "$1"; echo "=== $1" >>"$LOG"; }
fail() {
  echo "failed"
  printf 'setup: %s\n' "$@" >&2
  echo "setup: the full output is in $LOG" >&2
  exit 1
}
run() { "$@" >>"$LOG" 2>&1; }

step "python"
command -v "$PYTHON" >/dev/null || fail "no '$PYTHON' on PATH: install python3 (3.11 or newer) or set PYTHON"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "$("$PYTHON" --version 2>&1) is too old: the gateway needs Python 3.11 or newer" \
          "set PYTHON=/path/to/python3.11 (or newer) and run the set-up again"
base=$("$PYTHON" -c 'import sys; print(sys.base_prefix, sys.version.split()[0])')
echo "$("$PYTHON" --version 2>&1) ($(command -v "$PYTHON"))"

step "system packages"
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "skipped: no apt-get here"
  echo "setup: install the equivalents of: ${APT_PACKAGES[*]}" >&2
else
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "ok (${#APT_PACKAGES[@]} present)"
  else
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null \
        || fail "missing Debian packages: ${missing[*]}" \
                "run this script as root, or install sudo, or install them yourself"
      SUDO=(sudo)
    fi
    run "${SUDO[@]}" apt-get update -q || fail "apt-get update failed: check the network or the apt sources"
    if ! run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"; then
      unknown=()
      for pkg in "${missing[@]}"; do
        apt-cache show "$pkg" >/dev/null 2>&1 || unknown+=("$pkg")
      done
      if [ ${#unknown[@]} -gt 0 ]; then
        fail "this distribution has no package named: ${unknown[*]}" \
             "install its equivalent by hand, then run the set-up again"
      fi
      fail "apt-get could not install: ${missing[*]}" \
           "try: sudo apt-get install ${missing[*]}"
    fi
    echo "installed ${missing[*]}"
  fi
fi

step "virtual environment"
if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix, sys.version.split()[0])' 2>/dev/null)" = "$base" ]; then
  echo "reused ${VENV#"$ROOT"/}"
else
  rm -rf "$VENV"
  run "$PYTHON" -m venv "$VENV" \
    || fail "'$PYTHON -m venv' failed: on Debian or Ubuntu install python3-venv" \
            "(sudo apt-get install python3-venv), then run the set-up again"
  echo "created ${VENV#"$ROOT"/}"
fi

step "python packages"
# The stamp names what was installed: the project's requirements, the extras, the interpreter.
stamp=$( (cat pyproject.toml; echo "$EXTRAS $base") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.gateway-setup" 2>/dev/null)" = "$stamp" ] \
    && "$VENV/bin/python" -c 'import gateway' 2>/dev/null; then
  echo "up to date"
else
  if ! run "$VENV/bin/python" -m pip install --disable-pip-version-check -e ".[$EXTRAS]"; then
    reason=$(grep -E '^(ERROR|error):' "$LOG" | head -n 3)
    fail "pip could not install the gateway into ${VENV#"$ROOT"/}: ${reason:-see the log}" \
         "check the network to PyPI, then run the set-up again"
  fi
  echo "$stamp" >"$VENV/.gateway-setup"
  echo "installed ($("$VENV/bin/gateway" --version 2>/dev/null || echo gateway))"
fi

echo "ready: ${VENV#"$ROOT"/}/bin/gateway demo | ${VENV#"$ROOT"/}/bin/python -m pytest -q"
