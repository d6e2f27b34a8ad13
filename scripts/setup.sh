#!/usr/bin/env bash
# Install everything the gateway and its tests need on a Debian machine (run as root or
# with sudo available): system libraries, the OpenSSH server used by SFTP tests, Debian's
# Chromium for portal tests, then the Python package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-liberation
  poppler-utils openssh-server openssh-client chromium
  libreoffice-calc-nogui  # CSV plugin: proves Calc opens the export with numbers as numbers
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test,dev]'
